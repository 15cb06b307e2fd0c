"""Tiny tasks of notebook 01 that make one attention mechanism visible in a few seconds of training.

The neighbour task (``neighbour_batch``, ``NeighbourModel``): read a row of random tokens
and, at every position i, name both the token before it (i-1) and the token after it (i+1).
One head of attention can only take a weighted average; two different looks are needed, so
a two-head self-attention layer learns one head per neighbour (multi-head attention).

The tense task (``tense_batch``, ``TenseTagger``): tag every word of a Chinese sentence with
the sentence's tense. A word sees the sentence only through self-attention, so it learns to
look at 了, 会 or the time word.

Sizes, token ids and sentence pairs are checked where they enter (``ValueError`` / ``TypeError``
naming the argument).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .. import _checks
from .._checks import shape_of
from ..attention import MultiHeadAttention
from ..training import get_device, set_seed, train
from ..batching import model_device

__all__ = ["neighbour_batch", "NeighbourModel", "neighbour_loss", "head_offsets", "train_neighbour_model",
           "neighbour_accuracy",
           "TENSES", "TENSE_WORDS", "tense_of", "tense_batch", "TenseTagger", "tense_loss"]


def neighbour_batch(batch_size: int, length: int, vocab_size: int, generator: torch.Generator | None = None):
    """tokens (B, T) random; targets (B, T, 2): the token at i-1 and at i+1 (wrapping around)."""
    for name, value in (("batch_size", batch_size), ("length", length), ("vocab_size", vocab_size)):
        _checks.check_positive_int(name, value)
    _check_generator(generator)
    tokens = torch.randint(vocab_size, (batch_size, length), generator=generator)
    targets = torch.stack([tokens.roll(1, dims=1), tokens.roll(-1, dims=1)], dim=-1)
    return tokens, targets


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


class NeighbourModel(nn.Module):
    """Token + position embedding -> one multi-head self-attention layer -> two classifiers."""

    def __init__(self, vocab_size: int, length: int, d_model: int = 32, num_heads: int = 2):
        super().__init__()
        _checks.check_positive_int("vocab_size", vocab_size)
        _checks.check_positive_int("length", length)
        self.vocab_size, self.length = vocab_size, length
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(length, d_model)
        self.attn = MultiHeadAttention(d_model, num_heads)
        self.before = nn.Linear(d_model, vocab_size)
        self.after = nn.Linear(d_model, vocab_size)

    def _check_inputs(self, tokens):
        _checks.check_token_ids("tokens", tokens, self.vocab_size, self.length, limit="length")

    @_checks.checked_by(_check_inputs)
    def forward(self, tokens: torch.Tensor):
        """tokens (B, T) -> logits (B, T, 2, V) and attention weights (B, h, T, T)."""
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        out, weights = self.attn(x, x, x)  # self-attention: Q, K and V all come from x
        return torch.stack([self.before(out), self.after(out)], dim=2), weights


def neighbour_loss(model: NeighbourModel, batch) -> torch.Tensor:
    """Mean cross-entropy of both neighbours; batch = (tokens (B, T), targets (B, T, 2)) from neighbour_batch."""
    tokens, targets = _pair("batch", batch, "(tokens, targets)")
    if not isinstance(targets, torch.Tensor) or not isinstance(tokens, torch.Tensor) \
            or targets.shape != (*tokens.shape, 2):
        raise ValueError(f"batch's targets must have shape (B, T, 2) for tokens (B, T), got "
                         f"{_shape(targets)} for {_shape(tokens)}")
    logits, _ = model(tokens)
    return F.cross_entropy(logits.flatten(0, 2), targets.flatten())


def head_offsets(weights: torch.Tensor) -> list[tuple[int, float]]:
    """For attention weights (B, h, T, T): each head's favourite offset j - i and its average weight."""
    if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
        raise TypeError(f"weights must be a floating-point tensor (B, h, T, T), got "
                        f"{weights.dtype if isinstance(weights, torch.Tensor) else type(weights).__name__}")
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2] or 0 in weights.shape:
        raise ValueError(f"weights must have shape (B, h, T, T), got {shape_of(weights)}")
    B, h, T, _ = weights.shape
    i = torch.arange(T, device=weights.device)
    out = []
    for head in range(h):
        w = weights[:, head].mean(0)  # (T, T)
        mass = {d: w[i, (i + d) % T].mean().item() for d in range(-(T // 2), T // 2 + 1)}
        best = max(mass, key=mass.get)
        out.append((best, mass[best]))
    return out


def train_neighbour_model(num_heads: int = 2, *, seed: int = 0, steps: int = 600, vocab_size: int = 16,
                          length: int = 8, d_model: int = 32, batch_size: int = 64, lr: float = 0.003,
                          progress: bool = True, device=None):
    """The recipe of notebook 01's neighbour task: a NeighbourModel with ``num_heads`` heads, trained
    with the course's loop (AdamW, cosine schedule) on fresh random rows.

    The seed sets the initial weights and the rows drawn (a torch.Generator seeded with it).
    ``device``: where it trains and stays ("cpu", "cuda", "mps"), default ``get_device()``.
    Returns (model, history).
    """
    _checks.check_positive_int("num_heads", num_heads)
    _checks.check_int("seed", seed)
    set_seed(seed)
    # built on the CPU (the same initial weights everywhere), rows drawn on the CPU; train() moves both
    model = NeighbourModel(vocab_size=vocab_size, length=length, d_model=d_model, num_heads=num_heads)
    g = torch.Generator().manual_seed(seed)
    history = train(model, lambda step: neighbour_batch(batch_size, length, vocab_size, g), neighbour_loss,
                    steps=steps, lr=lr, schedule="cosine", seed=seed, live_plot=False, progress=progress,
                    desc=f"{num_heads}-head self-attention", device=get_device() if device is None else device)
    return model, history


@torch.no_grad()
def neighbour_accuracy(model: NeighbourModel, tokens: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Share of positions whose neighbour is named right: {"before": ..., "after": ..., "both": ...}.

    tokens (B, T) and targets (B, T, 2) as :func:`neighbour_batch` returns them; "both" is the
    mean of the two (the accuracy notebook 01 prints). The model runs on its own device.
    """
    if not isinstance(model, NeighbourModel):
        raise TypeError(f"model must be a NeighbourModel, got {type(model).__name__}")
    if not isinstance(targets, torch.Tensor) or not isinstance(tokens, torch.Tensor) \
            or targets.shape != (*tokens.shape, 2):
        raise ValueError(f"targets must have shape (B, T, 2) for tokens (B, T), got {_shape(targets)} for "
                         f"{_shape(tokens)}")
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(tokens.to(model_device(model)))
    finally:
        model.train(was_training)
    right = (logits.argmax(-1).cpu() == targets.cpu()).float()  # (B, T, 2)
    before, after = right[..., 0].mean().item(), right[..., 1].mean().item()
    return {"before": before, "after": after, "both": (before + after) / 2}


# ---------------------------------------------------------------------------
# Self-attention that reads the tense: every word must find 了, 会 or the time word
# ---------------------------------------------------------------------------

TENSES = ("present", "past", "future")
# The Chinese words that carry the tense: 了 (done), 会 (will), and the time words.
TENSE_WORDS = ("了", "会", "昨天", "上周", "明天", "下周")


def _pair(name: str, value, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair {what}, got {type(value).__name__}"
                         + (f" of {len(value)} items" if isinstance(value, (tuple, list)) else ""))
    return tuple(value)


def _shape(t) -> str:
    return shape_of(t) if isinstance(t, torch.Tensor) else type(t).__name__


def tense_of(pair) -> int:
    """The tense of a corpus sentence pair, as an index into TENSES (read off the English side)."""
    if isinstance(getattr(pair, "en", None), str) or not hasattr(pair, "en") or not hasattr(pair, "zh"):
        raise TypeError(f"pair must be a SentencePair (zh and en: lists of words), got {pair!r}")
    if "will" in pair.en:
        return TENSES.index("future")
    if "了" in pair.zh:  # the grammar marks every past sentence with 了
        return TENSES.index("past")
    return TENSES.index("present")


def tense_batch(pairs, vocab, batch_size: int, generator: torch.Generator | None = None):
    """A random batch: Chinese ids (B, S) padded with 0, and each sentence's tense (B,)."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs must be a list of SentencePair, got {type(pairs).__name__}")
    if len(pairs) == 0:
        raise ValueError("pairs must hold at least one sentence pair, got none")
    _checks.check_positive_int("batch_size", batch_size)
    _check_generator(generator)
    picks = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
    ids, _ = vocab.encode_batch([pairs[i].zh for i in picks])
    return ids, torch.tensor([tense_of(pairs[i]) for i in picks])


class TenseTagger(nn.Module):
    """H = word + position embeddings; one self-attention head; every word predicts the sentence's tense.

    Each word sees the sentence only through its context_i = sum_j a_ij v_j (no residual path),
    so to answer it has to attend to the words that carry the tense.
    """

    def __init__(self, vocab_size: int, max_len: int = 32, d_model: int = 32):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("max_len", max_len), ("d_model", d_model)):
            _checks.check_positive_int(name, value)
        self.vocab_size, self.max_len = vocab_size, max_len
        self.tok = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.pos = nn.Embedding(max_len, d_model)
        self.attn = MultiHeadAttention(d_model, num_heads=1, bias=False)  # Q = HW_q exactly, as in the notes
        self.out = nn.Linear(d_model, len(TENSES))

    def _check_ids(self, ids):
        _checks.check_token_ids("ids", ids, self.vocab_size, self.max_len, length="S")

    @_checks.checked_by(_check_ids)
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, S) -> H (B, S, d)."""
        return self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))

    @_checks.checked_by(_check_ids)
    def forward(self, ids: torch.Tensor):
        """ids (B, S) -> logits (B, S, 3) per word, attention weights (B, 1, S, S)."""
        H = self.embed(ids)
        context, weights = self.attn(H, H, H, mask=(ids != 0)[:, None, None, :])
        return self.out(context), weights


def tense_loss(model: TenseTagger, batch) -> torch.Tensor:
    """Mean cross-entropy of every real word's tense; batch = (ids (B, S), tense (B,)) from tense_batch."""
    ids, tense = _pair("batch", batch, "(ids, tense)")
    if not isinstance(tense, torch.Tensor) or not isinstance(ids, torch.Tensor) or tense.shape != ids.shape[:1]:
        raise ValueError(f"batch's tense must have shape (B,) for ids (B, S), got {_shape(tense)} for {_shape(ids)}")
    logits, _ = model(ids)
    real = ids != 0
    return F.cross_entropy(logits[real], tense[:, None].expand_as(ids)[real])
