"""Tests of course_lib.attention: score functions, soft attention, scaled dot-product attention,
multi-head attention and the masks.

The reference implementations are PyTorch's own (``F.scaled_dot_product_attention``,
``nn.MultiheadAttention``) and the notes' formulas written out by hand. Shapes are tiny, so the
file runs in about a second.
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.attention import (
    SCORE_NAMES,
    AdditiveScore,
    BilinearScore,
    DotScore,
    MultiHeadAttention,
    ScaledDotScore,
    attend,
    causal_mask,
    make_score,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)

ATOL = 1e-6


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def shape_str(t_or_shape) -> str:
    """The way the library prints a shape: (2, 3, 4)."""
    shape = t_or_shape.shape if isinstance(t_or_shape, torch.Tensor) else t_or_shape
    return "(" + ", ".join(str(s) for s in shape) + ")"


def raises_naming(exc, *parts):
    """pytest.raises(exc) whose message must contain every one of ``parts`` (literally)."""
    return pytest.raises(exc, match="".join(f"(?=[\\s\\S]*{re.escape(p)})" for p in parts))


# ---------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------

SDPA_CASES = {
    # name: (q shape, k shape, v shape)
    "unbatched": ((5, 8), (5, 8), (5, 8)),
    "batched": ((3, 5, 8), (3, 5, 8), (3, 5, 8)),
    "multi_head_4d": ((2, 4, 5, 8), (2, 4, 5, 8), (2, 4, 5, 8)),
    "tq_ne_tk": ((2, 4, 3, 8), (2, 4, 7, 8), (2, 4, 7, 8)),
    "dv_ne_dk": ((2, 4, 3, 8), (2, 4, 7, 8), (2, 4, 7, 6)),
}


def _mask_for(kind, q_shape, k_shape):
    Tq, Tk = q_shape[-2], k_shape[-2]
    if kind is None:
        return None
    if kind == "causal":
        # causal over the last Tq of Tk positions, so every row keeps at least one key
        return torch.ones(Tq, Tk, dtype=torch.bool).tril(diagonal=Tk - Tq)
    if kind == "padding":
        B = q_shape[0] if len(q_shape) > 2 else 1
        lengths = torch.randint(1, Tk + 1, (B,))
        lengths[0] = Tk - 2  # at least one sequence really has padding
        keep = torch.arange(Tk)[None, :] < lengths[:, None]  # (B, Tk)
        if len(q_shape) == 4:
            return keep[:, None, None, :]  # (B, 1, 1, Tk): broadcast over heads and queries
        if len(q_shape) == 3:
            return keep[:, None, :]  # (B, 1, Tk)
        return keep  # (1, Tk)
    raise AssertionError(kind)


@pytest.mark.parametrize("mask_kind", [None, "causal", "padding"])
@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_sdpa_matches_torch(case, mask_kind):
    q_shape, k_shape, v_shape = SDPA_CASES[case]
    q, k, v = torch.randn(q_shape), torch.randn(k_shape), torch.randn(v_shape)
    mask = _mask_for(mask_kind, q_shape, k_shape)
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == expected.shape == (*q_shape[:-1], v_shape[-1])
    assert weights.shape == (*q_shape[:-1], k_shape[-2])
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    # the weights are the softmax of the scaled scores, rows summing to 1
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=ATOL, rtol=0)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q_shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()
    torch.testing.assert_close(weights, torch.softmax(scores, -1), atol=ATOL, rtol=0)
    torch.testing.assert_close(out, weights @ v, atol=ATOL, rtol=0)


def test_sdpa_fully_masked_row_is_zero_and_gradients_are_finite():
    q = torch.randn(2, 3, 4, requires_grad=True)
    k = torch.randn(2, 5, 4, requires_grad=True)
    v = torch.randn(2, 5, 6, requires_grad=True)
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of batch 0 may attend to nothing
    mask[1, 2, 3:] = False  # an ordinary partly masked row
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert not torch.isnan(out).any() and not torch.isnan(weights).any()
    assert torch.equal(weights[0, 1], torch.zeros(5))
    assert torch.equal(out[0, 1], torch.zeros(6))
    torch.testing.assert_close(weights[1, 2].sum(), torch.tensor(1.0))
    # the other rows are untouched by the empty one
    ref_out, _ = scaled_dot_product_attention(q[:1, [0, 2]], k[:1], v[:1], mask=mask[:1, [0, 2]])
    torch.testing.assert_close(out[:1, [0, 2]], ref_out, atol=ATOL, rtol=0)

    (out.square().sum() + weights.square().sum()).backward()
    for name, t in (("q", q), ("k", k), ("v", v)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
    assert torch.equal(q.grad[0, 1], torch.zeros(4))  # nothing flows through the empty row
    assert q.grad[1].abs().sum() > 0


def test_sdpa_fully_masked_row_with_broadcast_mask_has_finite_grads():
    q = torch.randn(2, 4, 3, 8, requires_grad=True)
    k = torch.randn(2, 4, 5, 8, requires_grad=True)
    v = torch.randn(2, 4, 5, 8, requires_grad=True)
    mask = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    mask[1] = False  # every query of the whole second sequence sees nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.equal(weights[1], torch.zeros_like(weights[1]))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_masked_softmax_rows():
    scores = torch.randn(3, 4)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    w = masked_softmax(scores, mask)
    torch.testing.assert_close(w[0, :2], torch.softmax(scores[0, :2], -1))
    assert torch.equal(w[0, 2:], torch.zeros(2))
    assert torch.equal(w[1], torch.zeros(4))
    torch.testing.assert_close(w[2], torch.softmax(scores[2], -1))
    torch.testing.assert_close(masked_softmax(scores), torch.softmax(scores, -1))


def test_sdpa_dropout_is_seeded_and_rescales_kept_weights():
    p = 0.5
    Tk = 6
    q, k = torch.randn(2, 4, 8), torch.randn(2, Tk, 8)
    v = torch.eye(Tk).expand(2, Tk, Tk)  # output = the dropped-out weights themselves
    out_plain, w_plain = scaled_dot_product_attention(q, k, v)

    def run(seed):
        return scaled_dot_product_attention(q, k, v, dropout_p=p, generator=torch.Generator().manual_seed(seed))

    out1, w1 = run(123)
    out2, w2 = run(123)
    out3, _ = run(124)
    assert torch.equal(out1, out2)  # same generator seed, same dropout pattern
    assert not torch.equal(out1, out3)
    # the returned weights are the attention weights themselves, not the dropped-out ones
    torch.testing.assert_close(w1, w_plain, atol=ATOL, rtol=0)
    # every weight is either dropped (0) or kept and rescaled by 1 / (1 - p)
    kept = out1 != 0
    assert kept.any() and (~kept).any()
    torch.testing.assert_close(out1[kept], w_plain[kept] / (1 - p), atol=ATOL, rtol=0)
    # dropout_p = 0 is exact
    out0, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out0, out_plain, atol=0, rtol=0)
    # unbiased: the average over many draws approaches the plain output
    g = torch.Generator().manual_seed(0)
    mean = torch.stack([scaled_dot_product_attention(q, k, v, dropout_p=p, generator=g)[0]
                        for _ in range(400)]).mean(0)
    torch.testing.assert_close(mean, out_plain, atol=0.08, rtol=0)


# ---------------------------------------------------------------------------
# attend and the score functions
# ---------------------------------------------------------------------------

def test_attend_single_query_matches_the_notes_formula():
    n, d = 6, 5
    H, q = torch.randn(n, d), torch.randn(d)
    context, a = attend(q, H, score=DotScore())
    # a_i = softmax(s(h_i, q)) with s(h, q) = h . q; context = sum_i a_i h_i
    s = torch.tensor([float(H[i] @ q) for i in range(n)])
    a_hand = torch.exp(s) / torch.exp(s).sum()
    context_hand = sum(a_hand[i] * H[i] for i in range(n))
    assert a.shape == (n,) and context.shape == (d,)
    torch.testing.assert_close(a, a_hand, atol=ATOL, rtol=0)
    torch.testing.assert_close(context, context_hand, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.sum(), torch.tensor(1.0))


def test_attend_key_value_form_uses_values():
    K, V, q = torch.randn(6, 5), torch.randn(6, 3), torch.randn(5)
    context, a = attend(q, K, V, score=DotScore())
    a_hand = torch.softmax(K @ q, -1)
    torch.testing.assert_close(a, a_hand, atol=ATOL, rtol=0)
    torch.testing.assert_close(context, a_hand @ V, atol=ATOL, rtol=0)
    assert context.shape == (3,)
    # values default to keys
    c_default, a_default = attend(q, K, score=DotScore())
    c_explicit, _ = attend(q, K, K, score=DotScore())
    torch.testing.assert_close(c_default, c_explicit, atol=0, rtol=0)
    torch.testing.assert_close(c_default, a_hand @ K, atol=ATOL, rtol=0)
    # the default score is the scaled dot product
    c_scaled, a_scaled = attend(q, K, V)
    torch.testing.assert_close(a_scaled, torch.softmax(K @ q / math.sqrt(5), -1), atol=ATOL, rtol=0)


def test_attend_batched_shapes_and_mask():
    B, Tq, Tk, d, dv = 3, 4, 6, 5, 2
    Q, K, V = torch.randn(B, Tq, d), torch.randn(B, Tk, d), torch.randn(B, Tk, dv)
    context, a = attend(Q, K, V)
    assert context.shape == (B, Tq, dv) and a.shape == (B, Tq, Tk)
    torch.testing.assert_close(a.sum(-1), torch.ones(B, Tq), atol=ATOL, rtol=0)
    # one query per batch element (the decoder state): no Tq axis in, none out
    c1, a1 = attend(Q[:, 0], K, V)
    assert c1.shape == (B, dv) and a1.shape == (B, Tk)
    torch.testing.assert_close(c1, context[:, 0], atol=ATOL, rtol=0)
    # a padding mask: attention over the unmasked keys only
    lengths = torch.tensor([6, 3, 1])
    mask = (torch.arange(Tk)[None, :] < lengths[:, None])[:, None, :]  # (B, 1, Tk)
    cm, am = attend(Q, K, V, mask=mask)
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(am[b, :, n:], torch.zeros(Tq, Tk - n))
        c_ref, a_ref = attend(Q[b], K[b, :n], V[b, :n])
        torch.testing.assert_close(cm[b], c_ref, atol=ATOL, rtol=0)
        torch.testing.assert_close(am[b, :, :n], a_ref, atol=ATOL, rtol=0)
    # single query with a mask broadcast over the missing Tq axis
    cs, as_ = attend(Q[:, 0], K, V, mask=mask)
    torch.testing.assert_close(cs, cm[:, 0], atol=ATOL, rtol=0)


def test_dot_and_scaled_dot_scores_by_hand():
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    dot, scaled = DotScore()(q, k), ScaledDotScore()(q, k)
    assert dot.shape == scaled.shape == (2, 3, 5)
    for b in range(2):
        for i in range(3):
            for j in range(5):
                s = float(q[b, i] @ k[b, j])
                assert dot[b, i, j].item() == pytest.approx(s, abs=1e-5)
                assert scaled[b, i, j].item() == pytest.approx(s / 2.0, abs=1e-5)  # sqrt(4) = 2


def test_additive_score_by_hand_with_different_widths():
    score = AdditiveScore(d_query=3, d_key=5, d_hidden=7)
    q, k = torch.randn(2, 4, 3), torch.randn(2, 6, 5)
    s = score(q, k)
    assert s.shape == (2, 4, 6)
    W_q, W_k, v = score.w_q.weight, score.w_k.weight, score.v.weight[0]
    for b in range(2):
        for i in range(4):
            for j in range(6):
                hand = v @ torch.tanh(W_q @ q[b, i] + W_k @ k[b, j])  # v^T tanh(W_q q + W_k k)
                assert s[b, i, j].item() == pytest.approx(hand.item(), abs=1e-5)


def test_bilinear_score_by_hand_with_different_widths():
    score = BilinearScore(d_query=3, d_key=5)
    q, k = torch.randn(4, 3), torch.randn(6, 5)
    s = score(q, k)
    assert s.shape == (4, 6)
    W = score.w.weight  # (d_query, d_key)
    assert W.shape == (3, 5)
    for i in range(4):
        for j in range(6):
            assert s[i, j].item() == pytest.approx((q[i] @ W @ k[j]).item(), abs=1e-5)  # q^T W k


def test_make_score_by_name():
    assert set(SCORE_NAMES) == {"additive", "dot", "scaled_dot", "bilinear"}
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    for name in SCORE_NAMES:
        s = make_score(name, 4)
        assert s(q, k).shape == (2, 3, 5), name
    assert isinstance(make_score("dot", 4), DotScore)
    assert isinstance(make_score("scaled_dot", 4), ScaledDotScore)
    add = make_score("additive", 4, 6, 8)
    assert isinstance(add, AdditiveScore)
    assert (add.w_q.in_features, add.w_k.in_features, add.w_q.out_features) == (4, 6, 8)
    assert make_score("additive", 4).w_q.out_features == 4  # d_hidden defaults to d_query
    bil = make_score("bilinear", 4, 6)
    assert isinstance(bil, BilinearScore) and bil.w.weight.shape == (4, 6)
    assert bil(q, torch.randn(2, 5, 6)).shape == (2, 3, 5)
    # each score plugs into attend
    for name in SCORE_NAMES:
        c, a = attend(torch.randn(4), torch.randn(5, 4), score=make_score(name, 4))
        assert c.shape == (4,) and a.shape == (5,)
        torch.testing.assert_close(a.sum(), torch.tensor(1.0))


# ---------------------------------------------------------------------------
# MultiHeadAttention against torch.nn.MultiheadAttention
# ---------------------------------------------------------------------------

def _pair(d, h, bias=True, dropout=0.0):
    ours = MultiHeadAttention(d, h, dropout=dropout, bias=bias)
    ref = nn.MultiheadAttention(d, h, dropout=dropout, bias=bias, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        if bias:
            ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
            ref.out_proj.bias.copy_(ours.w_o.bias)
        else:
            assert ref.in_proj_bias is None and ours.w_q.bias is None
    return ours, ref


MHA_CASES = [
    # (name, Tq, Tk, mask kind, bias)
    ("self", 5, 5, None, True),
    ("cross", 3, 7, None, True),
    ("causal", 5, 5, "causal", True),
    ("key_padding_self", 5, 5, "padding", True),
    ("key_padding_cross", 3, 7, "padding", True),
    ("self_no_bias", 5, 5, None, False),
    ("causal_no_bias", 5, 5, "causal", False),
]


@pytest.mark.parametrize("name,Tq,Tk,mask_kind,bias", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_mha_matches_torch(name, Tq, Tk, mask_kind, bias):
    B, d, h = 3, 16, 4
    ours, ref = _pair(d, h, bias=bias)
    x_q = torch.randn(B, Tq, d, requires_grad=True)
    if Tq == Tk and name.startswith(("self", "causal", "key_padding_self")):
        x_kv = x_q  # self-attention: one tensor for query, key and value
    else:
        x_kv = torch.randn(B, Tk, d, requires_grad=True)
    ref_kw = {}
    mask = None
    if mask_kind == "causal":
        mask = causal_mask(Tq)  # True = may attend
        ref_kw["attn_mask"] = ~mask  # torch: True = blocked
    elif mask_kind == "padding":
        lengths = torch.tensor([Tk, Tk - 2, 1])
        ids = torch.where(torch.arange(Tk)[None, :] < lengths[:, None], 7, 0)
        mask = padding_mask(ids, pad_id=0)  # (B, 1, 1, Tk), True = real token
        ref_kw["key_padding_mask"] = ids == 0  # torch: True = pad

    out, w = ours(x_q, x_kv, x_kv, mask=mask)
    out_ref, w_ref = ref(x_q, x_kv, x_kv, need_weights=True, average_attn_weights=False, **ref_kw)
    assert out.shape == (B, Tq, d) and w.shape == (B, h, Tq, Tk)
    torch.testing.assert_close(out, out_ref, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(w, w_ref, atol=ATOL, rtol=1e-5)

    # backward: the same gradients for the inputs and for every weight
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [x_q, x_kv, *ours.parameters()], allow_unused=False)
    params_ref = [ref.in_proj_weight, ref.out_proj.weight]
    if bias:
        params_ref += [ref.in_proj_bias, ref.out_proj.bias]
    grads_ref = torch.autograd.grad((out_ref * g).sum(), [x_q, x_kv, *params_ref])
    torch.testing.assert_close(grads[0], grads_ref[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[1], grads_ref[1], atol=1e-5, rtol=1e-4)
    named = dict(zip([n for n, _ in ours.named_parameters()], grads[2:]))
    in_w = torch.cat([named["w_q.weight"], named["w_k.weight"], named["w_v.weight"]])
    torch.testing.assert_close(in_w, grads_ref[2], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(named["w_o.weight"], grads_ref[3], atol=1e-5, rtol=1e-4)
    if bias:
        in_b = torch.cat([named["w_q.bias"], named["w_k.bias"], named["w_v.bias"]])
        torch.testing.assert_close(in_b, grads_ref[4], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(named["w_o.bias"], grads_ref[5], atol=1e-5, rtol=1e-4)


def test_mha_self_attention_equals_three_separate_projections():
    # mha(x, x, x) may compute Q, K, V in one product; it must equal w_q(x), w_k(x), w_v(x)
    for bias in (True, False):
        mha = MultiHeadAttention(16, 4, bias=bias)
        x = torch.randn(2, 5, 16, requires_grad=True)
        mask = causal_mask(5)
        out_self, w_self = mha(x, x, x, mask=mask)
        g_self = torch.autograd.grad(out_self.square().sum(), [x, *mha.parameters()])
        x_k, x_v = x.clone(), x.clone()  # the same numbers in other tensors
        out_sep, w_sep = mha(x, x_k, x_v, mask=mask)
        g_sep = torch.autograd.grad(out_sep.square().sum(), [x, *mha.parameters()])
        torch.testing.assert_close(out_self, out_sep, atol=ATOL, rtol=1e-6)
        torch.testing.assert_close(w_self, w_sep, atol=ATOL, rtol=1e-6)
        for a, b in zip(g_self, g_sep):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        q = mha.w_q(x).view(2, 5, 4, 4).transpose(1, 2)
        k = mha.w_k(x).view(2, 5, 4, 4).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1) / 2.0).masked_fill(~mask, float("-inf"))  # sqrt(d_head) = 2
        torch.testing.assert_close(w_self, torch.softmax(scores, -1), atol=ATOL, rtol=1e-5)


def test_mha_eval_mode_ignores_dropout():
    ours, ref = _pair(16, 4, dropout=0.5)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 5, 16)
    out, w = ours(x, x, x)
    out_ref, w_ref = ref(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(out, out_ref, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(w, w_ref, atol=ATOL, rtol=1e-5)
    ours.train()
    out_train, _ = ours(x, x, x)
    assert not torch.allclose(out_train, out)


def test_mha_output_before_w_o_is_the_concatenation_of_the_heads():
    B, T, d, h = 2, 5, 12, 3
    dh = d // h
    mha = MultiHeadAttention(d, h)
    x = torch.randn(B, T, d)
    captured = {}
    handle = mha.w_o.register_forward_pre_hook(lambda mod, args: captured.setdefault("concat", args[0]))
    try:
        _, weights = mha(x, x, x)
    finally:
        handle.remove()
    heads = []
    for m in range(h):
        rows = slice(m * dh, (m + 1) * dh)
        q_m = x @ mha.w_q.weight[rows].T + mha.w_q.bias[rows]
        k_m = x @ mha.w_k.weight[rows].T + mha.w_k.bias[rows]
        v_m = x @ mha.w_v.weight[rows].T + mha.w_v.bias[rows]
        a_m = torch.softmax(q_m @ k_m.transpose(-2, -1) / math.sqrt(dh), -1)
        torch.testing.assert_close(weights[:, m], a_m, atol=ATOL, rtol=1e-5)
        heads.append(a_m @ v_m)  # context_m (B, T, d_head)
    # context = context_1 ⊕ ... ⊕ context_h
    torch.testing.assert_close(captured["concat"], torch.cat(heads, dim=-1), atol=ATOL, rtol=1e-5)


def test_mha_fully_masked_query_gives_zero_weights_not_nan():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8, requires_grad=True)
    mask = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    mask[..., 0, :] = False
    out, w = mha(x, x, x, mask=mask)
    assert torch.equal(w[0, :, 0], torch.zeros(2, 3))
    assert torch.isfinite(out).all()
    # the empty row's context is zero, so its output is just the output bias
    torch.testing.assert_close(out[0, 0], mha.w_o.bias.detach(), atol=ATOL, rtol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1, 2, 5])
def test_causal_mask(T):
    m = causal_mask(T)
    assert m.dtype == torch.bool and m.shape == (T, T)
    for i in range(T):
        for j in range(T):
            assert bool(m[i, j]) == (j <= i)


def test_padding_mask():
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 0, 0, 0, 0]])
    m = padding_mask(ids, pad_id=0)
    assert m.dtype == torch.bool and m.shape == (2, 1, 1, 5)
    assert m[:, 0, 0].tolist() == [[True, True, True, False, False], [True, False, False, False, False]]
    # another pad id
    assert padding_mask(ids, pad_id=7)[0, 0, 0].tolist() == [True, True, False, True, True]


# ---------------------------------------------------------------------------
# Bad input: the right exception, naming the argument and the shapes
# ---------------------------------------------------------------------------

def test_mha_d_model_not_divisible_by_num_heads():
    with raises_naming(ValueError, "d_model", "num_heads", "30", "4"):
        MultiHeadAttention(30, 4)


def test_mha_rejects_wrong_rank_and_width():
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16)
    q2 = torch.randn(5, 16)
    with raises_naming(ValueError, "query", "(B, T, d_model=16)", shape_str(q2)):
        mha(q2, x, x)
    q_narrow = torch.randn(2, 5, 8)
    with raises_naming(ValueError, "query", "d_model=16", shape_str(q_narrow)):
        mha(q_narrow, x, x)
    k4 = torch.randn(2, 1, 5, 16)
    with raises_naming(ValueError, "key", "(B, T, d_model=16)", shape_str(k4)):
        mha(x, k4, k4)
    v_short = torch.randn(2, 4, 16)
    with raises_naming(ValueError, "key", "value", shape_str(x), shape_str(v_short)):
        mha(x, x, v_short)
    q_other_batch = torch.randn(3, 5, 16)
    with raises_naming(ValueError, "query", "key", shape_str(q_other_batch), shape_str(x)):
        mha(q_other_batch, x, x)


def test_mha_rejects_bad_masks():
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16)
    with raises_naming(TypeError, "mask", "bool", "torch.float32"):
        mha(x, x, x, mask=causal_mask(5).float())
    bad = torch.ones(3, 5, dtype=torch.bool)
    with raises_naming(ValueError, "mask", "(B, h, Tq, Tk)", "(2, 4, 5, 5)", shape_str(bad)):
        mha(x, x, x, mask=bad)


def test_mha_rejects_non_tensors_and_integer_tensors():
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16)
    with raises_naming(TypeError, "key", "torch.Tensor", "list"):
        mha(x, x.tolist(), x)
    with raises_naming(TypeError, "value", "torch.int64"):
        mha(x, x, x.long())


def test_sdpa_rejects_bad_input():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    k_wide = torch.randn(2, 5, 6)
    with raises_naming(ValueError, "q", "k", "d_k", shape_str(q), shape_str(k_wide)):
        scaled_dot_product_attention(q, k_wide, v)
    v_long = torch.randn(2, 6, 6)
    with raises_naming(ValueError, "k", "v", "Tk", shape_str(k), shape_str(v_long)):
        scaled_dot_product_attention(q, k, v_long)
    with raises_naming(TypeError, "mask", "bool", "torch.float32"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 5))
    with raises_naming(TypeError, "mask", "bool", "torch.int64"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 5, dtype=torch.long))
    with raises_naming(TypeError, "mask", "list"):
        scaled_dot_product_attention(q, k, v, mask=[[True] * 5] * 3)
    bad = torch.ones(4, 5, dtype=torch.bool)
    with raises_naming(ValueError, "mask", "(..., Tq, Tk)", "(2, 3, 5)", shape_str(bad)):
        scaled_dot_product_attention(q, k, v, mask=bad)
    with raises_naming(TypeError, "q", "torch.Tensor", "list"):
        scaled_dot_product_attention(q.tolist(), k, v)
    with raises_naming(TypeError, "k", "torch.int64"):
        scaled_dot_product_attention(q, k.long(), v)
    with raises_naming(TypeError, "v", "torch.int32"):
        scaled_dot_product_attention(q, k, v.int())
    q1 = torch.randn(4)
    with raises_naming(ValueError, "q", "(..., Tq, d_k)", shape_str(q1)):
        scaled_dot_product_attention(q1, k, v)
    with raises_naming(ValueError, "dropout_p", "1.0"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)


def test_attend_and_scores_reject_bad_input():
    q, K = torch.randn(3, 4), torch.randn(5, 4)
    K6 = torch.randn(5, 6)
    with raises_naming(ValueError, "DotScore", "query", "keys", shape_str(q), shape_str(K6)):
        DotScore()(q, K6)
    with raises_naming(ValueError, "ScaledDotScore", "query", "keys", shape_str(q), shape_str(K6)):
        attend(q, K6)
    add = AdditiveScore(4, 6, 8)
    with raises_naming(ValueError, "keys", "d_key=6", shape_str(K)):
        add(q, K)
    with raises_naming(ValueError, "query", "d_query=4", "(3, 6)"):
        add(torch.randn(3, 6), K6)
    bil = BilinearScore(4, 6)
    with raises_naming(ValueError, "keys", "d_key=6", shape_str(K)):
        bil(q, K)
    V_short = torch.randn(4, 4)
    with raises_naming(ValueError, "values", "keys", shape_str(K), shape_str(V_short)):
        attend(q, K, V_short)
    with raises_naming(TypeError, "query", "torch.Tensor", "list"):
        attend(q.tolist(), K)
    with raises_naming(TypeError, "keys", "torch.int64"):
        attend(q, K.long())
    with raises_naming(TypeError, "mask", "bool", "torch.float32"):
        attend(q, K, mask=torch.ones(3, 5))
    bad = torch.ones(3, 4, dtype=torch.bool)
    with raises_naming(ValueError, "mask", "(3, 5)", shape_str(bad)):
        attend(q, K, mask=bad)
    q3 = torch.randn(2, 2, 3, 4)
    with raises_naming(ValueError, "query", shape_str(q3), shape_str(K)):
        attend(q3, K)


def test_make_score_rejects_bad_names_and_widths():
    with raises_naming(ValueError, "name", "'nope'", "additive"):
        make_score("nope", 4)
    with raises_naming(ValueError, "dot", "d_query", "d_key", "4", "6"):
        make_score("dot", 4, 6)
    with raises_naming(ValueError, "scaled_dot", "d_query", "d_key"):
        make_score("scaled_dot", 4, 6)


@pytest.mark.parametrize("T", [0, -3, 2.5, True, "4", None])
def test_causal_mask_rejects_non_positive_ints(T):
    with raises_naming(ValueError, "T", "positive int", repr(T)):
        causal_mask(T)


def test_padding_mask_rejects_bad_ids():
    ids1 = torch.tensor([1, 2, 0])
    with raises_naming(ValueError, "token_ids", "(B, T)", shape_str(ids1)):
        padding_mask(ids1, 0)
    with raises_naming(ValueError, "token_ids", "(B, T)", "(1, 1, 3)"):
        padding_mask(ids1[None, None], 0)
    with raises_naming(TypeError, "token_ids", "torch.Tensor", "list"):
        padding_mask([[1, 2, 0]], 0)
    with raises_naming(TypeError, "token_ids", "integer", "torch.float32"):
        padding_mask(torch.ones(2, 3), 0)


def test_mismatched_batch_axes_are_named():
    q, k, v = torch.randn(2, 3, 4), torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    with pytest.raises(ValueError, match=r"leading \(batch, head\) axes.*q \(2, 3, 4\)"):
        scaled_dot_product_attention(q, k, v)


def test_masked_softmax_checks_its_mask():
    with pytest.raises(TypeError, match="torch.bool"):
        masked_softmax(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="broadcastable"):
        masked_softmax(torch.zeros(2, 3), torch.ones(4, 3, dtype=torch.bool))
