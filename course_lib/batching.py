"""Turning examples into batches: one padding helper and the label a loss skips.

- ``IGNORE_INDEX``: targets or labels with this value do not count in a loss
  (``F.cross_entropy``'s default ``ignore_index``): padding, unselected MLM positions.
- ``pad_sequences``: a list of variable-length id lists -> one right-padded (B, T) tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["IGNORE_INDEX", "pad_sequences"]

IGNORE_INDEX = -100


def pad_sequences(sequences: Sequence, pad_value: int, length: int | None = None) -> torch.Tensor:
    """Right-pad id sequences into one long tensor.

    sequences: B sequences of ints (lists, tuples or 1-D tensors), each of length L_b.
    pad_value: the id written after each sequence (``pad_id``, or ``IGNORE_INDEX`` for targets).
    length:    T, the padded length; default the longest L_b. A longer sequence is an error.
    Returns (B, T) torch.long.
    """
    rows = [s.tolist() if isinstance(s, torch.Tensor) else list(s) for s in sequences]
    if not rows:
        raise ValueError("sequences must hold at least one sequence, got none")
    longest = max(map(len, rows))
    T = longest if length is None else length
    if T < longest:
        raise ValueError(f"length={length} is shorter than the longest sequence ({longest} ids)")
    out = torch.full((len(rows), T), pad_value, dtype=torch.long)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
