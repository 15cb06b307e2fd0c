"""The translation task of notebooks 01 and 02: batches, training recipes, evaluation and attention
traces for the GRU translator with attention (:class:`course_lib.gru_translator.AttentionGRUTranslator`,
notebook 01) and for the Transformer.

Notebook 02: the same task for :class:`course_lib.encoder_decoder.EncoderDecoder`
(``train_transformer_translator``, ``trace_transformer``, ``cross_attention_alignment``).
``evaluate_translation`` accepts either model.

Shapes: B batch, S source length, T target length, d model width, V vocabulary size,
L layers, h heads.

Every public function checks its input where it enters (``ValueError`` / ``TypeError`` naming
the argument): sentence pairs (at least one, each with words on both sides), word lists (a list
of str, not a string, at least one word), vocabularies, models of the right kind, sizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .. import _checks
from .._checks import shape_of
from ..batching import epoch_batches
from ..encoder_decoder import EncoderDecoder
from ..gru_translator import AttentionGRUTranslator
from ..tokenizers import WordVocab
from ..training import evaluating, get_device, set_seed, train
from ..batching import model_device

__all__ = [
    "AttentionGRUTranslator",
    "encode_pairs",
    "translation_batches",
    "translation_loss",
    "translate",
    "trace_translation",
    "evaluate_translation",
    "exact_match_by_length",
    "forced_attention",
    "alignment_hits",
    "alignment_score",
    "train_translator",
    "transformer_translation_loss",
    "train_transformer_translator",
    "trace_transformer",
    "cross_attention_alignment",
    "greedy_translations",
]


def _check_vocabs(src_vocab, tgt_vocab) -> None:
    for name, vocab in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
        if not isinstance(vocab, WordVocab):
            raise TypeError(f"{name} must be a WordVocab, got {type(vocab).__name__}")


def _check_words(zh_words) -> None:
    """One source sentence: a list (or tuple) of at least one non-empty str word."""
    if isinstance(zh_words, str):
        raise TypeError("zh_words must be a list of words; use segment_chinese(text, src_vocab.itos)")
    if not isinstance(zh_words, Sequence):
        raise TypeError(f"zh_words must be a list of words, got {type(zh_words).__name__}")
    if len(zh_words) == 0:
        raise ValueError("zh_words must contain at least one word")
    for i, word in enumerate(zh_words):
        if not isinstance(word, str):
            raise TypeError(f"zh_words must hold str words, got {type(word).__name__} {word!r} at position {i}")
        if not word:
            raise ValueError(f"zh_words must hold non-empty words, got '' at position {i}")


def _check_pairs(pairs) -> None:
    """Sentence pairs: a non-empty list of objects with ``zh`` and ``en`` word sequences, none empty."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs must be a list of SentencePair, got {type(pairs).__name__}")
    if len(pairs) == 0:
        raise ValueError("pairs must hold at least one sentence pair, got none")
    for i, pair in enumerate(pairs):
        zh, en = getattr(pair, "zh", None), getattr(pair, "en", None)
        if zh is None or en is None or isinstance(zh, str) or isinstance(en, str):
            raise TypeError(f"pairs[{i}] must be a SentencePair (zh and en: lists of words), got {pair!r}")
        if len(zh) == 0 or len(en) == 0:
            raise ValueError(f"pairs[{i}] must have words on both sides, got {len(zh)} Chinese and {len(en)} "
                             f"English words")


def _check_model(model, kinds: tuple, hint: str = "") -> None:
    if not isinstance(model, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"model must be a {names}{hint}, got {type(model).__name__}")


def _check_vocab_fits(name: str, vocab: WordVocab, size: int) -> None:
    """A vocabulary must not hold more words than the model's embedding table has rows."""
    if len(vocab) > size:
        raise ValueError(f"{name} has {len(vocab)} words, more than the model's table of {size}: "
                         f"use the vocabulary the model was built with")


def encode_pairs(pairs: Sequence, src_vocab: WordVocab, tgt_vocab: WordVocab):
    """Sentence pairs -> src (B, S), src_lengths (B,), tgt_in (B, T) = <bos> y_1..y_n, tgt_out (B, T) = y_1..y_n <eos>.

    Padding is id 0 (``<pad>``) everywhere; the losses ignore it in ``tgt_out``.
    """
    _check_pairs(pairs)
    _check_vocabs(src_vocab, tgt_vocab)
    src, src_lengths = src_vocab.encode_batch([p.zh for p in pairs])
    tgt, _ = tgt_vocab.encode_batch([p.en for p in pairs], add_bos=True, add_eos=True)
    return src, src_lengths, tgt[:, :-1], tgt[:, 1:]


def translation_batches(pairs: Sequence, src_vocab: WordVocab, tgt_vocab: WordVocab, batch_size: int = 64,
                        seed: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled mini-batches (src, src_lengths, tgt_in, tgt_out), reshuffled every epoch."""
    _check_pairs(pairs)
    _check_vocabs(src_vocab, tgt_vocab)
    return epoch_batches(pairs, batch_size, lambda chunk: encode_pairs(chunk, src_vocab, tgt_vocab), seed)


def translation_loss(model: AttentionGRUTranslator, batch) -> torch.Tensor:
    """Mean cross-entropy of the next English word, ignoring padding."""
    src, src_lengths, tgt_in, tgt_out = _batch(batch)
    logits, _ = model(src, src_lengths, tgt_in)
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=0)


def _batch(batch) -> tuple:
    """A batch as :func:`encode_pairs` returns it: four tensors (src, src_lengths, tgt_in, tgt_out)."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 4:
        size = f" of {len(batch)} items" if isinstance(batch, (tuple, list)) else ""
        raise ValueError(f"batch must be (src, src_lengths, tgt_in, tgt_out) as encode_pairs returns it, got "
                         f"{type(batch).__name__}{size}")
    return tuple(batch)


@torch.no_grad()
def _source_ids(model: nn.Module, zh_words: Sequence[str], src_vocab: WordVocab) -> torch.Tensor:
    """One Chinese sentence (a list of words) -> its ids (1, S) on the model's device."""
    _check_words(zh_words)
    return torch.tensor([src_vocab.encode(zh_words)], device=model_device(model))


def trace_translation(model: AttentionGRUTranslator, zh_words: Sequence[str], src_vocab: WordVocab,
                      tgt_vocab: WordVocab, max_len: int = 30) -> dict:
    """Translate one sentence and keep what attention did at every step.

    Returns a dict with
        source: the Chinese words (S);  output: the English words, then "<eos>" (T);
        weights: a (T, S), one row per decoder step;  encoder_states: H (S, d);
        contexts: (T, d), context_t = sum_i a_ti h_i.
    Refused: zh_words that is a str, empty or holds non-str words; vocabularies larger than the
    model's tables; max_len not a positive int; a model that is not an AttentionGRUTranslator.
    """
    _check_model(model, (AttentionGRUTranslator,), " (for an EncoderDecoder use trace_transformer)")
    _check_vocabs(src_vocab, tgt_vocab)
    _check_vocab_fits("src_vocab", src_vocab, model.src_embed.num_embeddings)
    _check_vocab_fits("tgt_vocab", tgt_vocab, model.tgt_embed.num_embeddings)
    _checks.check_positive_int("max_len", max_len)
    src = _source_ids(model, zh_words, src_vocab)  # (1, S)
    lengths = torch.tensor([len(zh_words)])
    with evaluating(model):
        ids, weights = model.greedy_decode(src, lengths, max_len=max_len)
        H, _, _ = model.encode(src, lengths)
    words = tgt_vocab.decode(ids[0])
    T = min(len(words) + 1, ids.shape[1])  # the words and the step that emitted <eos>
    output = words + ["<eos>"] if T > len(words) else words
    a = weights[0, :T].cpu()
    return {"source": list(zh_words), "output": output, "weights": a,
            "encoder_states": H[0].cpu(), "contexts": a @ H[0].cpu()}


def translate(model: AttentionGRUTranslator, zh_words: Sequence[str], src_vocab: WordVocab,
              tgt_vocab: WordVocab, max_len: int = 30) -> list[str]:
    """Translate one sentence (a list of Chinese words) into a list of English words, greedily."""
    trace = trace_translation(model, zh_words, src_vocab, tgt_vocab, max_len)
    return [w for w in trace["output"] if w != "<eos>"]


def _greedy_ids(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int,
                tgt_vocab: WordVocab) -> torch.Tensor:
    """Greedy translation ids (B, T') of either model, without <bos>, <eos>-padded."""
    if isinstance(model, EncoderDecoder):
        return model.greedy_decode(src, min(max_len, model.max_len), tgt_vocab.bos_id, tgt_vocab.eos_id)
    ids, _ = model.greedy_decode(src, src_lengths, max_len=max_len)
    return ids


@torch.no_grad()
def greedy_translations(model: AttentionGRUTranslator | EncoderDecoder, pairs: Sequence, src_vocab: WordVocab,
                        tgt_vocab: WordVocab, batch_size: int = 500) -> list[list[str]]:
    """The greedy translation of every pair's Chinese side, a list of English words per pair.

    :func:`evaluate_translation` counts the ones equal to ``pair.en``; a notebook that wants to
    know *which* sentences a model gets wrong (e.g. the reordered ones, ``any(pair.reordered)``)
    reads them here. Refused: as :func:`evaluate_translation`.
    """
    _check_model(model, (AttentionGRUTranslator, EncoderDecoder))
    _check_pairs(pairs)
    _check_vocabs(src_vocab, tgt_vocab)
    _checks.check_positive_int("batch_size", batch_size)
    device = model_device(model)
    out = []
    with evaluating(model):
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            src, src_lengths, _, _ = encode_pairs(chunk, src_vocab, tgt_vocab)
            max_len = max(len(p.en) for p in chunk) + 2
            ids = _greedy_ids(model, src.to(device), src_lengths, max_len, tgt_vocab)
            out.extend(tgt_vocab.decode(row) for row in ids.cpu())
    return out


@torch.no_grad()
def evaluate_translation(model: AttentionGRUTranslator | EncoderDecoder, pairs: Sequence, src_vocab: WordVocab,
                         tgt_vocab: WordVocab, batch_size: int = 500) -> dict[str, float]:
    """Greedy-decode every pair: exact_match = share of sentences translated word for word right.

    Refused: no pairs (the share of nothing is undefined), pairs without words on a side, a
    batch_size that is not a positive int, a model of another kind.
    """
    outputs = greedy_translations(model, pairs, src_vocab, tgt_vocab, batch_size)
    return {"exact_match": sum(out == list(p.en) for out, p in zip(outputs, pairs)) / len(pairs)}


def exact_match_by_length(model: AttentionGRUTranslator | EncoderDecoder, pairs: Sequence, src_vocab: WordVocab,
                          tgt_vocab: WordVocab, batch_size: int = 500) -> dict[int, tuple[int, int]]:
    """Exact match per source length: {number of Chinese words: (sentences right, sentences)}, sorted.

    The sentences are grouped by ``len(pair.zh)`` and each group is scored with
    :func:`evaluate_translation` (same inputs, same refusals).
    """
    _check_pairs(pairs)
    groups: dict[int, list] = {}
    for pair in pairs:
        groups.setdefault(len(pair.zh), []).append(pair)
    out = {}
    for n in sorted(groups):
        share = evaluate_translation(model, groups[n], src_vocab, tgt_vocab, batch_size)["exact_match"]
        out[n] = (round(share * len(groups[n])), len(groups[n]))
    return out


@torch.no_grad()
def forced_attention(model: AttentionGRUTranslator, pairs: Sequence, src_vocab: WordVocab,
                     tgt_vocab: WordVocab) -> list[torch.Tensor]:
    """Attention weights while the decoder is fed the reference translation (teacher forcing).

    Returns, per pair, weights (len(en), len(zh)): row j is the attention at the step that
    emits English word j, so it can be compared with the word alignment.
    """
    _check_model(model, (nn.Module,))
    src, src_lengths, tgt_in, _ = encode_pairs(pairs, src_vocab, tgt_vocab)
    device = model_device(model)
    with evaluating(model):
        _, weights = model(src.to(device), src_lengths, tgt_in.to(device))
    return [weights[b, :len(p.en), :len(p.zh)].cpu() for b, p in enumerate(pairs)]


def alignment_hits(weights: Sequence[torch.Tensor], pairs: Sequence) -> dict:
    """Count attention peaks on the aligned Chinese word, for any attention weights (the scorer
    behind :func:`alignment_score` and :func:`cross_attention_alignment`).

    weights: per pair a tensor (..., len(en), len(zh)); the leading axes (e.g. layer and head)
    are scored separately. Returns hit rates over reordered words and over all aligned words,
    each of shape (...), and the number of reordered words. Refused: weights and pairs of
    different lengths, a weights[k] whose last two axes are not (len(en), len(zh)) of pairs[k].
    """
    _check_pairs(pairs)
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or len(weights) != len(pairs):
        raise ValueError(f"weights must be a list with one tensor per pair ({len(pairs)}), got "
                         f"{len(weights) if isinstance(weights, Sequence) else type(weights).__name__}")
    for k, (w, p) in enumerate(zip(weights, pairs)):
        if not isinstance(w, torch.Tensor) or w.dim() < 2 or tuple(w.shape[-2:]) != (len(p.en), len(p.zh)):
            raise ValueError(f"weights[{k}] must be a tensor (..., len(en), len(zh)) = (..., {len(p.en)}, "
                             f"{len(p.zh)}), got {shape_of(w) if isinstance(w, torch.Tensor) else type(w).__name__}")
        if len(p.alignment) != len(p.en) or len(p.reordered) != len(p.en):
            raise ValueError(f"pairs[{k}] must have one alignment and one reordered entry per English word")
    hits = total = hits_all = total_all = 0
    for w, p in zip(weights, pairs):
        peak = w.argmax(dim=-1)  # (..., len(en)): the Chinese word each English word looks at most
        for j, (src_index, reordered) in enumerate(zip(p.alignment, p.reordered)):
            if src_index < 0:
                continue
            hit = (peak[..., j] == src_index).float()
            total_all += 1
            hits_all = hits_all + hit
            if reordered:
                total += 1
                hits = hits + hit
    if total == 0:
        raise ValueError("pairs contain no reordered words to score")
    return {"reordered": hits / total, "num_reordered": total, "all_aligned": hits_all / total_all}


def alignment_score(model: AttentionGRUTranslator, pairs: Sequence, src_vocab: WordVocab,
                    tgt_vocab: WordVocab) -> dict[str, float]:
    """How often the attention peak falls on the right Chinese word, for the reordered words.

    For every English word marked ``reordered`` (content words of time, place and
    relative-clause phrases, which sit elsewhere in the Chinese sentence) we take the
    attention of the step that emits it (teacher forcing) and check whether its argmax is
    the aligned Chinese word. Returns the score over those words, the number of words, and
    the same score over all aligned words for comparison (the scores are floats, the count an int).
    """
    result = alignment_hits(forced_attention(model, pairs, src_vocab, tgt_vocab), pairs)
    return {k: v if k == "num_reordered" else float(v) for k, v in result.items()}  # a count stays an int


def train_translator(corpus, src_vocab: WordVocab, tgt_vocab: WordVocab, *, score: str = "additive",
                     d_model: int = 64, steps: int = 400, batch_size: int = 64, lr: float = 0.01,
                     seed: int = 0, eval_every: int | None = None, live_plot=None, progress: bool = True,
                     attention: bool = True, device=None):
    """Build an :class:`AttentionGRUTranslator` and train it on ``corpus.train`` with the course's loop.

    Returns (model, history); the history's evaluations hold validation exact match.
    The same recipe serves notebook 01 and ``python -m course_lib.figures``. ``attention=False``
    trains the same encoder-decoder with a fixed context (the last encoder state) instead.
    The seed sets the initial weights and the order of the batches. ``device``: where it trains
    and stays ("cpu", "cuda", "mps"), default ``get_device()``; the model is built on the CPU.
    """
    _check_corpus(corpus)
    _check_vocabs(src_vocab, tgt_vocab)
    set_seed(seed)  # the initial weights depend on the seed too
    model = AttentionGRUTranslator(len(src_vocab), len(tgt_vocab), d_model=d_model, score=score,
                                   bos_id=tgt_vocab.bos_id, eos_id=tgt_vocab.eos_id, attention=attention)
    history = train(
        model, translation_batches(corpus.train, src_vocab, tgt_vocab, batch_size, seed=seed), translation_loss,
        steps=steps, lr=lr, schedule="cosine", seed=seed, eval_every=eval_every,
        eval_fn=lambda m: evaluate_translation(m, corpus.validation, src_vocab, tgt_vocab),
        live_plot=live_plot, progress=progress, desc=f"{score} attention" if attention else "no attention",
        device=get_device() if device is None else device,
    )
    return model, history


def _check_corpus(corpus) -> None:
    """A translation corpus: ``train`` and ``validation`` lists of sentence pairs."""
    if not (hasattr(corpus, "train") and hasattr(corpus, "validation")):
        raise TypeError(f"corpus must have train and validation sentence pairs (make_translation_corpus()), "
                        f"got {type(corpus).__name__}")
    _check_pairs(corpus.train)
    _check_pairs(corpus.validation)


# ---------------------------------------------------------------------------
# The Transformer on the same task (notebook 02)
# ---------------------------------------------------------------------------

def transformer_translation_loss(model: EncoderDecoder, batch) -> torch.Tensor:
    """Mean cross-entropy of the next English word under teacher forcing, ignoring padding."""
    src, _, tgt_in, tgt_out = _batch(batch)
    logits = model(src, tgt_in)  # (B, T, V): logits[:, t] predicts tgt_out[:, t]
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=0)


def train_transformer_translator(corpus, src_vocab: WordVocab, tgt_vocab: WordVocab, *, d_model: int = 64,
                                 num_heads: int = 4, d_ff: int = 128, num_layers: int = 2,
                                 dropout: float = 0.1, norm_first: bool = False, max_len: int = 32,
                                 steps: int = 600, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                                 eval_every: int | None = None, live_plot=None, progress: bool = True,
                                 desc: str | None = None, validate: bool = True, device=None, **parts):
    """Build an :class:`~course_lib.encoder_decoder.EncoderDecoder` and train it on ``corpus.train``.

    AdamW with a cosine schedule (linear warm-up over the first 5% of the steps), the course's
    training loop, validation exact match every ``eval_every`` steps and at the end (with
    ``validate=False`` none at all: the history holds the training losses only, and
    ``eval_every`` must be None). Returns (model, history).
    ``parts`` (``positions``, ``causal``, ``residual``, ``layer_norm``) go to the model: set one
    False to train it without that part. ``device``: where it trains and stays ("cpu", "cuda",
    "mps"), default ``get_device()``; the model is built on the CPU (the same initial weights everywhere).
    """
    _check_corpus(corpus)
    _check_vocabs(src_vocab, tgt_vocab)
    _checks.check_bool("validate", validate)
    if not validate and eval_every is not None:
        raise ValueError(f"eval_every={eval_every} asks for validation, but validate=False turns it off")
    set_seed(seed)  # the initial weights depend on the seed too
    model = EncoderDecoder(len(src_vocab), len(tgt_vocab), d_model=d_model, num_heads=num_heads, d_ff=d_ff,
                           num_layers=num_layers, max_len=max_len, dropout=dropout, norm_first=norm_first, **parts)
    history = train(
        model, translation_batches(corpus.train, src_vocab, tgt_vocab, batch_size, seed=seed),
        transformer_translation_loss, steps=steps, lr=lr, schedule="cosine", seed=seed, eval_every=eval_every,
        eval_fn=(lambda m: evaluate_translation(m, corpus.validation, src_vocab, tgt_vocab)) if validate else None,
        live_plot=live_plot, progress=progress,
        desc=desc or f"Transformer ({'pre' if norm_first else 'post'}-norm)",
        device=get_device() if device is None else device,
    )
    return model, history


@torch.no_grad()
def _teacher_forced_maps(model: EncoderDecoder, src: torch.Tensor, tgt_in: torch.Tensor) -> dict:
    """Run the model once in eval mode; every layer's weights stacked: kind -> (L, B, h, Tq, Tk)."""
    with evaluating(model):
        model(src, tgt_in)
        return {kind: torch.stack(ws).cpu() for kind, ws in model.attention_maps().items()}


def trace_transformer(model: EncoderDecoder, zh_words: Sequence[str], src_vocab: WordVocab,
                      tgt_vocab: WordVocab, max_len: int = 30) -> dict:
    """Translate one sentence greedily and return every attention map of the model.

    Returns a dict with
        source: the Chinese words (S);
        output: the English words, then "<eos>" (T): row t of a decoder map is the step that emits output[t];
        target_inputs: "<bos>" and the English words (T): what the decoder reads at each step;
        maps: {"encoder_self": (L, h, S, S), "decoder_self": (L, h, T, T), "cross": (L, h, T, S)},
            computed by re-running the decoder on its own output (identical to the step-by-step
            weights, because the decoder is causal).
    Refused: zh_words as in :func:`trace_translation`, or longer than the model's positional
    table (``model.max_len``); max_len not a positive int; a model that is not an EncoderDecoder.
    """
    _check_model(model, (EncoderDecoder,), " (for an AttentionGRUTranslator use trace_translation)")
    _check_vocabs(src_vocab, tgt_vocab)
    _checks.check_positive_int("max_len", max_len)
    _check_words(zh_words)
    if len(zh_words) > model.max_len:
        raise ValueError(f"zh_words has {len(zh_words)} words, more than the model's positional table "
                         f"(max_len={model.max_len}): keep at most its first {model.max_len} words")
    src = _source_ids(model, zh_words, src_vocab)  # (1, S)
    ids = _greedy_ids(model, src, torch.tensor([len(zh_words)]), max_len, tgt_vocab)
    words = tgt_vocab.decode(ids[0])
    emitted = tgt_vocab.encode(words) + ([tgt_vocab.eos_id] if len(words) < ids.shape[1] else [])
    tgt_in = torch.tensor([[tgt_vocab.bos_id] + emitted[:-1]], device=src.device)  # (1, T)
    maps = _teacher_forced_maps(model, src, tgt_in)
    return {"source": list(zh_words), "output": [tgt_vocab.itos[i] for i in emitted],
            "target_inputs": [tgt_vocab.itos[i] for i in tgt_in[0].tolist()],
            "maps": {kind: m[:, 0] for kind, m in maps.items()}}


def cross_attention_alignment(model: EncoderDecoder, pairs: Sequence, src_vocab: WordVocab,
                              tgt_vocab: WordVocab) -> dict:
    """:func:`alignment_score` for every cross-attention head of a Transformer.

    The decoder reads the reference translation (teacher forcing); for each layer and head we
    check whether the peak of the step that emits an English word is its aligned Chinese word.
    Returns {"reordered": (L, h), "all_aligned": (L, h), "num_reordered": int}.
    """
    _check_model(model, (EncoderDecoder,))
    src, _, tgt_in, _ = encode_pairs(pairs, src_vocab, tgt_vocab)
    device = model_device(model)
    cross = _teacher_forced_maps(model, src.to(device), tgt_in.to(device))["cross"]  # (L, B, h, T, S)
    weights = [cross[:, b, :, :len(p.en), :len(p.zh)] for b, p in enumerate(pairs)]  # (L, h, en, zh)
    return alignment_hits(weights, pairs)
