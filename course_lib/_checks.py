"""Input validation shared by every public function of the course, and "checked once".

Each check raises a ``TypeError`` (wrong kind of object or dtype) or a ``ValueError`` (wrong
shape or value) whose message names the argument, what was expected and what was given.

Inputs are checked once, where they enter the library. A module states its checks in a small
method beside ``forward`` (``_check_inputs``; ``_check_<name>`` beside another method) and names
it with :func:`checked_by`::

    class EncoderLayer(nn.Module):
        def _check_inputs(self, x, mask=None):
            _checks.check_stream("x", x, self.d_model, ...)
            ...

        @_checks.checked_by(_check_inputs)
        def forward(self, x, mask=None):
            attn_out, weights = self.self_attn(x, x, x, mask)   # plain calls of the sub-layers
            ...

Calling ``layer(x, mask)`` runs ``_check_inputs(layer, x, mask)`` first, then ``forward``.
Inside that call, the sub-layers' own checked methods skip their checks: their inputs were
built by the library from inputs already checked. A mask is therefore checked once per layer,
stack or model call, not once per sub-layer, and ``forward`` reads as the formula it computes.
A call from outside the library (a notebook, a learner's own ``nn.Module``, another thread) is
always checked. The one rule for a checked method: pass the checked calls inside it only what
it built from its own checked inputs.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import re
import threading
from collections.abc import Callable, Iterable

import torch

__all__ = [
    "checked_by",
    "shape_of",
    "check_tensor",
    "check_stream",
    "check_same_shape",
    "check_dtype",
    "check_mask",
    "check_memory_and_masks",
    "check_token_ids",
    "check_id_range",
    "check_positive_int",
    "check_probability",
    "check_number",
    "check_int",
    "check_generator",
    "check_bool",
    "check_device",
    "check_writable_path",
    "check_path",
    "check_checkpoint_keys",
    "ID_DTYPES",
]

# the integer dtypes nn.Embedding accepts as indices
ID_DTYPES = (torch.int64, torch.int32)


def shape_of(t: torch.Tensor) -> str:
    """``(2, 3, 4)``: a tensor's shape as it reads in an error message."""
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_tensor(name: str, t, min_dim: int, what: str) -> None:
    """``t`` must be a floating-point tensor with at least ``min_dim`` dimensions (shape described by ``what``)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {what}, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of shape {what}, got dtype {t.dtype}")
    if t.dim() < min_dim:
        raise ValueError(f"{name} must have shape {what}, got {shape_of(t)}")


def check_stream(name: str, x, width: int, what: str, *, dim: int | None = 3) -> None:
    """``x`` must be a floating-point tensor whose last axis has ``width`` entries.

    With ``dim`` (default 3: a (B, T, d) stream of token vectors) it must have exactly that many
    axes; with ``dim=None`` any leading axes (..., width). ``what`` describes the shape in the
    message, e.g. ``"(B, T, d_model=64)"``.
    """
    check_tensor(name, x, dim or 1, what)
    if (dim is not None and x.dim() != dim) or x.shape[-1] != width:
        raise ValueError(f"{name} must have shape {what}, got {shape_of(x)}")


def check_same_shape(name: str, t, ref_name: str, ref: torch.Tensor) -> None:
    """``t`` must be a tensor with exactly the shape of ``ref`` (e.g. targets and idx)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with the shape of {ref_name} {shape_of(ref)}, "
                        f"got {type(t).__name__}")
    if t.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {shape_of(ref)}, got {shape_of(t)}")


def check_dtype(name: str, t: torch.Tensor, dtype: torch.dtype, source: str) -> None:
    """The tensor ``t`` must have ``dtype``, the dtype of ``source`` (another input, or a module's
    parameters, e.g. ``"the parameters of MultiHeadAttention"``): torch multiplies no float32 by float64.
    """
    if t.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of {source}, {dtype}, got {t.dtype}: "
                        f"convert one of them to the other's dtype, e.g. {name}.to({dtype})")


def check_mask(mask, expected: tuple[int, ...], what: str, name: str = "mask") -> None:
    """``mask`` must be boolean (True = may attend) and broadcastable to ``expected`` (..., Tq, Tk)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor broadcastable to {what}, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must have dtype torch.bool (True = may attend), got {mask.dtype}; "
            "convert with mask.bool() (and invert it if 1 meant 'blocked')"
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, expected)
    except RuntimeError:
        shape = None
    if shape != torch.Size(expected):
        raise ValueError(f"{name} must be broadcastable to {what} = {tuple(expected)}, got {shape_of(mask)}")


def check_memory_and_masks(x_name: str, x: torch.Tensor, memory, src_mask, tgt_mask, d_model: int,
                           num_heads: int) -> None:
    """A decoder's inputs beside its target ``x`` (B, T) or (B, T, d): memory (B, S, d) and both masks.

    ``x_name`` names the target (the layer's input stream or the stack's ids) in the messages.
    """
    check_stream("memory", memory, d_model, f"(B, S, d_model) with d_model={d_model}")
    (B, T), S = x.shape[:2], memory.shape[1]
    if memory.shape[0] != B:
        raise ValueError(f"memory must have the batch size of {x_name}: "
                         f"{x_name} {shape_of(x)}, memory {shape_of(memory)}")
    if tgt_mask is not None:
        check_mask(tgt_mask, (B, num_heads, T, T), "(B, h, T, T)", name="tgt_mask")
    if src_mask is not None:
        check_mask(src_mask, (B, num_heads, T, S), "(B, h, T, S)", name="src_mask")


def check_positive_int(name: str, value, allow_none: bool = False) -> None:
    """``value`` must be an int > 0 (or None when ``allow_none``); ``True`` is not a size."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def check_probability(name: str, value, *, upper_inclusive: bool = False) -> None:
    """``value`` must be a real number in [0, 1) (or [0, 1] with ``upper_inclusive``), e.g. a dropout rate."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and 0.0 <= value and (value <= 1.0 if upper_inclusive else value < 1.0)
    if not ok:
        raise ValueError(f"{name} must be a float in [0, 1{']' if upper_inclusive else ')'}, got {value!r}")


def check_number(name: str, value, *, positive: bool = False) -> None:
    """``value`` must be a finite real number >= 0 (> 0 with ``positive``), not a bool, NaN or inf:
    a LayerNorm epsilon, a temperature, a loss weight. TypeError for a non-number, ValueError out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not (float("-inf") < value < float("inf")) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} and finite, got {value!r}")


def check_int(name: str, value, size: int | None = None, size_name: str = "vocab_size") -> None:
    """``value`` must be an int (not a bool); with ``size``, in [0, size): a token id such as ``eos_id``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if size is not None and not 0 <= value < size:
        raise ValueError(f"{name} must be an id in [0, {size_name}={size}), got {value}")


def check_generator(name: str, generator) -> None:
    """``generator`` must be a torch.Generator or None (None: torch's global random state)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}: "
                        "make one with torch.Generator().manual_seed(seed)")


def check_token_ids(name: str, ids, vocab_size: int | None = None, max_len: int | None = None, *,
                    length: str = "T", limit: str = "max_len") -> None:
    """``ids`` must be a (B, T) torch.long (or torch.int) tensor of token ids for an embedding.

    At least one token per row; with ``max_len``, at most ``max_len`` (the position table's size,
    called ``limit`` in the message: ``block_size``, ``max_position_embeddings``); with
    ``vocab_size``, every id in [0, vocab_size). ``length`` names the length axis ("T", "L", "S").
    """
    what = f"(B, {length})"
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be an integer torch.Tensor of shape {what}, got {type(ids).__name__}")
    if ids.dtype not in ID_DTYPES:
        raise TypeError(f"{name} must hold integer token ids (an integer tensor, torch.long or torch.int), "
                        f"got dtype {ids.dtype}")
    if ids.dim() != 2:
        raise ValueError(f"{name} must have shape {what}, got {shape_of(ids)}")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one token, got {shape_of(ids)}")
    if max_len is not None and ids.shape[1] > max_len:
        raise ValueError(f"{name} has length {length}={ids.shape[1]}, more than {limit}={max_len}: "
                         f"keep at most its last {max_len} tokens, or use a model with a larger {limit}")
    if vocab_size is not None:
        check_id_range(name, ids, vocab_size)


def check_id_range(name: str, ids: torch.Tensor, size: int, size_name: str = "vocab_size") -> None:
    """Every entry of the integer tensor ``ids`` must lie in [0, size) (``size_name`` in the message)."""
    if ids.numel() and (ids.min() < 0 or ids.max() >= size):
        raise ValueError(f"{name} must hold ids in [0, {size_name}={size}), "
                         f"got values from {int(ids.min())} to {int(ids.max())}")


def check_bool(name: str, value) -> None:
    """``value`` must be True or False (not 0, 1 or a string): a switch such as ``norm_first``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_device(name: str, device, *, meta: bool = False) -> torch.device:
    """``device`` must be a device this machine has; returns it as a ``torch.device``.

    Accepted: ``"cpu"``, ``"cuda"`` / ``"cuda:<index>"`` or a GPU index (only where that GPU
    exists), ``"mps"`` (only where Apple's GPU is available), as a str or a ``torch.device``;
    with ``meta=True`` also ``"meta"`` (tensors with shapes but no numbers). Refused: a name
    torch does not know (``"gpu0"``: ``ValueError``), another type (``TypeError``), and a GPU
    this machine does not have (``ValueError`` saying so: the course never needs one).
    """
    what = "'cpu', 'cuda', 'cuda:<index>', 'mps' or 'meta'" if meta else "'cpu', 'cuda', 'cuda:<index>' or 'mps'"
    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):
        raise TypeError(f"{name} must be {what} (a str or a torch.device), "
                        f"got {type(device).__name__} {device!r}")
    try:
        if isinstance(device, int):  # a GPU index, as torch.device(0) reads it on a GPU machine
            if device < 0:
                raise ValueError
            dev = torch.device("cuda", device)
        else:
            dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must be one of {what}, got {device!r}") from None
    if dev.type == "cpu":
        return torch.device("cpu")  # one CPU device: "cpu:0" means the same
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{name}={device!r} asks for a GPU, but no GPU (CUDA) is available on this machine: "
                             "use 'cpu' (the course never needs a GPU), or get_device() to pick the GPU when there is one")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"{name}={device!r} asks for GPU {dev.index}, but this machine has {count} "
                             f"(cuda:0 to cuda:{count - 1})")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name}={device!r} asks for Apple's GPU (mps), which this machine does not have: "
                             "use 'cpu' (the course never needs a GPU)")
        return dev
    if dev.type == "meta" and meta:
        return dev
    raise ValueError(f"{name} must be one of {what}, got {device!r}")


def check_writable_path(name: str, path):
    """``path`` must be a str or path naming a file that can be written; returns it as a ``pathlib.Path``.

    Refused before any work is done: another type (``TypeError``), an empty name, an existing
    folder, a path under an existing file, and a folder this user may not write in
    (``ValueError``). Missing parent folders are allowed (the writer creates them).
    """
    import os
    import pathlib

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or a pathlib.Path naming a file, got {type(path).__name__} {path!r}")
    if str(path) == "":
        raise ValueError(f"{name} must name a file, e.g. 'runs/model.pt', got ''")
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a folder: name a file inside it, e.g. {str(path / 'model.pt')!r}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name}={str(path)!r} cannot be written: {str(parent)!r} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{name}={str(path)!r} cannot be written: no permission to write in {str(parent)!r}")
            break
    return path


def check_path(name: str, path):
    """``path`` must be a str or path (not empty) naming a file or folder to read; returns it as a ``pathlib.Path``.

    Only the kind of object is checked (``TypeError`` for None, an int, bytes ...; ``ValueError``
    for ''): whether it exists, and is a file or a folder, the caller says in its own words.
    """
    import os
    import pathlib

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or a pathlib.Path, got {type(path).__name__} {path!r:.60}")
    if str(path) == "":
        raise ValueError(f"{name} must name a file or folder, got ''")
    return pathlib.Path(path)


def check_checkpoint_keys(source: str, found: Iterable[str], expected: Iterable[str],
                          skip: str | None = None) -> None:
    """A checkpoint must hold exactly the ``expected`` names, besides those that match the regular
    expression ``skip`` (buffers, heads the model has not). Raises ``ValueError`` naming every
    missing and every unused name, so a wrong or damaged file never loads half-way.
    """
    found = {k for k in found if skip is None or not re.fullmatch(skip, k)}
    expected = set(expected)
    problems = []
    if missing := sorted(expected - found):
        problems.append("missing " + ", ".join(missing))
    if unused := sorted(found - expected):
        problems.append("unused " + ", ".join(unused))
    if problems:
        raise ValueError(f"{source} does not fit the model: {'; '.join(problems)}")


# ---------------------------------------------------------------------------
# Checked once: the check runs at the outermost checked call only
# ---------------------------------------------------------------------------

# How many checked calls this thread is inside (0: the next checked call comes from outside the
# library). Per thread, so that two threads running models never skip each other's checks.
_state = threading.local()


def checked_by(check: Callable) -> Callable[[Callable], Callable]:
    """Decorator: run ``check(*args, **kwargs)`` before the decorated function, at the outermost call only.

    ``check`` takes exactly the decorated function's parameters (for a method: ``self`` and the
    rest, with the same names, order and defaults; a mismatch raises ``TypeError`` when the class
    is defined) and raises on bad input. Inside a checked call (a layer calling its sub-layers, a model calling
    its blocks) the inputs are ones the library built from already-checked inputs, so nested
    checked calls skip their checks. The count of open calls is restored on the way out, even
    when the check or the function raises; it is kept per thread.

    ``functools.wraps`` keeps the function's name, docstring and source:
    ``inspect.getsource(layer.forward)`` shows the decorator line and the original body.
    """
    if not callable(check):
        raise TypeError(f"checked_by takes the check function itself, got {check!r}")
    wanted = _parameters(check)

    def decorate(fn: Callable) -> Callable:
        if _parameters(fn) != wanted:
            raise TypeError(f"checked_by: {check.__qualname__}{inspect.signature(check)} must take the parameters of "
                            f"{fn.__qualname__}{inspect.signature(fn)}")

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            depth = getattr(_state, "depth", 0)
            if depth == 0:  # called from outside the library: check
                check(*args, **kwargs)
            _state.depth = depth + 1
            try:
                return fn(*args, **kwargs)
            finally:
                _state.depth = depth

        return checked

    return decorate


def _parameters(fn: Callable) -> list:
    """(name, kind, default) of each parameter of ``fn``: what a check must share with its function."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
