"""The exercises of notebook 01 (attention): ``soft_attention`` and ``scaled_dot_product_attention``.

Importing this module registers them.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from course_lib.exercises.engine import Case, Exercise, Mistake, register
from course_lib.exercises.output_checker import OutputChecker


# ---------------------------------------------------------------------------
# soft_attention: soft attention over encoder states
# ---------------------------------------------------------------------------


def _soft_reference(H, q):
    a = torch.softmax(H @ q, dim=0)
    return a, a @ H


def _soft_wrong(H, q, *, weights="softmax", context="rows", scale=1.0):
    """soft attention with one deliberate mistake (see _SOFT_MISTAKES)."""
    scores = (H @ q) * scale
    if weights == "softmax":
        a = torch.softmax(scores, dim=0)
    elif weights == "raw":
        a = scores
    elif weights == "sum":
        a = scores / scores.sum()
    elif weights == "naive_exp":
        e = torch.exp(scores)
        a = e / e.sum()
    if context == "rows":
        ctx = a @ H
    elif context == "sum_dim1":
        ctx = (a[:, None] * H).sum(dim=1)
    elif context == "columns":
        ctx = (H * a).sum(dim=0)
    elif context == "H_at_a":
        ctx = H @ a
    elif context == "mean":
        ctx = H.mean(dim=0)
    elif context == "sum":
        ctx = H.sum(dim=0)
    return a, ctx


def _soft_cases(g: torch.Generator) -> list[Case]:
    def states(n, d, dtype=torch.float32):
        H = torch.randn(n, d, generator=g, dtype=dtype)
        q = torch.randn(d, generator=g, dtype=dtype)
        return H, q

    # scores ≈ 1000: exp overflows to inf (also in float64) unless the max is subtracted
    H_big, q_big = states(6, 4, torch.float64)
    H_big[:, 0] = 10 + 0.01 * torch.randn(6, generator=g, dtype=torch.float64)
    q_big[0] = 100.0
    return [
        Case("H of shape (5, 4), q of shape (4,)", states(5, 4)),
        # n == d: summing over the wrong axis gives wrong values here instead of an error
        Case("H of shape (4, 4), q of shape (4,)", states(4, 4)),
        Case("H of shape (7, 3), q of shape (3,), float64", states(7, 3, torch.float64)),
        Case("H of shape (1, 3), q of shape (3,) (a single state)", states(1, 3)),
        Case(
            "H of shape (6, 4), q of shape (4,) with large scores (≈1000)",
            (H_big, q_big),
            note="With scores ≈ 1000, exp() overflows: subtract the max score first, "
            "or use torch.softmax.",
        ),
    ]


_SOFT_MISTAKES = [
    Mistake(
        "softmax is missing — the weights a are the raw scores h_i·q",
        "Apply a_i = softmax(s(h_i, q)): a = torch.softmax(scores, dim=0).",
        variants=(partial(_soft_wrong, weights="raw"),),
    ),
    Mistake(
        "a is the scores divided by their sum, without exp — that is not a softmax",
        "softmax takes exp first: a = torch.softmax(scores, dim=0).",
        variants=(partial(_soft_wrong, weights="sum"),),
    ),
    Mistake(
        "context is summed over the wrong axis",
        "context = Σ_i a_i·h_i is a weighted sum of the ROWS of H: a @ H, shape (d,).",
        variants=(
            partial(_soft_wrong, context="sum_dim1"),
            partial(_soft_wrong, context="columns"),
            partial(_soft_wrong, context="H_at_a"),
        ),
    ),
    Mistake(
        "context ignores the weights a (plain mean or sum of the rows of H)",
        "Weight each row h_i by a_i: context = a @ H.",
        variants=(
            partial(_soft_wrong, context="mean"),
            partial(_soft_wrong, context="sum"),
        ),
    ),
    Mistake(
        "the scores are divided by √d — this exercise uses plain dot-product scores",
        "Use s(h_i, q) = h_i·q with no scaling (the 1/√d scaling comes in the next exercise).",
        variants=(lambda H, q: _soft_wrong(H, q, scale=1 / math.sqrt(H.shape[-1])),),
    ),
    Mistake(
        "your softmax overflows: exp(1000) is inf, so the weights become nan",
        "Subtract the max score before exp, or use torch.softmax (it does this for you).",
        variants=(partial(_soft_wrong, weights="naive_exp"),),
    ),
]

_SOFT_SOLUTION = '''\
import torch


def soft_attention(H, q):
    scores = H @ q                     # s(h_i, q) = h_i · q, shape (n,)
    a = torch.softmax(scores, dim=0)   # a_i = softmax(s(h_i, q)), shape (n,)
    context = a @ H                    # Σ_i a_i·h_i, shape (d,)
    return a, context
'''

register(
    Exercise(
        name="soft_attention",
        signature="soft_attention(H, q) -> (a, context)",
        checker=OutputChecker(
            outputs=("a", "context"),
            reference=_soft_reference,
            make_cases=_soft_cases,
            mistakes=_SOFT_MISTAKES,
        ),
        hints=(
            "Start with the scores s(h_i, q) = h_i · q. For all rows of H at once this is "
            "one matrix-vector product: scores = H @ q, shape (n,).",
            "Turn the scores into weights: a_i = softmax(s(h_i, q)) = exp(s_i) / Σ_j exp(s_j). "
            "Use torch.softmax(scores, dim=0): it subtracts the max first, so large scores "
            "do not overflow.",
            "context = Σ_i a_i·h_i is a weighted sum of the rows of H: context = a @ H, "
            "shape (d,). Return a, context.",
        ),
        solution=_SOFT_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------


def _sdpa_reference(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return output, weights


def _sdpa_wrong(
    q, k, v, mask=None, *, scale="sqrt_dk", dim=-1, mask_mode="fill", fill=float("-inf"),
    transpose=lambda k: k.transpose(-2, -1),
):
    """scaled dot-product attention with one deliberate mistake (see _SDPA_MISTAKES)."""
    divisor = {
        "sqrt_dk": math.sqrt(q.shape[-1]),
        "none": 1.0,
        "dk": q.shape[-1],
        "sqrt_dv": math.sqrt(v.shape[-1]),
    }[scale]
    scores = q @ transpose(k) / divisor
    # mask_mode "ignore" leaves the scores unmasked
    if mask is not None and mask_mode == "fill":
        scores = scores.masked_fill(~mask, fill)
    elif mask is not None and mask_mode == "inverted":
        scores = scores.masked_fill(mask, fill)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and mask_mode == "after_softmax":
        weights = weights * mask
    return weights @ v, weights


def _sdpa_cases(g: torch.Generator) -> list[Case]:
    def qkv(batch, Tq, Tk, d_k, d_v, dtype=torch.float32):
        return (
            torch.randn(*batch, Tq, d_k, generator=g, dtype=dtype),
            torch.randn(*batch, Tk, d_k, generator=g, dtype=dtype),
            torch.randn(*batch, Tk, d_v, generator=g, dtype=dtype),
        )

    def causal(Tq, Tk):
        return torch.ones(Tq, Tk, dtype=torch.bool).tril()

    # padding: the second sequence has only 3 real keys out of 6
    padding = (torch.arange(6) < torch.tensor([6, 3])[:, None]).view(2, 1, 1, 6)
    batched_note = (
        "Earlier unbatched inputs passed: transpose only the last two dims, "
        "k.transpose(-2, -1) (k.T and k.t() are for 2-D matrices), softmax over dim=-1."
    )
    mask_note = (
        "This is the first input with a mask (True = may attend): set the blocked scores "
        'to float("-inf") before the softmax.'
    )
    return [
        Case("q (5, 8), k (5, 8), v (5, 8)", qkv((), 5, 5, 8, 8)),
        Case("q (3, 4), k (6, 4), v (6, 5), float64", qkv((), 3, 6, 4, 5, torch.float64)),
        Case("q (2, 4, 8), k (2, 6, 8), v (2, 6, 5)", qkv((2,), 4, 6, 8, 5),
             note=batched_note),
        Case("q (2, 3, 4, 8), k (2, 3, 6, 8), v (2, 3, 6, 5)",
             qkv((2, 3), 4, 6, 8, 5), note=batched_note),
        Case("q (5, 8), k (5, 8), v (5, 8), causal mask (5, 5)",
             qkv((), 5, 5, 8, 8) + (causal(5, 5),), note=mask_note),
        Case("q (2, 4, 8), k (2, 6, 8), v (2, 6, 5), causal mask (4, 6)",
             qkv((2,), 4, 6, 8, 5) + (causal(4, 6),), note=mask_note),
        Case("q (2, 3, 4, 8), k (2, 3, 6, 8), v (2, 3, 6, 5), padding mask (2, 1, 1, 6)",
             qkv((2, 3), 4, 6, 8, 5) + (padding,), note=mask_note),
    ]


_SDPA_MISTAKES = [
    Mistake(
        "the scores are missing the 1/√d_k scaling",
        "Attention(Q,K,V) = softmax(QKᵀ/√d_k)V: "
        "divide q @ k.transpose(-2, -1) by math.sqrt(d_k).",
        variants=(partial(_sdpa_wrong, scale="none"),),
    ),
    Mistake(
        "the scores are divided by d_k instead of √d_k",
        "Divide by math.sqrt(d_k), with d_k = q.size(-1).",
        variants=(partial(_sdpa_wrong, scale="dk"),),
    ),
    Mistake(
        "the scores are scaled with √d_v instead of √d_k",
        "d_k is the size of the last dim of q and k: q.size(-1), not v.size(-1).",
        variants=(partial(_sdpa_wrong, scale="sqrt_dv"),),
    ),
    Mistake(
        "the softmax runs over the wrong axis (the queries instead of the keys)",
        "Use torch.softmax(scores, dim=-1): each query's weights over the keys sum to 1.",
        variants=(partial(_sdpa_wrong, dim=-2),),
    ),
    Mistake(
        "k is transposed over the wrong dimensions",
        "Use k.transpose(-2, -1): it swaps only the last two dims (k.T, k.t() are for 2-D).",
        variants=(
            partial(_sdpa_wrong, transpose=lambda k: k.T),
            partial(_sdpa_wrong, transpose=lambda k: k.t()),
            partial(_sdpa_wrong, transpose=lambda k: k.transpose(0, 1)),
            partial(_sdpa_wrong, transpose=lambda k: k.transpose(1, 2)),
        ),
    ),
    Mistake(
        "the mask is ignored",
        'Before the softmax: scores = scores.masked_fill(~mask, float("-inf")).',
        variants=(partial(_sdpa_wrong, mask_mode="ignore"),),
    ),
    Mistake(
        "the mask is inverted: True means 'may attend', not 'blocked'",
        'Block where the mask is False: scores.masked_fill(~mask, float("-inf")).',
        variants=(
            partial(_sdpa_wrong, mask_mode="inverted"),
            partial(_sdpa_wrong, mask_mode="inverted", fill=-1e9),
        ),
    ),
    Mistake(
        "the mask is applied after the softmax, so the rows of weights no longer sum to 1",
        'Mask the scores BEFORE the softmax: scores.masked_fill(~mask, float("-inf")).',
        variants=(partial(_sdpa_wrong, mask_mode="after_softmax"),),
    ),
]

_SDPA_SOLUTION = '''\
import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)      # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # True = may attend
    weights = torch.softmax(scores, dim=-1)                # over the keys
    return weights @ v, weights                            # (..., Tq, d_v), (..., Tq, Tk)
'''

register(
    Exercise(
        name="scaled_dot_product_attention",
        signature="scaled_dot_product_attention(q, k, v, mask=None) -> (output, weights)",
        checker=OutputChecker(
            outputs=("output", "weights"),
            reference=_sdpa_reference,
            make_cases=_sdpa_cases,
            mistakes=_SDPA_MISTAKES,
        ),
        hints=(
            "Attention(Q,K,V) = softmax(QKᵀ/√d_k)V. Start with the scores: "
            "q @ k.transpose(-2, -1) / math.sqrt(d_k), with d_k = q.size(-1). "
            "transpose(-2, -1) swaps only the last two dims, so batch and head dims still work "
            "(k.T does not).",
            "The mask: True means 'may attend'. Before the softmax, set the blocked scores to "
            '-inf: scores = scores.masked_fill(~mask, float("-inf")). '
            "Masking after the softmax leaves rows that do not sum to 1.",
            "weights = torch.softmax(scores, dim=-1) (over the keys, shape (..., Tq, Tk)); "
            "output = weights @ v (shape (..., Tq, d_v)). Return output, weights.",
        ),
        solution=_SDPA_SOLUTION,
    )
)
