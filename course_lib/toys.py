"""Tiny tasks that make one mechanism visible in a few seconds of training.

``neighbour_task``: read a row of random tokens and, at every position i, name both the
token before it (i-1) and the token after it (i+1). One head of attention can only take a
weighted average; two different looks are needed, so a two-head self-attention layer
learns one head per neighbour (notebook 01, multi-head attention).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .attention import MultiHeadAttention

__all__ = ["neighbour_batch", "NeighbourModel", "neighbour_loss", "head_offsets"]


def neighbour_batch(batch_size: int, length: int, vocab_size: int, generator: torch.Generator | None = None):
    """tokens (B, T) random; targets (B, T, 2): the token at i-1 and at i+1 (wrapping around)."""
    tokens = torch.randint(vocab_size, (batch_size, length), generator=generator)
    targets = torch.stack([tokens.roll(1, dims=1), tokens.roll(-1, dims=1)], dim=-1)
    return tokens, targets


class NeighbourModel(nn.Module):
    """Token + position embedding -> one multi-head self-attention layer -> two classifiers."""

    def __init__(self, vocab_size: int, length: int, d_model: int = 32, num_heads: int = 2):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(length, d_model)
        self.attn = MultiHeadAttention(d_model, num_heads)
        self.before = nn.Linear(d_model, vocab_size)
        self.after = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor):
        """tokens (B, T) -> logits (B, T, 2, V) and attention weights (B, h, T, T)."""
        x = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        out, weights = self.attn(x, x, x)  # self-attention: Q, K and V all come from x
        return torch.stack([self.before(out), self.after(out)], dim=2), weights


def neighbour_loss(model: NeighbourModel, batch) -> torch.Tensor:
    tokens, targets = batch
    logits, _ = model(tokens)
    return F.cross_entropy(logits.flatten(0, 2), targets.flatten())


def head_offsets(weights: torch.Tensor) -> list[tuple[int, float]]:
    """For attention weights (B, h, T, T): each head's favourite offset j - i and its average weight."""
    B, h, T, _ = weights.shape
    i = torch.arange(T)
    out = []
    for head in range(h):
        w = weights[:, head].mean(0)  # (T, T)
        mass = {d: w[i, (i + d) % T].mean().item() for d in range(-(T // 2), T // 2 + 1)}
        best = max(mass, key=mass.get)
        out.append((best, mass[best]))
    return out
