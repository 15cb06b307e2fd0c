"""The exercise of notebook 02 (the Transformer): ``causal_mask``.

Importing this module registers it.
"""

from __future__ import annotations

from functools import partial

import torch

from course_lib.exercises.engine import Case, Exercise, Mistake, register
from course_lib.exercises.output_checker import OutputChecker


# ---------------------------------------------------------------------------
# causal_mask: the causal mask of the Transformer decoder
# ---------------------------------------------------------------------------


def _causal_reference(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


def _causal_cases(g: torch.Generator) -> list[Case]:
    # T = 5 comes first: there every mistake below gives a different matrix
    # (for T = 2, diagonal=+1 and "no masking" are the same matrix).
    return [
        Case("T = 5", (5,)),
        Case("T = 1 (a single position, which sees only itself)", (1,)),
        Case("T = 2", (2,)),
        Case("T = 8", (8,)),
    ]


def _causal_tril(T, diagonal=0, dtype=torch.bool):
    return torch.ones(T, T, dtype=dtype).tril(diagonal)


_CAUSAL_MISTAKES = [
    Mistake(
        "off by one: the diagonal is blocked, so position i cannot attend to itself",
        "Position i sees j <= i, itself included: keep the diagonal, "
        "torch.tril with the default diagonal=0 (not diagonal=-1).",
        variants=(partial(_causal_tril, diagonal=-1),),
    ),
    Mistake(
        "off by one: position i also sees position i + 1, one step into the future",
        "Position i sees only j <= i: torch.tril with the default diagonal=0 "
        "(not diagonal=1).",
        variants=(partial(_causal_tril, diagonal=1),),
    ),
    Mistake(
        "this is the upper triangle: position i looks at the future (j >= i), not the past",
        "Keep the lower triangle, on and below the diagonal: torch.tril, not torch.triu.",
        variants=(lambda T: torch.ones(T, T, dtype=torch.bool).triu(),),
    ),
    Mistake(
        "the mask is inverted: it is True where attention is blocked, "
        "but True means 'may attend'",
        "True = may attend, as in F.scaled_dot_product_attention: return the lower "
        "triangle itself, torch.ones(T, T, dtype=torch.bool).tril() (no ~, no triu).",
        variants=(
            lambda T: ~_causal_tril(T),
            lambda T: torch.ones(T, T, dtype=torch.bool).triu(diagonal=1),
        ),
    ),
    Mistake(
        "this is an additive float mask (0 = attend, -inf = blocked), "
        "but here the mask is a bool tensor, True = may attend",
        "Return torch.ones(T, T, dtype=torch.bool).tril(); the attention code turns "
        'False into -inf itself (masked_fill(~mask, float("-inf"))).',
        variants=(
            lambda T: torch.zeros(T, T).masked_fill(~_causal_tril(T), float("-inf")),
        ),
    ),
    Mistake(
        "the mask blocks nothing: every position may attend to every position, "
        "the future included",
        "Keep only j <= i, the lower triangle: torch.ones(T, T, dtype=torch.bool).tril().",
        variants=(lambda T: torch.ones(T, T, dtype=torch.bool),),
    ),
    Mistake(
        "the mask holds numbers (0 / 1) instead of True / False: it must be a bool tensor",
        "Build it with dtype=torch.bool, torch.ones(T, T, dtype=torch.bool).tril(), "
        "or add .bool() at the end.",
        variants=(
            partial(_causal_tril, dtype=torch.float32),
            partial(_causal_tril, dtype=torch.int64),
        ),
    ),
    Mistake(
        "the mask has the wrong shape: it must be a (T, T) matrix, "
        "row i = query position, column j = key position",
        "Return exactly shape (T, T), no batch dim: torch.ones(T, T, dtype=torch.bool).tril() "
        "(it broadcasts over batches later).",
        variants=(
            lambda T: torch.ones(T, dtype=torch.bool),
            lambda T: _causal_tril(T).unsqueeze(0),
        ),
        by_shape=True,
    ),
]

_CAUSAL_SOLUTION = '''\
import torch


def causal_mask(T):
    # M[i, j] = True when position i may attend to position j, i.e. j <= i:
    # the lower triangle, diagonal included.
    return torch.ones(T, T, dtype=torch.bool).tril()   # shape (T, T), dtype bool
'''

register(
    Exercise(
        name="causal_mask",
        signature="causal_mask(T) -> mask, a bool tensor of shape (T, T)",
        checker=OutputChecker(
            outputs=("mask",),
            reference=_causal_reference,
            make_cases=_causal_cases,
            mistakes=_CAUSAL_MISTAKES,
            check_dtype=True,
        ),
        hints=(
            "The notes write the masked attention as softmax((QKᵀ ⊙ M)/√d_k)V, but taken "
            "literally that leaks: a score multiplied by 0 is 0, and e⁰ = 1 still gives the "
            "future weight (notebook 02, section 4). What works is softmax((QKᵀ + M̃)/√d_k)V "
            "with M̃[i, j] = 0 where j <= i and -inf elsewhere; the attention code builds M̃ "
            "from the bool mask you write here. In the (T, T) mask M, row i is the query "
            "position and column j the key position; position i may attend to j <= i, so "
            "M[i, j] is True on and below the diagonal (True = may attend, as in "
            "F.scaled_dot_product_attention).",
            "On and below the diagonal is the lower triangle: torch.tril(x) keeps it "
            "(diagonal included, diagonal=0 is the default) and sets the rest to zero / False. "
            "Start from a matrix that is all True.",
            "torch.ones(T, T, dtype=torch.bool) is all True; .tril() (or torch.tril(...)) keeps "
            "j <= i. Return that (T, T) bool tensor: no .float(), no extra batch dim.",
        ),
        solution=_CAUSAL_SOLUTION,
    )
)
