"""Turning examples into batches: padding, the label a loss skips, endless shuffled epochs, devices.

- ``IGNORE_INDEX``: targets or labels with this value do not count in a loss
  (``F.cross_entropy``'s default ``ignore_index``): padding, unselected MLM positions.
- ``pad_sequences``: a list of variable-length id lists -> one right-padded (B, T) tensor.
- ``epoch_batches``: endless mini-batches of a list of examples, reshuffled every epoch.
- ``to_device``: move every tensor of a (nested) batch to a device.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

__all__ = ["IGNORE_INDEX", "pad_sequences", "epoch_batches", "to_device"]

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


def epoch_batches(items: Sequence, batch_size: int, encode: Callable, seed: int = 0) -> Iterator:
    """Endless mini-batches: shuffle ``items`` each epoch, cut full batches, yield ``encode(batch_items)``.

    The last, incomplete batch of an epoch is dropped, so every batch has ``batch_size`` items.
    The order depends only on ``seed`` (its own ``random.Random``, not the global state).
    """
    if not 1 <= batch_size <= len(items):
        raise ValueError(f"batch_size must be in [1, {len(items)}] (the number of items), got {batch_size}")
    rng = random.Random(seed)
    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield encode([items[j] for j in order[i:i + batch_size]])


def to_device(batch, device: torch.device):
    """Move every tensor of ``batch`` (a tensor, or tuples / lists / dicts nesting them) to
    ``device``; anything else (strings, ints, ...) is returned unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple keeps its type
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
