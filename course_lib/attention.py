"""Attention, from the notes' first formula to multi-head self-attention.

The notes build attention in four steps, and so does this module:

1. soft attention over the encoder states H = [h_1, ..., h_n] with a query q::

       a_i = softmax(s(h_i, q)) = exp(s(h_i, q)) / sum_j exp(s(h_j, q))
       context = sum_i a_i * h_i

   The score function s is a module: :class:`DotScore`, :class:`ScaledDotScore`,
   :class:`AdditiveScore`, :class:`BilinearScore`. :func:`attend` computes a and context.
2. key-value attention: the same with (K, V) instead of H (``attend(q, K, V)``).
3. scaled dot-product attention, Attention(Q, K, V) = softmax(QK^T / sqrt(d_k)) V,
   with a boolean mask: :func:`scaled_dot_product_attention`.
4. multi-head attention: :class:`MultiHeadAttention`, whose heads' contexts are concatenated
   (context_1 ⊕ ... ⊕ context_m) and projected.

Shapes: B batch, h heads, Tq / Tk query / key lengths, d model width.
Masks are boolean and **True means "may attend"**, the convention of
``torch.nn.functional.scaled_dot_product_attention``. A query row whose keys are all
masked gets all-zero weights and a zero output, never NaN.

What is refused, with a ``TypeError`` or ``ValueError`` naming the argument: a non-tensor, an
integer or complex tensor, inputs of different dtypes (float32 queries with float64 keys; a
float64 input to a float32 module), a width d of 0, leading (batch, head) axes that do not
broadcast, a non-boolean mask or one of the wrong shape. Empty axes are allowed, as in torch:
B = 0 or Tq = 0 gives empty results, Tk = 0 (no key at all) zero weights and a zero output.
NaN or inf in the inputs are not looked for: they come out as NaN, as in torch.

Inputs are checked once, where they enter: :func:`masked_softmax`, :func:`scaled_dot_product_attention`
and :meth:`MultiHeadAttention.forward` name their checks with :func:`course_lib._checks.checked_by`,
so the attention inside a multi-head layer does not check again what the layer has checked.

Two paths through :class:`MultiHeadAttention`: with ``need_weights=True`` (the default) it computes
the weights explicitly (:func:`scaled_dot_product_attention`) and returns them, for pictures;
with ``need_weights=False`` it calls PyTorch's fused kernel,
``torch.nn.functional.scaled_dot_product_attention``, which never stores the (Tq, Tk) weights: the
same output (to float rounding) and gradients, faster, and what training uses. Its dropout draws
from torch's global random stream, not from a ``generator``. A :class:`KVCache` keeps a layer's keys
and values between decoding steps (step t then projects one new token instead of all t).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _checks

__all__ = [
    "DotScore",
    "ScaledDotScore",
    "AdditiveScore",
    "BilinearScore",
    "SCORE_NAMES",
    "make_score",
    "attend",
    "notes_multi_head",
    "masked_softmax",
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "KVCache",
    "causal_mask",
    "padding_mask",
]


# ---------------------------------------------------------------------------
# Score functions s(k, q): each maps (query (..., Tq, d_q), keys (..., Tk, d_k)) to (..., Tq, Tk).
# ---------------------------------------------------------------------------

class _Score(nn.Module):
    """Base class: checks shapes and dtypes, then calls ``_scores``."""

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        _checks.check_tensor("query", query, 2, "(..., Tq, d_q)")
        _checks.check_tensor("keys", keys, 2, "(..., Tk, d_k)")
        self._check_widths(query, keys)
        _check_batch_axes(query=query, keys=keys)
        self._check_dtypes(query, keys)
        return self._scores(query, keys)

    def _check_widths(self, query: torch.Tensor, keys: torch.Tensor) -> None:
        if query.shape[-1] != keys.shape[-1] or query.shape[-1] == 0:
            raise ValueError(
                f"{type(self).__name__} needs query and keys of the same width d >= 1: "
                f"query {_checks.shape_of(query)}, keys {_checks.shape_of(keys)}"
            )

    def _weight(self) -> torch.Tensor | None:
        """A weight of the score, whose dtype the inputs must have (None: no parameters)."""
        return None

    def _check_dtypes(self, query: torch.Tensor, keys: torch.Tensor) -> None:
        weight = self._weight()
        if weight is None:  # no weights: query and keys meet in one product
            _checks.check_dtype("keys", keys, query.dtype, "query")
        else:
            for name, t in (("query", query), ("keys", keys)):
                _checks.check_dtype(name, t, weight.dtype, f"the parameters of {type(self).__name__}")


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape that ``shapes`` broadcast to, or None if they do not (torch's rule, in plain Python:
    a few microseconds, where ``torch.broadcast_shapes`` takes tens)."""
    out = []
    for axis in range(-max(map(len, shapes), default=0), 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _check_batch_axes(**named: torch.Tensor) -> None:
    """The leading (batch, head) axes of the named (..., T, d) tensors must broadcast together."""
    if _broadcast(*(tuple(t.shape[:-2]) for t in named.values())) is None:
        shapes = ", ".join(f"{name} {_checks.shape_of(t)}" for name, t in named.items())
        names = list(named)
        raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must have the same leading (batch, head) axes, "
                         f"or axes that broadcast: {shapes}")


class DotScore(_Score):
    """s(k, q) = k · q. No parameters; query and keys must have the same width."""

    def _scores(self, query, keys):
        return query @ keys.transpose(-2, -1)  # (..., Tq, d) @ (..., d, Tk) -> (..., Tq, Tk)


class ScaledDotScore(_Score):
    """s(k, q) = k · q / sqrt(d): the dot product, kept at unit variance as the width d grows."""

    def _scores(self, query, keys):
        return query @ keys.transpose(-2, -1) / math.sqrt(query.shape[-1])


class AdditiveScore(_Score):
    """s(k, q) = v^T tanh(W_q q + W_k k) (Bahdanau et al., 2015): a one-hidden-layer network.

    Query and keys may have different widths ``d_query`` and ``d_key``.
    """

    def __init__(self, d_query: int, d_key: int, d_hidden: int):
        super().__init__()
        for name, size in (("d_query", d_query), ("d_key", d_key), ("d_hidden", d_hidden)):
            _checks.check_positive_int(name, size)
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def _weight(self):
        return self.w_q.weight

    def _check_widths(self, query, keys):
        if query.shape[-1] != self.w_q.in_features:
            raise ValueError(f"query must have width d_query={self.w_q.in_features}, got {_checks.shape_of(query)}")
        if keys.shape[-1] != self.w_k.in_features:
            raise ValueError(f"keys must have width d_key={self.w_k.in_features}, got {_checks.shape_of(keys)}")

    def _scores(self, query, keys):
        # (..., Tq, 1, d_hidden) + (..., 1, Tk, d_hidden): every query meets every key
        hidden = torch.tanh(self.w_q(query).unsqueeze(-2) + self.w_k(keys).unsqueeze(-3))
        return self.v(hidden).squeeze(-1)  # (..., Tq, Tk)


class BilinearScore(_Score):
    """s(k, q) = q^T W k (Luong et al., 2015, "general"): a learned dot product."""

    def __init__(self, d_query: int, d_key: int):
        super().__init__()
        _checks.check_positive_int("d_query", d_query)
        _checks.check_positive_int("d_key", d_key)
        self.w = nn.Linear(d_key, d_query, bias=False)  # maps each key into the query space

    def _weight(self):
        return self.w.weight

    def _check_widths(self, query, keys):
        if query.shape[-1] != self.w.out_features:
            raise ValueError(f"query must have width d_query={self.w.out_features}, got {_checks.shape_of(query)}")
        if keys.shape[-1] != self.w.in_features:
            raise ValueError(f"keys must have width d_key={self.w.in_features}, got {_checks.shape_of(keys)}")

    def _scores(self, query, keys):
        return query @ self.w(keys).transpose(-2, -1)


SCORE_NAMES = ("additive", "dot", "scaled_dot", "bilinear")


def make_score(name: str, d_query: int, d_key: int | None = None, d_hidden: int | None = None) -> nn.Module:
    """The score module called ``name`` (one of :data:`SCORE_NAMES`) for these widths.

    ``d_key`` defaults to ``d_query``; ``d_hidden`` (additive only) defaults to ``d_query``.
    Sizes must be positive ints.
    """
    if not isinstance(name, str) or name not in SCORE_NAMES:
        raise ValueError(f"name must be one of {SCORE_NAMES}, got {name!r}")
    d_key = d_query if d_key is None else d_key
    _checks.check_positive_int("d_query", d_query)
    _checks.check_positive_int("d_key", d_key)
    if name == "additive":
        return AdditiveScore(d_query, d_key, d_query if d_hidden is None else d_hidden)
    if name == "bilinear":
        return BilinearScore(d_query, d_key)
    if name in ("dot", "scaled_dot"):
        if d_query != d_key:
            raise ValueError(f"a {name} score needs d_query == d_key, got {d_query} and {d_key}")
        return DotScore() if name == "dot" else ScaledDotScore()
    raise ValueError(f"name must be one of {SCORE_NAMES}, got {name!r}")


# ---------------------------------------------------------------------------
# Softmax with a mask, and soft / key-value attention
# ---------------------------------------------------------------------------

def _check_masked_softmax(scores, mask=None):
    """The input checks of :func:`masked_softmax`."""
    _checks.check_tensor("scores", scores, 1, "(..., Tk)")
    if mask is not None:
        _checks.check_mask(mask, tuple(scores.shape), "(..., Tq, Tk)")


@_checks.checked_by(_check_masked_softmax)
def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis where ``mask`` is True; masked entries get exactly 0.

    scores (..., Tq, Tk); mask bool, broadcastable to scores. A row with no allowed entry
    becomes all zeros (a plain softmax of all -inf would give NaN).
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    # Masking happens *before* the softmax: -inf scores get weight exp(-inf) = 0 and the
    # remaining weights still sum to 1.
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return weights.nan_to_num(0.0)  # fully masked rows: 0/0 -> 0


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None,
           score: nn.Module | None = None, mask: torch.Tensor | None = None):
    """Soft attention: a = softmax(s(k_i, q)), context = sum_i a_i * v_i.

    Args:
        query: (..., Tq, d_q), or (..., d_q) for a single query per batch element.
        keys: (..., Tk, d_k): the h_i of plain attention, the k_i of key-value attention.
        values: (..., Tk, d_v); defaults to ``keys`` (plain attention over H).
        score: a score module s(k, q); defaults to :class:`ScaledDotScore`.
        mask: bool, broadcastable to (..., Tq, Tk); True = may attend.

    Returns:
        context (..., Tq, d_v) and weights a (..., Tq, Tk); without the Tq axis if the
        query had none.

    Refused: ``score`` that is not a score module (or a function ``score(query, keys)``
    returning (..., Tq, Tk) scores), values of another dtype than the query, and the bad inputs
    listed in the module's docstring.
    """
    _checks.check_tensor("keys", keys, 2, "(..., Tk, d_k)")
    _checks.check_tensor("query", query, 1, "(..., Tq, d_q) or (..., d_q)")
    _checks.check_dtype("keys", keys, query.dtype, "query")
    values = keys if values is None else values
    _checks.check_tensor("values", values, 2, "(..., Tk, d_v)")
    _checks.check_dtype("values", values, query.dtype, "query")
    if values.shape[-2] != keys.shape[-2]:
        raise ValueError(
            f"values must have one row per key: keys {_checks.shape_of(keys)} has Tk={keys.shape[-2]}, "
            f"values {_checks.shape_of(values)} has {values.shape[-2]}"
        )
    single = query.dim() == keys.dim() - 1  # one query vector per batch element
    if single:
        query = query.unsqueeze(-2)
    elif query.dim() != keys.dim():
        raise ValueError(
            f"query must have shape (..., Tq, d_q) or (..., d_q) matching keys {_checks.shape_of(keys)}, "
            f"got {_checks.shape_of(query)}"
        )
    _check_batch_axes(query=query, keys=keys, values=values)
    if isinstance(score, type):
        raise TypeError(f"score must be a score module, e.g. {score.__name__}(), got the class {score.__name__}")
    if score is not None and not callable(score):
        raise TypeError(f"score must be a score module such as ScaledDotScore() (see make_score), "
                        f"got {type(score).__name__}")
    score = ScaledDotScore() if score is None else score
    scores = score(query, keys)  # (..., Tq, Tk); a score module checks the widths and dtypes
    expected = (*_broadcast(tuple(query.shape[:-2]), tuple(keys.shape[:-2])), query.shape[-2], keys.shape[-2])
    _checks.check_tensor("score(query, keys)", scores, 2, "(..., Tq, Tk)")
    if tuple(scores.shape) != expected:
        raise ValueError(f"score(query, keys) must have shape (..., Tq, Tk) = {expected}, "
                         f"got {_checks.shape_of(scores)}")
    weights = masked_softmax(scores, mask)  # checks the mask against the scores' shape
    context = weights @ values  # (..., Tq, Tk) @ (..., Tk, d_v) -> (..., Tq, d_v)
    if single:
        return context.squeeze(-2), weights.squeeze(-2)
    return context, weights


def notes_multi_head(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None,
                     score: nn.Module | None = None, mask: torch.Tensor | None = None):
    """The notes' multi-head formulas read literally: m queries q_1..q_m over the same (K, V).

    a_ij = softmax_j(s(k_j, q_i)),  context_i = sum_j a_ij v_j,
    context = context_1 ⊕ context_2 ⊕ ... ⊕ context_m   (i indexes the queries).

    Args:
        queries: (..., m, d_q), the m queries (m >= 1).
        keys: (..., n, d_k); values: (..., n, d_v), defaults to ``keys``.
        score: a score module s(k, q), default :class:`ScaledDotScore`; mask as in :func:`attend`.

    Returns:
        context (..., m * d_v), the m contexts joined in query order, and a (..., m, n).
        :class:`MultiHeadAttention` is this with one query per head, q_i = x W_q^(i) in head i's
        own dimensions, followed by W_o (notebook 01, section 4).

    Refused: queries without the m axis (a single query (..., d_q): use :func:`attend`), m = 0,
    and whatever :func:`attend` refuses.
    """
    _checks.check_tensor("keys", keys, 2, "(..., n, d_k)")
    _checks.check_tensor("queries", queries, 2, "(..., m, d_q)")
    if queries.dim() != keys.dim():
        raise ValueError(f"queries must have shape (..., m, d_q) with the same number of axes as keys "
                         f"{_checks.shape_of(keys)}, got {_checks.shape_of(queries)}")
    if queries.shape[-2] == 0:
        raise ValueError(f"queries must hold at least one query (m >= 1), got {_checks.shape_of(queries)}")
    contexts, a = attend(queries, keys, values, score=score, mask=mask)  # (..., m, d_v): row i is context_i
    return contexts.flatten(-2), a  # context_1 ⊕ ... ⊕ context_m


def _check_scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0, generator=None):
    """The input checks of :func:`scaled_dot_product_attention`."""
    _checks.check_tensor("q", q, 2, "(..., Tq, d_k)")
    _checks.check_tensor("k", k, 2, "(..., Tk, d_k)")
    _checks.check_tensor("v", v, 2, "(..., Tk, d_v)")
    _checks.check_dtype("k", k, q.dtype, "q")
    _checks.check_dtype("v", v, q.dtype, "q")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same width d_k: q {_checks.shape_of(q)}, k {_checks.shape_of(k)}")
    if q.shape[-1] == 0:
        raise ValueError(f"q and k must have a width d_k >= 1 (the scale is 1/sqrt(d_k)), got q {_checks.shape_of(q)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length Tk: k {_checks.shape_of(k)}, v {_checks.shape_of(v)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"q, k and v must have the same leading (batch, head) axes: q {_checks.shape_of(q)}, "
                         f"k {_checks.shape_of(k)}, v {_checks.shape_of(v)}") from None
    _checks.check_probability("dropout_p", dropout_p)
    _checks.check_generator("generator", generator)
    if mask is not None:  # the shape of the scores Q K^T
        scores_shape = (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
        _checks.check_mask(mask, scores_shape, "(..., Tq, Tk)")


@_checks.checked_by(_check_scaled_dot_product_attention)
def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                                 generator: torch.Generator | None = None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, written out.

    Args:
        q: (..., Tq, d_k); k: (..., Tk, d_k); v: (..., Tk, d_v).
        mask: bool, broadcastable to (..., Tq, Tk); True = may attend.
        dropout_p: dropout on the attention weights (training only; 0 keeps it exact).
        generator: a torch.Generator for the dropout, or None.

    Returns:
        output (..., Tq, d_v) and weights (..., Tq, Tk). Rows with no allowed key are zero.

    Refused: q, k and v of different dtypes, d_k = 0, and the bad inputs listed in the module's
    docstring.
    """
    d_k = q.shape[-1]
    # Q K^T / sqrt(d_k), with the scale applied to Q (Tq x d_k numbers) rather than to the
    # scores (Tq x Tk numbers): the same result, and cheaper when the sequences are long.
    scores = (q / math.sqrt(d_k)) @ k.transpose(-2, -1)  # (..., Tq, Tk)
    weights = masked_softmax(scores, mask)
    attn = weights
    if dropout_p > 0.0:
        keep = torch.rand(weights.shape, generator=generator, device=weights.device) >= dropout_p
        attn = weights * keep / (1.0 - dropout_p)
    return attn @ v, weights


# ---------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------

class MultiHeadAttention(nn.Module):
    """Multi-head attention: h heads attend in parallel, their contexts are concatenated.

    For head m: context_i^m = sum_j a_ij^m v_j^m with a_ij^m = softmax_j(q_i^m · k_j^m / sqrt(d_k));
    then context = (context^1 ⊕ ... ⊕ context^h) W_o.

    Given the same weights it equals ``torch.nn.MultiheadAttention(d_model, num_heads, batch_first=True)``
    (see ``tests/test_attention.py``).

    ``forward(..., need_weights=False)`` skips the explicit weights and runs the fused kernel
    ``torch.nn.functional.scaled_dot_product_attention`` (same output, faster; the weights come
    back as None). The layers of :mod:`course_lib.transformer` ask for the weights only when they
    keep them for pictures (by default: in eval mode), so training runs on the fused kernel.
    ``forward(..., cache=KVCache())`` keeps keys and values between decoding steps (see :class:`KVCache`).

    Args:
        d_model: width d of queries, keys, values and output; divisible by num_heads.
        num_heads: h; each head works in d_model // num_heads dimensions.
        dropout: dropout on the attention weights during training, in [0, 1).
        bias: whether the four projections have biases (True or False).

    ``forward`` refuses query, key or value of another dtype than the parameters (convert the
    input, or the module with ``.to(dtype)``).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        _checks.check_positive_int("d_model", d_model)
        _checks.check_positive_int("num_heads", num_heads)
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model must be divisible by num_heads so each head gets d_model // num_heads dimensions: "
                f"got d_model={d_model}, num_heads={num_heads}"
            )
        _checks.check_probability("dropout", dropout)
        _checks.check_bool("bias", bias)
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.dropout = dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.d_head).transpose(1, 2)  # (B, T, d) -> (B, h, T, d_head)

    def _check_inputs(self, query, key, value, mask=None, need_weights=True, cache=None):
        """The input checks of :meth:`forward`."""
        for name, t in (("query", query), ("key", key), ("value", value)):
            _checks.check_stream(name, t, self.d_model, f"(B, T, d_model={self.d_model})")
            _checks.check_dtype(name, t, self.w_q.weight.dtype, "the parameters of MultiHeadAttention")
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"key and value must have the same (B, Tk): "
                             f"key {_checks.shape_of(key)}, value {_checks.shape_of(value)}")
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"query and key must have the same batch size: "
                             f"query {_checks.shape_of(query)}, key {_checks.shape_of(key)}")
        _checks.check_bool("need_weights", need_weights)
        B, Tq, Tk = query.shape[0], query.shape[1], key.shape[1]
        if cache is not None:
            Tk = KVCache.check("cache", cache, B, self.num_heads, self.d_head, Tk)
        if mask is not None:
            _checks.check_mask(mask, (B, self.num_heads, Tq, Tk), "(B, h, Tq, Tk)")

    @_checks.checked_by(_check_inputs)
    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None, need_weights: bool = True, cache: KVCache | None = None):
        """query (B, Tq, d), key and value (B, Tk, d); mask bool broadcastable to (B, h, Tq, Tk).

        need_weights: True (default) computes the weights explicitly and returns them; False runs
            the fused kernel and returns None for them.
        cache: a :class:`KVCache`, or None. A growing cache (self-attention) gets this call's keys
            and values appended, and the queries attend to all of them: Tk = cached + new, and a
            mask must cover (B, h, Tq, cached + new). A static cache (cross-attention) is filled
            on its first call; later calls reuse its keys and values (``key`` and ``value`` are
            then not projected again).

        Returns output (B, Tq, d) and the weights of every head (B, h, Tq, Tk), or None.
        """
        B, Tq = query.shape[:2]
        if cache is not None and cache.static and cache.k is not None:
            # cross-attention while decoding: K and V of the encoder output were computed at step 1
            q, k, v = self._split_heads(self.w_q(query)), cache.k, cache.v
        else:
            q, k, v = self._project(query, key, value)
            if cache is not None:
                k, v = cache.update(k, v)  # (B, h, Tk, d_head), Tk = cached + new
        p = self.dropout if self.training else 0.0
        if need_weights:
            context, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p)
        else:  # the fused kernel: same numbers without storing the weights (a fully masked row gives 0, too)
            context, weights = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        # concatenate the heads: (B, h, Tq, d_head) -> (B, Tq, h * d_head) = context_1 ⊕ ... ⊕ context_h
        context = context.transpose(1, 2).reshape(B, Tq, self.d_model)
        return self.w_o(context), weights

    def _project(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
        """Q, K, V split into heads: (B, h, Tq, d_head), (B, h, Tk, d_head), (B, h, Tk, d_head)."""
        if query is key and key is value:
            # Self-attention: Q, K and V are projections of the same x, so compute them in one
            # matrix product with the three weights stacked (as torch.nn.MultiheadAttention does);
            # the numbers are those of w_q(x), w_k(x), w_v(x), with fewer steps for small inputs.
            weight = torch.cat([self.w_q.weight, self.w_k.weight, self.w_v.weight])
            bias = None if self.w_q.bias is None else torch.cat([self.w_q.bias, self.w_k.bias, self.w_v.bias])
            q, k, v = nn.functional.linear(query, weight, bias).chunk(3, dim=-1)
        else:
            q, k, v = self.w_q(query), self.w_k(key), self.w_v(value)
        return self._split_heads(q), self._split_heads(k), self._split_heads(v)


class KVCache:
    """The keys and values one attention layer has computed, kept between decoding steps.

    Decoding one token at a time, step t would re-project all t tokens of the prefix although
    only the newest is new: with a cache, each step projects the new token and appends its key and
    value (nanoGPT's and Hugging Face's ``past_key_values``). Pass the same cache to
    :meth:`MultiHeadAttention.forward` at every step.

    Args:
        static: False (default) for self-attention: every call appends its keys and values.
            True for cross-attention: the first call projects the encoder output C once, later
            calls reuse it.

    Attributes:
        k, v: (B, h, T_cached, d_head), None before the first call.
        weights: for pictures, filled by the caller with :meth:`add_weights`: every step's rows
            stacked, (B, h, steps, T_k), zero where a key did not exist yet (the causal map a full
            run draws). None until then.
    """

    def __init__(self, static: bool = False):
        _checks.check_bool("static", static)
        self.static = static
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def __len__(self) -> int:
        """T_cached, the number of positions kept."""
        return 0 if self.k is None else self.k.shape[2]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append k, v (B, h, T_new, d_head); returns all kept keys and values (B, h, T_cached, d_head)."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k, self.v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        return self.k, self.v

    def add_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Stack one call's weights (B, h, Tq, Tk) under the earlier rows, padded with zeros to Tk."""
        if self.weights is not None:
            pad = weights.shape[-1] - self.weights.shape[-1]  # keys added since the earlier rows
            weights = torch.cat([nn.functional.pad(self.weights, (0, pad)), weights], dim=-2)
        self.weights = weights
        return weights

    @staticmethod
    def check(name: str, cache, B: int, num_heads: int, d_head: int, T_new: int) -> int:
        """Raise unless ``cache`` is a KVCache for (B, num_heads, ., d_head) (TypeError / ValueError naming
        ``name``); return Tk, the number of keys a call with ``T_new`` new positions attends to."""
        if not isinstance(cache, KVCache):
            raise TypeError(f"{name} must be a KVCache or None, got {type(cache).__name__}")
        if cache.k is None:
            return T_new
        if cache.k.shape[0] != B or cache.k.shape[1] != num_heads or cache.k.shape[3] != d_head:
            raise ValueError(f"{name} holds keys of shape {_checks.shape_of(cache.k)}, not (B={B}, h={num_heads}, "
                             f"T, d_head={d_head}): a cache serves one batch and one layer")
        return len(cache) if cache.static else len(cache) + T_new


# ---------------------------------------------------------------------------
# Masks (True = may attend)
# ---------------------------------------------------------------------------

def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) bool, True on and below the diagonal: position i may attend to positions j <= i.

    T must be a positive int; device a torch.device, a name such as "cpu", or None.
    """
    _checks.check_positive_int("T", T)
    if device is not None and not isinstance(device, torch.device):
        device = _checks.check_device("device", device, meta=True)
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(token_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, 1, 1, T) bool, True where ``token_ids`` (B, T) is a real token (not ``pad_id``).

    The two singleton axes broadcast over heads and query positions. ``pad_id`` must be an int
    (an id no token has, e.g. -1, hides nothing).
    """
    if not isinstance(token_ids, torch.Tensor):
        raise TypeError(f"token_ids must be a torch.Tensor of shape (B, T), got {type(token_ids).__name__}")
    if token_ids.dim() != 2:
        raise ValueError(f"token_ids must have shape (B, T), got {_checks.shape_of(token_ids)}")
    if token_ids.is_floating_point() or token_ids.dtype == torch.bool:
        raise TypeError(f"token_ids must be an integer tensor, got dtype {token_ids.dtype}")
    _checks.check_int("pad_id", pad_id)
    return (token_ids != pad_id)[:, None, None, :]
