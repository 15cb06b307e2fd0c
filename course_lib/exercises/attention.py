"""The exercises of notebook 01 (attention): ``soft_attention``, ``scaled_dot_product_attention``,
``key_value_attention``, ``split_heads`` and ``multi_head_self_attention``.

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


# ---------------------------------------------------------------------------
# key_value_attention: the notes' key-value attention with one query
# ---------------------------------------------------------------------------


def _kv_reference(K, V, q):
    a = torch.softmax(K @ q, dim=0)
    return a, a @ V


def _kv_wrong(K, V, q, *, weights="softmax", context="V", scale=1.0, scores_from="K"):
    """key-value attention with one deliberate mistake (see _KV_MISTAKES)."""
    scores = ((K if scores_from == "K" else V) @ q) * scale
    if weights == "softmax":
        a = torch.softmax(scores, dim=0)
    elif weights == "raw":
        a = scores
    elif weights == "exp":
        a = torch.exp(scores)
    elif weights == "sum":
        a = scores / scores.sum()
    elif weights == "naive_exp":
        e = torch.exp(scores)
        a = e / e.sum()
    if context == "V":
        ctx = a @ V
    elif context == "K":
        ctx = a @ K
    elif context == "V_at_a":
        ctx = V @ a
    elif context == "sum_dim1":
        ctx = (a[:, None] * V).sum(dim=1)
    elif context == "mean":
        ctx = V.mean(dim=0)
    elif context == "sum":
        ctx = V.sum(dim=0)
    return a, ctx


def _kv_cases(g: torch.Generator) -> list[Case]:
    def kvq(n, d_k, d_v, dtype=torch.float32):
        return (
            torch.randn(n, d_k, generator=g, dtype=dtype),
            torch.randn(n, d_v, generator=g, dtype=dtype),
            torch.randn(d_k, generator=g, dtype=dtype),
        )

    # scores ≈ 1000: exp overflows to inf unless the max is subtracted
    K_big, V_big, q_big = kvq(6, 4, 3, torch.float64)
    K_big[:, 0] = 10 + 0.01 * torch.randn(6, generator=g, dtype=torch.float64)
    q_big[0] = 100.0
    return [
        Case("K (5, 4), V (5, 3), q (4,)", kvq(5, 4, 3)),
        # n == d_k == d_v: the wrong axis or K for V gives wrong values here instead of an error
        Case("K (4, 4), V (4, 4), q (4,)", kvq(4, 4, 4)),
        Case("K (7, 3), V (7, 5), q (3,), float64", kvq(7, 3, 5, torch.float64)),
        Case("K (6, 8), V (6, 2), q (8,)", kvq(6, 8, 2)),
        Case("K (1, 3), V (1, 4), q (3,) (a single key)", kvq(1, 3, 4)),
        Case(
            "K (6, 4), V (6, 3), q (4,) with large scores (≈1000)",
            (K_big, V_big, q_big),
            note="With scores ≈ 1000, exp() overflows: subtract the max score first, or use torch.softmax.",
        ),
    ]


_KV_MISTAKES = [
    Mistake(
        "context is a weighted sum of the keys K — it should sum the values V",
        "The keys decide where to look, the values what to take: context = Σ_i a_i·v_i = a @ V, shape (d_v,).",
        variants=(partial(_kv_wrong, context="K"),),
    ),
    Mistake(
        "the weights a are not normalised: they do not sum to 1",
        "a_i = softmax(s(k_i, q)) = exp(s_i) / Σ_j exp(s_j): a = torch.softmax(K @ q, dim=0).",
        variants=(partial(_kv_wrong, weights="raw"), partial(_kv_wrong, weights="exp")),
    ),
    Mistake(
        "a is the scores divided by their sum, without exp — that is not a softmax",
        "softmax takes exp first: a = torch.softmax(K @ q, dim=0).",
        variants=(partial(_kv_wrong, weights="sum"),),
    ),
    Mistake(
        "the scores are divided by √d_k — a good instinct (the Transformer does it), but not used here",
        "This exercise uses the plain dot product s(k_i, q) = k_i·q, as in soft_attention: scores = K @ q.",
        variants=(lambda K, V, q: _kv_wrong(K, V, q, scale=1 / math.sqrt(K.shape[-1])),),
    ),
    Mistake(
        "the scores are computed from the values V instead of the keys K",
        "Score the keys: s(k_i, q) = k_i·q, so scores = K @ q; V only enters the context.",
        variants=(partial(_kv_wrong, scores_from="V"),),
    ),
    Mistake(
        "context is summed over the wrong axis",
        "context = Σ_i a_i·v_i is a weighted sum of the ROWS of V: a @ V, shape (d_v,).",
        variants=(partial(_kv_wrong, context="V_at_a"), partial(_kv_wrong, context="sum_dim1")),
    ),
    Mistake(
        "context ignores the weights a (plain mean or sum of the rows of V)",
        "Weight each value v_i by a_i: context = a @ V.",
        variants=(partial(_kv_wrong, context="mean"), partial(_kv_wrong, context="sum")),
    ),
    Mistake(
        "your softmax overflows: exp(1000) is inf, so the weights become nan",
        "Subtract the max score before exp, or use torch.softmax (it does this for you).",
        variants=(partial(_kv_wrong, weights="naive_exp"),),
    ),
]

_KV_SOLUTION = '''\
import torch


def key_value_attention(K, V, q):
    scores = K @ q                     # s(k_i, q) = k_i · q, shape (n,): the keys decide where to look
    a = torch.softmax(scores, dim=0)   # a_i = softmax(s(k_i, q)), shape (n,)
    context = a @ V                    # Σ_i a_i·v_i, shape (d_v,): the values are what is taken
    return a, context
'''

register(
    Exercise(
        name="key_value_attention",
        signature="key_value_attention(K (n, d_k), V (n, d_v), q (d_k,)) -> (a (n,), context (d_v,))",
        checker=OutputChecker(
            outputs=("a", "context"),
            reference=_kv_reference,
            make_cases=_kv_cases,
            mistakes=_KV_MISTAKES,
        ),
        hints=(
            "It is soft_attention with H split in two: the keys K decide where to look, the values V "
            "what to take. The scores use only K and q: s(k_i, q) = k_i · q, for all keys at once K @ q, shape (n,).",
            "a = torch.softmax(scores, dim=0): the weights sum to 1, and large scores do not overflow. "
            "No 1/√d_k here: this exercise uses the plain dot product.",
            "context = Σ_i a_i·v_i is a weighted sum of the rows of V (not K): context = a @ V, "
            "shape (d_v,). Return a, context.",
        ),
        solution=_KV_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# split_heads: (B, T, d) -> (B, h, T, d // h)
# ---------------------------------------------------------------------------


def _split_reference(x, num_heads):
    B, T, d = x.shape
    return x.view(B, T, num_heads, d // num_heads).transpose(1, 2)


def _split_no_transpose(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, num_heads, T, d // num_heads)


def _split_interleaved(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, d // num_heads, num_heads).permute(0, 3, 1, 2)


def _split_no_move(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, num_heads, d // num_heads)


def _split_last_two_swapped(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, num_heads, d // num_heads).permute(0, 2, 3, 1)


def _split_h_and_dh_swapped(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, d // num_heads, num_heads).transpose(1, 2)


def _split_merged_batch(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, num_heads, d // num_heads).transpose(1, 2).reshape(B * num_heads, T, d // num_heads)


def _split_cases(g: torch.Generator) -> list[Case]:
    def counting(B, T, d):
        # x[b, t, i] = 100·t + i (+ 1000·b): each number says its position and its feature
        b = torch.arange(B)[:, None, None] * 1000
        t = torch.arange(T)[None, :, None] * 100
        i = torch.arange(d)[None, None, :]
        return (b + t + i).to(torch.float32)

    return [
        Case("x (2, 3, 8) with x[b, t, i] = 1000·b + 100·t + i, num_heads=2", (counting(2, 3, 8), 2)),
        Case("x (1, 4, 12) with x[b, t, i] = 1000·b + 100·t + i, num_heads=3", (counting(1, 4, 12), 3)),
        Case("random x (3, 4, 16), num_heads=4, float64",
             (torch.randn(3, 4, 16, generator=g, dtype=torch.float64), 4)),
        Case("random x (2, 5, 6), num_heads=1", (torch.randn(2, 5, 6, generator=g), 1)),
        Case("random x (2, 5, 6), num_heads=6", (torch.randn(2, 5, 6, generator=g), 6)),
    ]


_SPLIT_MISTAKES = [
    Mistake(
        "reshaped straight to (B, h, T, d_head) without the transpose: the heads mix positions",
        "Split the last axis first, x.view(B, T, h, d_head), then swap the T and h axes: .transpose(1, 2).",
        variants=(_split_no_transpose,),
    ),
    Mistake(
        "the features are dealt out in turn (head j gets features j, j+h, j+2h, …) instead of in blocks",
        "Head j takes the block j·d_head … (j+1)·d_head − 1: x.view(B, T, h, d_head) (h before d_head), then .transpose(1, 2).",
        variants=(_split_interleaved,),
    ),
    Mistake(
        "returned (B, T, h, d_head): the head axis is not moved in front of T",
        "After x.view(B, T, h, d_head), swap axes 1 and 2: .transpose(1, 2) gives (B, h, T, d_head).",
        variants=(_split_no_move,),
        by_shape=True,
    ),
    Mistake(
        "returned (B, h, d_head, T): the last two axes are swapped",
        "Swap only axes 1 and 2 (T and h): x.view(B, T, h, d_head).transpose(1, 2).",
        variants=(_split_last_two_swapped,),
        by_shape=True,
    ),
    Mistake(
        "num_heads and d_head are swapped: the last axis should have d // num_heads features",
        "Use d_head = d // num_heads: x.view(B, T, num_heads, d_head).transpose(1, 2).",
        variants=(_split_h_and_dh_swapped,),
        by_shape=True,
    ),
    Mistake(
        "the heads are merged into the batch axis: (B·h, T, d_head) instead of (B, h, T, d_head)",
        "Keep B and h as separate axes: return x.view(B, T, h, d_head).transpose(1, 2).",
        variants=(_split_merged_batch,),
        by_shape=True,
    ),
]

_SPLIT_SOLUTION = '''\
def split_heads(x, num_heads):
    B, T, d = x.shape
    d_head = d // num_heads
    x = x.view(B, T, num_heads, d_head)   # head j gets features j*d_head ... (j+1)*d_head - 1
    return x.transpose(1, 2)              # (B, h, T, d_head): each head its own (T, d_head) matrix
'''

register(
    Exercise(
        name="split_heads",
        signature="split_heads(x (B, T, d), num_heads) -> (B, h, T, d // h)",
        checker=OutputChecker(
            outputs=("heads",),
            reference=_split_reference,
            make_cases=_split_cases,
            mistakes=_SPLIT_MISTAKES,
        ),
        hints=(
            "Head j works in its own block of features, j·d_head … (j+1)·d_head − 1, with d_head = d // num_heads. "
            "Two steps: cut the last axis into (num_heads, d_head) blocks, then move the head axis in front of T.",
            "x.view(B, T, num_heads, d_head) cuts the features into blocks: the result's [b, t, j] is head j's "
            "part of token t. A view(B, num_heads, T, d_head) straight away would cut across positions.",
            "Then .transpose(1, 2) swaps T and h: (B, T, h, d_head) -> (B, h, T, d_head). "
            "Return x.view(B, T, num_heads, d_head).transpose(1, 2).",
        ),
        solution=_SPLIT_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# multi_head_self_attention: (B, T, d) -> (B, T, d), Q = X W_q (right multiplication, no bias)
# ---------------------------------------------------------------------------


def _mhsa_wrong(X, W_q, W_k, W_v, W_o, num_heads, *, scale="d_head", heads="h", project=True,
                transposed=False, merge="transpose", split="transpose", dim=-1):
    """multi-head self-attention with one deliberate mistake (see _MHSA_MISTAKES)."""
    if transposed:
        W_q, W_k, W_v, W_o = W_q.T, W_k.T, W_v.T, W_o.T
    B, T, d = X.shape
    h = num_heads if heads == "h" else 1
    d_head = d // h

    def split_into_heads(t):
        if split == "transpose":
            return t.view(B, T, h, d_head).transpose(1, 2)
        return t.reshape(B, h, T, d_head)  # "no_transpose": mixes positions

    Q, K, V = split_into_heads(X @ W_q), split_into_heads(X @ W_k), split_into_heads(X @ W_v)
    divisor = {"d_head": math.sqrt(d // num_heads), "d": math.sqrt(d), "none": 1.0}[scale]
    weights = torch.softmax(Q @ K.transpose(-2, -1) / divisor, dim=dim)
    heads_out = weights @ V  # (B, h, T, d_head)
    if merge == "transpose":
        concat = heads_out.transpose(1, 2).reshape(B, T, d)
    else:  # "no_transpose": (B, h, T, d_head) read as (B, T, d)
        concat = heads_out.reshape(B, T, d)
    return concat @ W_o if project else concat


def _mhsa_reference(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa_wrong(X, W_q, W_k, W_v, W_o, num_heads)


def _mhsa_cases(g: torch.Generator) -> list[Case]:
    def inputs(B, T, d, h, dtype=torch.float32):
        X = torch.randn(B, T, d, generator=g, dtype=dtype)
        # W / √d keeps the projections at unit scale: the softmax does not saturate
        Ws = tuple(torch.randn(d, d, generator=g, dtype=dtype) / math.sqrt(d) for _ in range(4))
        return (X, *Ws, h)

    return [
        Case("X (2, 5, 8), four (8, 8) matrices, num_heads=2", inputs(2, 5, 8, 2)),
        Case("X (1, 4, 4), four (4, 4) matrices, num_heads=2 (T = d)", inputs(1, 4, 4, 2)),
        Case("X (2, 3, 12), four (12, 12) matrices, num_heads=3, float64", inputs(2, 3, 12, 3, torch.float64)),
        Case("X (3, 6, 16), four (16, 16) matrices, num_heads=4", inputs(3, 6, 16, 4)),
        Case("X (1, 5, 4), four (4, 4) matrices, num_heads=4 (d_head = 1)", inputs(1, 5, 4, 4)),
        Case("X (2, 3, 6), four (6, 6) matrices, num_heads=1", inputs(2, 3, 6, 1)),
    ]


_MHSA_MISTAKES = [
    Mistake(
        "W_o is missing: the joined heads are returned without the output projection",
        "After joining the heads into (B, T, d), multiply once more: return concat @ W_o.",
        variants=(partial(_mhsa_wrong, project=False),),
    ),
    Mistake(
        "the scores are divided by √d instead of √d_head",
        "Each head attends in d_head = d // num_heads dimensions: divide Q_h K_hᵀ by math.sqrt(d_head).",
        variants=(partial(_mhsa_wrong, scale="d"),),
    ),
    Mistake(
        "this is one head, not num_heads: the attention runs over all d features at once",
        "Split Q, K and V into num_heads heads of d_head features, (B, h, T, d_head), and attend in each head.",
        variants=(partial(_mhsa_wrong, heads="one", scale="d"), partial(_mhsa_wrong, heads="one", scale="d_head")),
    ),
    Mistake(
        "the matrices are applied transposed (X Wᵀ): the notes multiply on the right, Q = X W_q",
        "Use Q = X @ W_q, K = X @ W_k, V = X @ W_v and concat @ W_o, without .T (nn.Linear's x Wᵀ is another layout).",
        variants=(partial(_mhsa_wrong, transposed=True),),
    ),
    Mistake(
        "the scores are missing the 1/√d_head scaling",
        "Scaled dot-product attention per head: softmax(Q_h K_hᵀ / √d_head) V_h.",
        variants=(partial(_mhsa_wrong, scale="none"),),
    ),
    Mistake(
        "the heads are split without the transpose (a reshape straight to (B, h, T, d_head)), so they mix positions",
        "Split as in split_heads: t.view(B, T, h, d_head).transpose(1, 2).",
        variants=(partial(_mhsa_wrong, split="no_transpose"),),
    ),
    Mistake(
        "the heads are joined without the transpose: (B, h, T, d_head) reshaped straight to (B, T, d)",
        "Move the head axis back first: heads.transpose(1, 2).reshape(B, T, d), then @ W_o.",
        variants=(partial(_mhsa_wrong, merge="no_transpose"),),
    ),
    Mistake(
        "the softmax runs over the wrong axis (the queries instead of the keys)",
        "Use torch.softmax(scores, dim=-1): each query's weights over the keys sum to 1.",
        variants=(partial(_mhsa_wrong, dim=-2),),
    ),
]

_MHSA_SOLUTION = '''\
import math

import torch


def multi_head_self_attention(X, W_q, W_k, W_v, W_o, num_heads):
    B, T, d = X.shape
    d_head = d // num_heads

    def split(t):                                          # (B, T, d) -> (B, h, T, d_head)
        return t.view(B, T, num_heads, d_head).transpose(1, 2)

    Q, K, V = split(X @ W_q), split(X @ W_k), split(X @ W_v)   # the notes' Q = X W_q, ...
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_head)        # (B, h, T, T), one matrix per head
    weights = torch.softmax(scores, dim=-1)
    heads = weights @ V                                         # (B, h, T, d_head)
    concat = heads.transpose(1, 2).reshape(B, T, d)             # head_1 ⊕ ... ⊕ head_h
    return concat @ W_o
'''

register(
    Exercise(
        name="multi_head_self_attention",
        signature="multi_head_self_attention(X (B, T, d), W_q, W_k, W_v, W_o (each d × d), num_heads) -> (B, T, d)",
        checker=OutputChecker(
            outputs=("output",),
            reference=_mhsa_reference,
            make_cases=_mhsa_cases,
            mistakes=_MHSA_MISTAKES,
        ),
        hints=(
            "Three steps: project, attend in every head, join and project. The projections multiply on the right, "
            "as in the notes: Q = X @ W_q, K = X @ W_k, V = X @ W_v, each (B, T, d), no bias.",
            "Split Q, K and V into heads as in split_heads: t.view(B, T, h, d_head).transpose(1, 2), "
            "(B, h, T, d_head) with d_head = d // num_heads. Then per head, all at once: "
            "softmax(Q @ K.transpose(-2, -1) / math.sqrt(d_head), dim=-1) @ V.",
            "Join the heads back: heads.transpose(1, 2).reshape(B, T, d) (head_1 ⊕ … ⊕ head_h), "
            "then the output projection: return concat @ W_o.",
        ),
        solution=_MHSA_SOLUTION,
    )
)
