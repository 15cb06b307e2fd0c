"""Tests of course_lib.transformer: positional encoding, the feed-forward network, the encoder / decoder layers.

The references are the formula written out with loops and PyTorch's own
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` given the same weights, post-norm
(the default) and pre-norm (``norm_first=True``). The stacks and the whole model are tested in
tests/test_encoder_decoder.py. Sizes are tiny, so the file runs in a few seconds.
"""

import inspect
import math

import pytest
import torch
from torch import nn

from course_lib.attention import causal_mask, padding_mask
from course_lib.transformer import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    set_need_weights,
    sinusoidal_positional_encoding,
    to_torch,
)

ATOL = 1e-5
D, H, D_FF = 16, 4, 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------
# Positional encoding
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("d_model", [8, 7])
def test_positional_encoding_matches_formula(d_model):
    max_len = 50
    pe = sinusoidal_positional_encoding(max_len, d_model)
    assert pe.shape == (max_len, d_model)
    assert pe.dtype == torch.float32
    for p in range(max_len):
        for i in range((d_model + 1) // 2):
            angle = p / 10000 ** (2 * i / d_model)
            assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            if 2 * i + 1 < d_model:
                assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert pe.abs().max() <= 1.0
    # position 0: sin 0 = 0 in even columns, cos 0 = 1 in odd columns
    assert torch.equal(pe[0, 0::2], torch.zeros((d_model + 1) // 2))
    assert torch.equal(pe[0, 1::2], torch.ones(d_model // 2))


def test_positional_encoding_rows_are_distinct():
    pe = sinusoidal_positional_encoding(100, 16)
    distances = torch.cdist(pe, pe) + torch.eye(100) * 1e3
    assert distances.min() > 0.1


# ---------------------------------------------------------------------------
# Layers against torch.nn
# ---------------------------------------------------------------------------

def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
    theirs.weight.copy_(ours.weight)
    theirs.bias.copy_(ours.bias)


def _randomise_norms(layer) -> None:
    """LayerNorm weights other than 1 and 0, so a swapped or skipped norm is noticed."""
    with torch.no_grad():
        for norm in (m for m in layer.modules() if isinstance(m, nn.LayerNorm)):
            norm.weight.copy_(1 + 0.1 * torch.randn(norm.weight.shape))
            norm.bias.copy_(0.1 * torch.randn(norm.bias.shape))


def _encoder_pair(norm_first=None):
    """Ours with the default norm_first (None) or the given one; torch's with the same weights."""
    ours = EncoderLayer(D, H, D_FF, dropout=0.0) if norm_first is None else \
        EncoderLayer(D, H, D_FF, dropout=0.0, norm_first=norm_first)
    _randomise_norms(ours)
    theirs = to_torch(ours)
    assert isinstance(theirs, nn.TransformerEncoderLayer) and theirs.norm_first == bool(norm_first)
    return ours, theirs


def _decoder_pair(norm_first=None):
    ours = DecoderLayer(D, H, D_FF, dropout=0.0) if norm_first is None else \
        DecoderLayer(D, H, D_FF, dropout=0.0, norm_first=norm_first)
    _randomise_norms(ours)
    theirs = to_torch(ours)
    assert isinstance(theirs, nn.TransformerDecoderLayer) and theirs.norm_first == bool(norm_first)
    return ours, theirs


def test_to_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="EncoderLayer or a DecoderLayer"):
        to_torch(nn.Linear(2, 2))


NORM_FIRST = pytest.mark.parametrize("norm_first", [None, False, True], ids=["default", "post-norm", "pre-norm"])


B, T, S = 2, 6, 5
LENGTHS = torch.tensor([6, 4])  # the second sequence ends in two padding positions
SRC_LENGTHS = torch.tensor([5, 3])


def _pad_ids(lengths, L):
    return (torch.arange(L)[None, :] < lengths[:, None]).long()  # 1 = real token, 0 = pad


@NORM_FIRST
@pytest.mark.parametrize("masking", ["none", "padding", "causal", "both"])
@pytest.mark.parametrize("training", [False, True])
def test_encoder_layer_matches_torch(masking, training, norm_first):
    ours, theirs = _encoder_pair(norm_first)
    assert ours.norm_first is bool(norm_first)
    ours.train(training)
    theirs.train(training)
    x = torch.randn(B, T, D)
    keep = padding_mask(_pad_ids(LENGTHS, T), pad_id=0)  # (B, 1, 1, T), True = real
    ours_mask, kwargs = None, {}
    if masking in ("padding", "both"):
        ours_mask = keep
        kwargs["src_key_padding_mask"] = ~keep[:, 0, 0, :]  # torch: True = pad
    if masking in ("causal", "both"):
        causal = causal_mask(T)
        ours_mask = causal if ours_mask is None else ours_mask & causal
        kwargs["src_mask"] = ~causal  # torch: True = blocked
        kwargs["is_causal"] = True

    # Without gradients, torch's eval mode takes its fused "fast path"; with them, the Python path.
    with torch.no_grad():
        expected = theirs(x, **kwargs)
        got = ours(x, ours_mask)
    real = _pad_ids(LENGTHS, T).bool()  # compare real positions; torch may zero padded ones
    torch.testing.assert_close(got[real], expected[real], atol=ATOL, rtol=1e-4)

    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    upstream = torch.randn(B, T, D) * real[..., None]
    (ours(x1, ours_mask) * upstream).sum().backward()
    (theirs(x2, **kwargs) * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=ATOL, rtol=1e-4)
    sa = ours.self_attn
    torch.testing.assert_close(torch.cat([sa.w_q.weight.grad, sa.w_k.weight.grad, sa.w_v.weight.grad]),
                               theirs.self_attn.in_proj_weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(sa.w_o.weight.grad, theirs.self_attn.out_proj.weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(ours.ffn.linear1.weight.grad, theirs.linear1.weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(ours.norm1.weight.grad, theirs.norm1.weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(ours.norm2.bias.grad, theirs.norm2.bias.grad, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("training, need_weights, kept", [
    (False, None, True), (True, None, False),   # default: weights in eval mode, the fused kernel in training
    (True, True, True), (False, False, False),  # set_need_weights overrides the mode either way
])
def test_encoder_layer_keeps_attention_weights(training, need_weights, kept):
    layer = EncoderLayer(D, H, D_FF, dropout=0.0).train(training)
    assert layer.attn_weights is None and layer.need_weights is None
    assert set_need_weights(layer, need_weights) is layer and layer.need_weights is need_weights
    x = torch.randn(B, T, D, requires_grad=True)
    mask = padding_mask(_pad_ids(LENGTHS, T), pad_id=0)
    out = layer(x, mask)
    w = layer.attn_weights
    if not kept:
        assert w is None  # never the weights of an earlier call
        layer.need_weights = True
        torch.testing.assert_close(layer(x, mask), out, atol=ATOL, rtol=1e-5)  # the other path, the same output
        return
    assert w.shape == (B, H, T, T)
    assert not w.requires_grad
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, T))
    assert (w[1, :, :, 4:] == 0).all()  # padded keys get no weight
    layer.need_weights = False
    layer(x, mask)
    assert layer.attn_weights is None  # not the stale weights of the call before


def test_set_need_weights_reaches_every_layer_and_checks_its_input():
    model = nn.Sequential(EncoderLayer(D, H, D_FF), nn.ModuleList([DecoderLayer(D, H, D_FF)]))
    set_need_weights(model, False)
    assert [m.need_weights for m in model.modules() if hasattr(m, "need_weights")] == [False, False]
    with pytest.raises(TypeError, match="need_weights"):
        set_need_weights(model, "yes")
    with pytest.raises(TypeError, match="model"):
        set_need_weights("model", True)


@NORM_FIRST
@pytest.mark.parametrize("tgt_padding", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_decoder_layer_matches_torch(tgt_padding, training, norm_first):
    ours, theirs = _decoder_pair(norm_first)
    assert ours.norm_first is bool(norm_first)
    ours.train(training)
    theirs.train(training)
    x = torch.randn(B, T, D)
    memory = torch.randn(B, S, D)
    src_keep = padding_mask(_pad_ids(SRC_LENGTHS, S), pad_id=0)  # (B, 1, 1, S)
    causal = causal_mask(T)
    tgt_mask = causal
    kwargs = dict(tgt_mask=~causal, tgt_is_causal=True, memory_key_padding_mask=~src_keep[:, 0, 0, :])
    if tgt_padding:
        tgt_keep = padding_mask(_pad_ids(LENGTHS, T), pad_id=0)
        tgt_mask = causal & tgt_keep  # (B, 1, T, T)
        kwargs["tgt_key_padding_mask"] = ~tgt_keep[:, 0, 0, :]

    x1, m1 = x.clone().requires_grad_(), memory.clone().requires_grad_()
    x2, m2 = x.clone().requires_grad_(), memory.clone().requires_grad_()
    got = ours(x1, m1, src_mask=src_keep, tgt_mask=tgt_mask)
    expected = theirs(x2, m2, **kwargs)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=1e-4)

    upstream = torch.randn(B, T, D)
    (got * upstream).sum().backward()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(m1.grad, m2.grad, atol=ATOL, rtol=1e-4)
    ca = ours.cross_attn
    torch.testing.assert_close(torch.cat([ca.w_q.weight.grad, ca.w_k.weight.grad, ca.w_v.weight.grad]),
                               theirs.multihead_attn.in_proj_weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(ours.norm3.weight.grad, theirs.norm3.weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(ours.norm2.bias.grad, theirs.norm2.bias.grad, atol=ATOL, rtol=1e-4)

    if training:  # training runs the fused kernel: no weights kept
        assert ours.self_attn_weights is None and ours.cross_attn_weights is None
        return
    assert ours.self_attn_weights.shape == (B, H, T, T)
    assert ours.cross_attn_weights.shape == (B, H, T, S)
    assert (ours.self_attn_weights.triu(1) == 0).all()  # no weight on later positions
    assert (ours.cross_attn_weights[1, :, :, 3:] == 0).all()  # nor on padded source positions


def test_feed_forward_is_two_linear_layers_with_relu():
    ffn = FeedForward(D, D_FF)
    x = torch.randn(3, D)
    expected = ffn.linear2(torch.relu(ffn.linear1(x)))
    torch.testing.assert_close(ffn(x), expected)


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------

def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="max_len"):
        sinusoidal_positional_encoding(0, 8)
    with pytest.raises(ValueError, match="d_model"):
        sinusoidal_positional_encoding(10, 2.5)
    with pytest.raises(ValueError, match="num_heads"):
        EncoderLayer(10, 3, 16)
    with pytest.raises(ValueError, match="d_ff"):
        FeedForward(8, 0)
    with pytest.raises(ValueError, match="dropout"):
        DecoderLayer(8, 2, 16, dropout=1.5)


def test_bad_layer_inputs_raise():
    enc = EncoderLayer(D, H, D_FF)
    dec = DecoderLayer(D, H, D_FF)
    x = torch.randn(B, T, D)
    memory = torch.randn(B, S, D)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model\) with d_model=16, got \(2, 6, 8\)"):
        enc(torch.randn(B, T, 8))
    with pytest.raises(ValueError, match=r"x must have shape .*got \(6, 16\)"):
        enc(torch.randn(T, D))
    with pytest.raises(TypeError, match="x must be a floating-point"):
        enc(torch.ones(B, T, D, dtype=torch.long))
    with pytest.raises(TypeError, match=r"mask must have dtype torch.bool.*float32"):
        enc(x, causal_mask(T).float())
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(B, h, T, T\)"):
        enc(x, torch.ones(T, T + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"memory must have shape \(B, S, d_model\) with d_model=16, got \(2, 5, 12\)"):
        dec(x, torch.randn(B, S, 12))
    with pytest.raises(ValueError, match="memory must have the batch size of x"):
        dec(x, torch.randn(3, S, D))
    with pytest.raises(TypeError, match=r"tgt_mask must have dtype torch.bool"):
        dec(x, memory, tgt_mask=causal_mask(T).long())
    with pytest.raises(ValueError, match=r"src_mask must be broadcastable to \(B, h, T, S\)"):
        dec(x, memory, src_mask=torch.ones(B, 1, 1, S + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., d_model=16\)"):
        FeedForward(D, D_FF)(torch.randn(3, 8))


# ---------------------------------------------------------------------------
# The source notebook 02 shows
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [EncoderLayer, DecoderLayer])
def test_forward_source_reads_as_the_formula(layer):
    """Notebook 02 prints DecoderLayer.forward from its ``if self.norm_first:`` line: it calls the
    sub-layers plainly, its checks stay in ``_check_inputs`` beside it."""
    source = inspect.getsource(layer.forward)
    assert source.startswith("    @_checks.checked_by(_check_inputs)\n    def forward(self, x")
    assert "\n        if self.norm_first:\n" in source
    assert "attn_out, weights = self.self_attn(x, x, x, " in source
    assert "unchecked" not in source and "_checks" not in source.split("def forward", 1)[1]
    assert layer.forward.__name__ == "forward" and "Returns (B, T, d)." in layer.forward.__doc__
