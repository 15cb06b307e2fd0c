"""Input validation shared by every public function of the course.

Each check raises a ``TypeError`` (wrong kind of object or dtype) or a ``ValueError`` (wrong
shape or value) whose message names the argument, what was expected and what was given.
Public functions check their input once, at the boundary; the internal calls they make
afterwards take the unchecked path.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["shape_of", "check_tensor", "check_mask", "check_positive_int", "check_probability"]


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
