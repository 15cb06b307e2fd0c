"""A WordPiece tokenizer trained with Hugging Face ``tokenizers``, wrapped as ``transformers.BertTokenizerFast``.

- :func:`train_wordpiece`: learn a WordPiece vocabulary from sentences (Rust, in about a second),
  with BERT's normaliser (lower-case, strip accents) and pre-tokeniser (whitespace and punctuation),
  BERT's special tokens first, in the course's order (``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``,
  ``[MASK]``), and ``[CLS] A [SEP] B [SEP]`` with segment ids as the post-processor.
- :func:`as_bert_tokenizer`: that tokenizer as a ``transformers.BertTokenizerFast`` (what
  ``DataCollatorForLanguageModeling``, ``Trainer`` and ``pipeline`` expect).
- :func:`course_tokenizer`: the course's :class:`~course_lib.tokenizers.WordPieceTokenizer` on the
  same vocabulary: the same ids on any text of the story world (tests/test_frameworks.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertTokenizerFast

from .._checks import check_positive_int
from ..tokenizers import SPECIAL_TOKENS, WordPieceTokenizer

__all__ = ["train_wordpiece", "as_bert_tokenizer", "course_tokenizer", "vocabulary"]


def train_wordpiece(sentences: Iterable[str], vocab_size: int = 400, prune: bool = True) -> Tokenizer:
    """Train a BERT-style WordPiece ``tokenizers.Tokenizer`` on ``sentences`` (an iterable of str).

    ``vocab_size``: the most entries the vocabulary may have: the special tokens, every character
    seen (alone and as a ``##`` continuation), then the merges the trainer finds most useful.
    It stops earlier when nothing is left to merge (every word whole).

    ``prune`` (default True): keep only the special tokens, the characters (alone and as ``##``
    continuations) and the entries the sentences are tokenized into, in a fixed order (special
    tokens, characters sorted, then the used entries by frequency): the same sentences then give
    the same vocabulary in every run. ``prune=False`` returns the trainer's vocabulary as it is,
    whose pieces between characters and whole words can change from run to run (the trainer breaks
    ties between equally frequent pairs in hash-map order).
    """
    if isinstance(sentences, (str, bytes)) or not hasattr(sentences, "__iter__"):
        raise TypeError(f"sentences must be a list of str (one sentence each), got {type(sentences).__name__}")
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a non-empty list of str")
    check_positive_int("vocab_size", vocab_size)
    if not isinstance(prune, bool):
        raise TypeError(f"prune must be True or False, got {prune!r}")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must leave room beyond the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    learner = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")))
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                        show_progress=False)
    learner.train_from_iterator(sentences, trainer)
    if not prune:
        return _with_template(learner)
    # The trainer breaks ties between equally frequent pairs in an order that changes from one run
    # to the next (it walks a hash map), so the pieces between characters and whole words vary.
    # Keep what does not: the special tokens, the characters (alone and as ## continuations) and
    # the entries the training sentences are actually tokenized into, in a fixed order.
    trained = learner.get_vocab()
    characters = sorted(t for t in trained if len(t.removeprefix("##")) == 1 and t not in SPECIAL_TOKENS)
    counts: dict[str, int] = {}
    for encoding in learner.encode_batch(sentences, add_special_tokens=False):
        for token in encoding.tokens:
            counts[token] = counts.get(token, 0) + 1
    used = sorted((t for t in counts if t not in characters and t not in SPECIAL_TOKENS), key=lambda t: (-counts[t], t))
    vocab = list(SPECIAL_TOKENS) + characters + used
    return _with_template(_bert_pipeline(Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)},
                                                                    unk_token="[UNK]"))))


def _bert_pipeline(tokenizer: Tokenizer) -> Tokenizer:
    """BERT's normaliser (lower-case, strip accents), pre-tokeniser (whitespace, punctuation) and decoder."""
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def _with_template(tokenizer: Tokenizer) -> Tokenizer:
    """[CLS] A [SEP] (B [SEP]), segment 0 for A and its tokens, 1 for B: BERT's input layout."""
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """The trained vocabulary as a list of tokens, index = id (what a vocab.txt holds, one per line)."""
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a tokenizers.Tokenizer (from train_wordpiece), got {type(tokenizer).__name__}")
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.get)


def as_bert_tokenizer(tokenizer: Tokenizer, model_max_length: int = 64) -> BertTokenizerFast:
    """Wrap a trained ``tokenizers.Tokenizer`` as a ``transformers.BertTokenizerFast`` (in memory).

    ``model_max_length``: the longest input the model reads (its max_position_embeddings).
    ``save_pretrained(folder)`` then writes tokenizer.json, which ``pipeline`` and
    ``AutoTokenizer.from_pretrained(folder)`` read back, offline.
    """
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a tokenizers.Tokenizer (from train_wordpiece), got {type(tokenizer).__name__}")
    check_positive_int("model_max_length", model_max_length)
    return BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", model_max_length=model_max_length)


def course_tokenizer(tokenizer) -> WordPieceTokenizer:
    """The course's :class:`~course_lib.tokenizers.WordPieceTokenizer` on the vocabulary of ``tokenizer``
    (a ``tokenizers.Tokenizer`` or a ``transformers.BertTokenizerFast``): ids mean the same tokens."""
    if isinstance(tokenizer, BertTokenizerFast):
        vocab = tokenizer.get_vocab()
        return WordPieceTokenizer(sorted(vocab, key=vocab.get))
    return WordPieceTokenizer(vocabulary(tokenizer))
