"""Text -> tokens -> batches for ``python -m course_lib.pretrain``.

- Tokenizers that fit any text, each saved as ``DIR/tokenizer.json`` (and ``DIR/vocab.txt`` for
  WordPiece, the file ``transformers.BertTokenizer`` reads):
  ``char`` (:class:`CharTokenizer`, one id per character, nanoGPT's Shakespeare recipe),
  ``word`` (the course's :class:`~course_lib.tokenizers.WordVocab` for GPT; for BERT a WordPiece
  vocabulary of whole words, as notebook 04's ``story_tokenizer``) and ``wordpiece`` (a
  :class:`~course_lib.tokenizers.WordPieceTokenizer` of the most frequent words plus every
  character alone and as a ``##`` continuation, so no word of the text becomes [UNK]).
- :class:`GPTData`: the token stream, the last 10% held out for validation; a global batch is
  :func:`course_lib.tasks.gpt.text_windows` drawn from one seeded generator.
- :class:`BertData`: sentence pairs (:func:`course_lib.bert.make_nsp_pairs`) from the text's
  paragraphs and lines (or sentences); a global batch is :func:`course_lib.tasks.bert.bert_batch`
  (MLM + NSP, notebook 04) of pairs drawn from one seeded generator.

Why "global": every process draws the SAME global batch (B rows) from the same generator and
keeps its rows ``[rank * B/N, (rank + 1) * B/N)`` (:func:`shard`). The examples of a step are
then the same whatever the number of processes N, which is what makes 1 and N processes train
alike (tests/test_pretrain_distributed.py).

Bad input raises :class:`UsageError` naming the command-line argument to change.
"""

from __future__ import annotations

import collections
import json
import random
import re
from pathlib import Path

import torch

from ..tasks.bert import bert_batch
from ..tasks.gpt import text_windows
from ..tokenizers import SPECIAL_TOKENS, WordPieceTokenizer, WordVocab
from ..bert import make_nsp_pairs

__all__ = ["UsageError", "CharTokenizer", "build_tokenizer", "save_tokenizer", "load_tokenizer", "GPTData",
           "BertData", "shard", "VALIDATION_SHARE"]

VALIDATION_SHARE = 0.1  # the share of the text held out for val_loss (nanoGPT holds out 10% too)


class UsageError(ValueError):
    """A problem with a command-line argument: ``argument`` names it (e.g. ``--text``)."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"argument {argument}: {message}")
        self.argument = argument


class CharTokenizer:
    """One id per distinct character of the text, in sorted order (nanoGPT's shakespeare_char).

    ``encode(text) -> list[int]``, ``decode(ids) -> str``. A character the text did not hold has
    no id (``KeyError`` naming it): the vocabulary IS the text's characters.
    """

    kind = "char"

    def __init__(self, chars):
        self.itos = list(chars)
        if len(set(self.itos)) != len(self.itos) or not all(isinstance(c, str) and len(c) == 1 for c in self.itos):
            raise ValueError("chars must be distinct single characters")
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise KeyError(f"character {e.args[0]!r} is not in this tokenizer's vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.itos[int(i)] for i in ids)


def _word_counts(text: str, tokenize) -> collections.Counter:
    return collections.Counter(tokenize(text))


def _wordpiece_vocab(text: str, vocab_size: int, whole_words_only: bool) -> list[str]:
    """BERT's special tokens, the most frequent words (basic-tokenised), and (unless
    ``whole_words_only``) every character alone and as ``##c``, so any word can be spelled."""
    basic = WordPieceTokenizer(list(SPECIAL_TOKENS))._basic  # BERT's basic step: lower-case, split punctuation
    counts = _word_counts(text, basic)
    vocab = list(SPECIAL_TOKENS)
    if not whole_words_only:
        chars = sorted({c for w in counts for c in w})
        vocab += [c for c in chars if c not in vocab] + ["##" + c for c in chars]
    seen = set(vocab)
    for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):  # frequent first, ties by spelling
        if len(vocab) >= vocab_size and not whole_words_only:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    return vocab


def build_tokenizer(kind: str, model: str, text: str, vocab_size: int):
    """The tokenizer ``kind`` ("char", "word" or "wordpiece") made from ``text`` for ``model`` ("gpt" or "bert")."""
    if kind == "char":
        if model == "bert":
            raise UsageError("--tokenizer", "bert needs [CLS], [SEP] and [MASK] tokens: use --tokenizer wordpiece "
                                            "(the default) or word, not char")
        return CharTokenizer.from_text(text)
    if kind == "word":
        if model == "bert":  # notebook 04's story_tokenizer: every word a whole WordPiece entry
            return WordPieceTokenizer(_wordpiece_vocab(text, vocab_size, whole_words_only=True))
        counts = collections.Counter(text.split())
        words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:max(vocab_size - 4, 1)]
        return WordVocab(words)
    if kind == "wordpiece":
        return WordPieceTokenizer(_wordpiece_vocab(text, vocab_size, whole_words_only=False))
    raise UsageError("--tokenizer", f"must be char, word or wordpiece, got {kind!r}")


def encode_stream(tokenizer, text: str) -> list[int]:
    """The whole text as one list of ids (for GPT)."""
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer.encode(text)
    if isinstance(tokenizer, WordVocab):
        return tokenizer.encode(text.split())
    return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))


def save_tokenizer(tokenizer, out: Path) -> None:
    """``out/tokenizer.json`` ({"kind", "tokens"}); for WordPiece also ``out/vocab.txt``, one token a line."""
    if isinstance(tokenizer, CharTokenizer):
        content = {"kind": "char", "tokens": tokenizer.itos}
    elif isinstance(tokenizer, WordVocab):
        content = {"kind": "word", "tokens": tokenizer.itos}
    else:
        content = {"kind": "wordpiece", "tokens": tokenizer.itos, "lowercase": tokenizer.lowercase}
        _atomic_write(out / "vocab.txt", "".join(t + "\n" for t in tokenizer.itos))
    _atomic_write(out / "tokenizer.json", json.dumps(content, ensure_ascii=False, indent=0))


def load_tokenizer(path):
    """Read back what :func:`save_tokenizer` wrote: a folder (or its tokenizer.json) -> the tokenizer."""
    path = Path(path)
    content = json.loads((path / "tokenizer.json" if path.is_dir() else path).read_text(encoding="utf-8"))
    if content["kind"] == "char":
        return CharTokenizer(content["tokens"])
    if content["kind"] == "word":
        vocab = WordVocab(content["tokens"][4:])
        return vocab
    return WordPieceTokenizer(content["tokens"], lowercase=content.get("lowercase", True))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # one step: a reader never sees half a file


def shard(batch, rank: int, world_size: int):
    """Rows ``[rank * B/N, (rank + 1) * B/N)`` of every tensor of a global batch (B rows)."""
    if isinstance(batch, dict):
        return {k: shard(v, rank, world_size) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(v, rank, world_size) for v in batch)
    rows = batch.shape[0] // world_size
    return batch[rank * rows:(rank + 1) * rows]


class GPTData:
    """A text's token stream for next-token prediction; the last 10% is the validation split.

    ``batch(generator, batch_size)`` -> (inputs, targets), each (B, T) long: random windows of
    block_size tokens (:func:`~course_lib.tasks.gpt.text_windows`).
    """

    def __init__(self, text: str, tokenizer, block_size: int):
        ids = torch.tensor(encode_stream(tokenizer, text), dtype=torch.long)
        n_val = int(VALIDATION_SHARE * len(ids))
        self.train_ids, self.val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
        self.block_size = block_size
        if len(self.train_ids) <= block_size:
            raise UsageError("--text", f"the text is too short: {len(ids)} tokens, of which {len(self.train_ids)} "
                                       f"for training, must be more than one block (--block-size {block_size}) "
                                       f"after the {VALIDATION_SHARE:.0%} held out for validation; use a longer "
                                       "text or a smaller --block-size")

    def batch(self, generator: torch.Generator, batch_size: int, split: str = "train"):
        ids = self.train_ids if split == "train" else self.val_ids
        return text_windows(ids, self.block_size, batch_size, generator)

    @property
    def has_validation(self) -> bool:
        return len(self.val_ids) > self.block_size

    @staticmethod
    def num_tokens(batch) -> int:
        return batch[0].numel()


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def documents(text: str) -> list[list[str]]:
    """Paragraphs (separated by blank lines), each a list of sentences: its lines, or, for a
    paragraph of one line, the line split after . ! ? (and 。！？)."""
    docs = []
    for para in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if len(lines) == 1:
            lines = [s.strip() for s in _SENTENCE_END.split(lines[0]) if s.strip()]
        if lines:
            docs.append(lines)
    return docs


class BertData:
    """Sentence pairs of a text for MLM + NSP (notebook 04), encoded ``[CLS] A [SEP] B [SEP]``.

    Pairs are made once (:func:`~course_lib.bert.make_nsp_pairs`, seeded), shuffled, and 10% held
    out for validation. ``batch(generator, batch_size)`` draws pairs with the generator and masks
    them with it (:func:`~course_lib.tasks.bert.bert_batch`): a dict of (B, T) tensors, T the
    longest pair of the global batch (so every shard of it has the same width).
    """

    def __init__(self, text: str, tokenizer: WordPieceTokenizer, block_size: int, seed: int):
        docs = documents(text)
        if len(docs) < 2 or all(len(d) < 2 for d in docs):
            raise UsageError("--text", f"bert needs sentence pairs: at least two paragraphs (separated by a blank "
                                       f"line) or lines, one of two sentences or more; the text has {len(docs)} "
                                       f"paragraph(s) with {sum(len(d) for d in docs)} sentence(s)")
        pairs = make_nsp_pairs(docs, generator=random.Random(seed))
        random.Random(seed + 1).shuffle(pairs)
        examples = []
        for a, b, is_next in pairs:
            e = tokenizer.encode(a, b, max_length=block_size)  # longer pairs are cut to one block
            examples.append((e["input_ids"], e["token_type_ids"], is_next))
        n_val = int(VALIDATION_SHARE * len(examples))
        self.train, self.validation = examples[n_val:], examples[:n_val]
        self.tokenizer = tokenizer
        self.block_size = block_size
        if len(self.train) < 1:
            raise UsageError("--text", "the text gives no sentence pair to train on")

    def batch(self, generator: torch.Generator, batch_size: int, split: str = "train"):
        examples = self.train if split == "train" else self.validation
        picks = torch.randint(len(examples), (batch_size,), generator=generator).tolist()
        return bert_batch([examples[i] for i in picks], self.tokenizer, generator)

    @property
    def has_validation(self) -> bool:
        return len(self.validation) > 0

    @staticmethod
    def num_tokens(batch) -> int:
        return int(batch["attention_mask"].sum())
