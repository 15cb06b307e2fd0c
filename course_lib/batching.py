"""Turning examples into batches: padding, the label a loss skips, endless shuffled epochs, devices.

- ``IGNORE_INDEX``: targets or labels with this value do not count in a loss
  (``F.cross_entropy``'s default ``ignore_index``): padding, unselected MLM positions.
- ``pad_sequences``: a list of variable-length id lists -> one right-padded (B, T) tensor.
- ``epoch_batches``: endless mini-batches of a list of examples, reshuffled every epoch.
- ``to_device``: move every tensor of a (nested) batch to a device.
- ``model_device``: where a model's parameters live, the device its inputs must go to.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ._checks import check_device

__all__ = ["IGNORE_INDEX", "pad_sequences", "epoch_batches", "to_device", "model_device"]

IGNORE_INDEX = -100

_INT64 = (-(2**63), 2**63 - 1)


def _as_id_row(name: str, seq) -> torch.Tensor:
    """One sequence of ids as a 1-D integer tensor; ``TypeError`` / ``ValueError`` naming it otherwise."""
    what = "a sequence of int ids (a list, a tuple or a 1-D integer tensor)"
    if isinstance(seq, (torch.Tensor, np.ndarray)):
        if seq.ndim == 1 and seq.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long)
        t = torch.as_tensor(seq) if isinstance(seq, torch.Tensor) or seq.dtype.kind in "biuf" else None
    elif isinstance(seq, (str, bytes)) or not isinstance(seq, Iterable) or isinstance(seq, Mapping):
        raise TypeError(f"{name} must be {what}, got {type(seq).__name__} {seq!r:.60}")
    else:
        seq = list(seq)
        if not seq:
            return torch.zeros(0, dtype=torch.long)
        bad = next((x for x in seq if isinstance(x, bool) or not isinstance(x, numbers.Integral)), None)
        if bad is not None:
            raise TypeError(f"{name} must hold int ids, got {type(bad).__name__} {bad!r:.60}")
        low, high = min(seq), max(seq)
        if low < _INT64[0] or high > _INT64[1]:
            raise ValueError(f"{name} holds the id {high if high > _INT64[1] else low}, "
                             "outside the range of torch.long")
        return torch.tensor(seq, dtype=torch.long)
    if t is None or t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must hold int ids, got a {type(seq).__name__} of dtype {seq.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one sequence of ids), got shape {tuple(t.shape)}")
    return t


def pad_sequences(sequences: Sequence, pad_value: int, length: int | None = None) -> torch.Tensor:
    """Right-pad id sequences into one long tensor.

    sequences: B sequences of ints (lists, tuples or 1-D integer tensors), each of length L_b.
    pad_value: the id written after each sequence (``pad_id``, or ``IGNORE_INDEX`` for targets).
    length:    T, the padded length; default the longest L_b. A longer sequence is an error.
    Returns (B, T) torch.long.

    Refused with a message naming the argument: floats, bools, strings, nested lists or 2-D
    tensors as ids (``TypeError`` / ``ValueError``, never a silent rounding), a ``pad_value``
    that is not an int, a ``length`` that is not an int >= 0.
    """
    what = "a list of id sequences (lists, tuples or 1-D integer tensors)"
    if isinstance(sequences, (torch.Tensor, np.ndarray)) and sequences.ndim != 2:
        raise ValueError(f"sequences must be {what} or a 2-D tensor, got a {type(sequences).__name__} of shape "
                         f"{tuple(sequences.shape)}" + (": for one sequence pass [ids]" if sequences.ndim == 1 else ""))
    if isinstance(sequences, (str, bytes, Mapping)) or not isinstance(sequences, Iterable):
        raise TypeError(f"sequences must be {what}, got {type(sequences).__name__}")
    rows = [_as_id_row(f"sequences[{b}]", s) for b, s in enumerate(sequences)]
    if not rows:
        raise ValueError("sequences must hold at least one sequence, got none")
    if isinstance(pad_value, bool) or not isinstance(pad_value, numbers.Integral) \
            or not _INT64[0] <= pad_value <= _INT64[1]:
        raise TypeError(f"pad_value must be an int id (a pad id, or IGNORE_INDEX = {IGNORE_INDEX}), "
                        f"got {pad_value!r}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0):
        raise ValueError(f"length must be an int >= 0 or None, got {length!r}")
    longest = max(len(r) for r in rows)
    T = longest if length is None else int(length)
    if T < longest:
        raise ValueError(f"length={length} is shorter than the longest sequence ({longest} ids)")
    try:
        out = torch.full((len(rows), T), int(pad_value), dtype=torch.long)
    except RuntimeError as e:  # more memory than the machine has
        raise ValueError(f"length={length} asks for a ({len(rows)}, {T}) tensor, too large to allocate") from e
    for b, row in enumerate(rows):
        out[b, : len(row)] = row
    return out


def epoch_batches(items: Sequence, batch_size: int, encode: Callable, seed: int = 0) -> Iterator:
    """Endless mini-batches: shuffle ``items`` each epoch, cut full batches, yield ``encode(batch_items)``.

    The last, incomplete batch of an epoch is dropped, so every batch has ``batch_size`` items.
    The order depends only on ``seed`` (its own ``random.Random``, not the global state).
    The arguments are checked at the call: ``items`` a sequence (list, tuple, ...; not a
    generator or a set), ``batch_size`` an int in [1, len(items)], ``encode`` a function,
    ``seed`` an int.
    """
    if isinstance(items, (str, bytes, Mapping)) or not (hasattr(items, "__len__") and hasattr(items, "__getitem__")):
        raise TypeError(f"items must be a sequence of examples (a list, a tuple, ...; something with len() and "
                        f"items[i]), got {type(items).__name__}")
    if len(items) == 0:
        raise ValueError("items is empty: epoch_batches needs at least one example")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or not 1 <= batch_size <= len(items):
        raise ValueError(f"batch_size must be in [1, {len(items)}] (the number of items), got {batch_size!r}")
    if not callable(encode):
        raise TypeError(f"encode must be a function encode(list_of_items) -> batch, got {type(encode).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return _epoch_batches(items, int(batch_size), encode, int(seed))


def _epoch_batches(items: Sequence, batch_size: int, encode: Callable, seed: int) -> Iterator:
    rng = random.Random(seed)
    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield encode([items[j] for j in order[i:i + batch_size]])


def to_device(batch, device: torch.device):
    """Move every tensor of ``batch`` (a tensor, or tuples / lists / dicts nesting them) to
    ``device``; anything else (strings, ints, ...) is returned unchanged.

    ``device``: "cpu", "cuda", "cuda:<index>", "mps" or "meta", as a str or a torch.device;
    a name torch does not know or a GPU this machine lacks raises ``ValueError``.
    """
    return _move(batch, check_device("device", device, meta=True))


def _move(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _move(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple keeps its type
        return type(batch)(*(_move(v, device) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(v, device) for v in batch)
    return batch


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a model without any): the device its inputs
    must be moved to before it runs (``ids.to(model_device(model))``). The course's task and widget
    functions run a model wherever it is, and bring what they return back to the CPU."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")
