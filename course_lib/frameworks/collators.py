"""Count what a masking rule did: ``DataCollatorForLanguageModeling`` beside ``course_lib.bert.mask_tokens``.

- :func:`count_masking`: from the original ids, the masked inputs and the labels, how many
  ordinary tokens there were, how many were selected, and what each selected one became
  ([MASK], a random token, unchanged); plus what should never happen (a special token or
  padding selected, a random pick that is a special token).
- :func:`binomial_se`: the standard error of a share measured on n trials, sqrt(p (1 - p) / n),
  to judge whether a measured share differs from the rule's by more than chance.

Shapes: B rows, T tokens per row.
"""

from __future__ import annotations

import math

import torch

from ..batching import IGNORE_INDEX

__all__ = ["count_masking", "binomial_se"]


def count_masking(original: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, *, mask_id: int,
                  special_ids, pad_id: int) -> dict[str, int]:
    """Counts over a masked batch. original, inputs, labels: integer tensors (B, T) of the same shape;
    labels hold the original id where a token was selected and IGNORE_INDEX (-100) elsewhere.

    Returns {"ordinary": tokens that are not special and not padding, "selected", "mask",
    "random" (changed to another id than [MASK]), "unchanged", "special selected" (incl. padding),
    "random is special" (a random replacement that is a special id)}. A random pick that draws the
    original id counts as "unchanged", as a learner reading the input would see it.
    """
    for name, t in (("original", original), ("inputs", inputs), ("labels", labels)):
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.long, torch.int):
            raise TypeError(f"{name} must be an integer tensor (B, T), got {type(t).__name__}")
        if t.shape != original.shape:
            raise ValueError(f"{name} must have the shape of original {tuple(original.shape)}, got {tuple(t.shape)}")
    special = torch.isin(original, torch.tensor(sorted(set(int(i) for i in special_ids) | {int(pad_id)})))
    selected = labels != IGNORE_INDEX
    if (labels[selected] != original[selected]).any():
        raise ValueError("labels must hold the original id at every selected position")
    as_mask = selected & (inputs == mask_id) & (original != mask_id)
    same = selected & (inputs == original)
    changed = selected & ~as_mask & ~same
    special_out = torch.isin(inputs, torch.tensor(sorted(set(int(i) for i in special_ids))))
    return {"ordinary": int((~special).sum()), "selected": int(selected.sum()), "mask": int(as_mask.sum()),
            "random": int(changed.sum()), "unchanged": int(same.sum()),
            "special selected": int((selected & special).sum()),
            "random is special": int((changed & special_out).sum())}


def binomial_se(p: float, n: int) -> float:
    """Standard error of a share with true value ``p`` measured on ``n`` independent trials."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (the number of trials), got {n!r}")
    return math.sqrt(p * (1 - p) / n)
