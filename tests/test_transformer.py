"""Tests of course_lib.transformer: positional encoding, the encoder / decoder layers, the full model.

The references are the formula written out with loops and PyTorch's own
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` given the same weights, post-norm
(the default) and pre-norm (``norm_first=True``, with the stacks' final LayerNorm); the model
is checked for causality, padding invariance, greedy decoding, and that it can learn a tiny task.
Sizes are tiny, so the file runs in a few seconds.
"""

import math

import pytest
import torch
from torch import nn

from course_lib.attention import MultiHeadAttention, causal_mask, padding_mask
from course_lib.transformer import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderDecoder,
    EncoderLayer,
    FeedForward,
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


def test_encoder_layer_keeps_attention_weights():
    layer = EncoderLayer(D, H, D_FF, dropout=0.0)
    assert layer.attn_weights is None
    x = torch.randn(B, T, D, requires_grad=True)
    mask = padding_mask(_pad_ids(LENGTHS, T), pad_id=0)
    layer(x, mask)
    w = layer.attn_weights
    assert w.shape == (B, H, T, T)
    assert not w.requires_grad
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, T))
    assert (w[1, :, :, 4:] == 0).all()  # padded keys get no weight


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

    assert ours.self_attn_weights.shape == (B, H, T, T)
    assert ours.cross_attn_weights.shape == (B, H, T, S)
    assert (ours.self_attn_weights.triu(1) == 0).all()  # no weight on later positions
    assert (ours.cross_attn_weights[1, :, :, 3:] == 0).all()  # nor on padded source positions


@pytest.mark.parametrize("training", [False, True])
def test_pre_norm_stacks_match_torch_with_final_norm(training):
    """Two pre-norm layers and the final LayerNorm equal torch's TransformerEncoder / Decoder(norm=...)."""
    num_layers = 2
    enc = Encoder(11, D, H, D_FF, num_layers, max_len=12, dropout=0.0, norm_first=True).train(training)
    dec = Decoder(13, D, H, D_FF, num_layers, max_len=12, dropout=0.0, norm_first=True).train(training)
    _randomise_norms(enc)
    _randomise_norms(dec)
    t_enc = nn.TransformerEncoder(to_torch(enc.layers[0]), num_layers, norm=nn.LayerNorm(D),
                                  enable_nested_tensor=False).train(training)
    t_dec = nn.TransformerDecoder(to_torch(dec.layers[0]), num_layers, norm=nn.LayerNorm(D)).train(training)
    # TransformerEncoder / Decoder deep-copy the layer given: put each of our layers in its place
    t_enc.layers = nn.ModuleList(to_torch(layer) for layer in enc.layers)
    t_dec.layers = nn.ModuleList(to_torch(layer) for layer in dec.layers)
    with torch.no_grad():
        _copy_norm(enc.final_norm, t_enc.norm)
        _copy_norm(dec.final_norm, t_dec.norm)

    src = torch.randint(1, 11, (B, S))
    src[1, SRC_LENGTHS[1]:] = 0
    tgt = torch.randint(1, 13, (B, T))
    src_keep = padding_mask(src, pad_id=0)  # (B, 1, 1, S)
    memory = enc(src, src_keep)
    src_emb = enc.embedding(src, "src").detach().requires_grad_()
    expected_memory = t_enc(src_emb, src_key_padding_mask=~src_keep[:, 0, 0, :])
    torch.testing.assert_close(memory, expected_memory, atol=ATOL, rtol=1e-4)

    causal = causal_mask(T)
    logits = dec(tgt, memory, src_mask=src_keep, tgt_mask=causal)
    tgt_emb = dec.embedding(tgt, "tgt")
    expected_logits = dec.lm_head(t_dec(tgt_emb, expected_memory, tgt_mask=~causal, tgt_is_causal=True,
                                        memory_key_padding_mask=~src_keep[:, 0, 0, :]))
    torch.testing.assert_close(logits, expected_logits, atol=ATOL, rtol=1e-4)

    upstream = torch.randn_like(logits)
    (logits * upstream).sum().backward()
    (expected_logits * upstream).sum().backward()
    torch.testing.assert_close(enc.final_norm.weight.grad, t_enc.norm.weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(enc.final_norm.bias.grad, t_enc.norm.bias.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(dec.final_norm.weight.grad, t_dec.norm.weight.grad, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(enc.layers[0].ffn.linear1.weight.grad, t_enc.layers[0].linear1.weight.grad,
                               atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(dec.layers[0].cross_attn.w_o.weight.grad,
                               t_dec.layers[0].multihead_attn.out_proj.weight.grad, atol=ATOL, rtol=1e-4)


def test_final_norm_only_with_pre_norm():
    post, pre = _small_model(), _small_model(norm_first=True)
    assert post.encoder.final_norm is None and post.decoder.final_norm is None
    assert all(not layer.norm_first for layer in [*post.encoder.layers, *post.decoder.layers])
    assert isinstance(pre.encoder.final_norm, nn.LayerNorm) and isinstance(pre.decoder.final_norm, nn.LayerNorm)
    assert all(layer.norm_first for layer in [*pre.encoder.layers, *pre.decoder.layers])
    # the default model's parameters are unchanged: no final norm among them
    assert not any("final_norm" in name for name in post.state_dict())
    extra = set(pre.state_dict()) - set(post.state_dict())
    assert extra == {f"{stack}.final_norm.{p}" for stack in ("encoder", "decoder") for p in ("weight", "bias")}
    with pytest.raises(TypeError, match="norm_first"):
        EncoderLayer(D, H, D_FF, norm_first="yes")


def test_feed_forward_is_two_linear_layers_with_relu():
    ffn = FeedForward(D, D_FF)
    x = torch.randn(3, D)
    expected = ffn.linear2(torch.relu(ffn.linear1(x)))
    torch.testing.assert_close(ffn(x), expected)


# ---------------------------------------------------------------------------
# The encoder-decoder model
# ---------------------------------------------------------------------------

def _small_model(**kw):
    kw = dict(src_vocab_size=11, tgt_vocab_size=13, d_model=D, num_heads=H, d_ff=D_FF, num_layers=2,
              max_len=12, dropout=0.0) | kw
    return EncoderDecoder(**kw).eval()


def test_model_logits_shape_and_positional_buffer():
    model = _small_model()
    src = torch.randint(1, 11, (B, S))
    tgt_in = torch.randint(1, 13, (B, T))
    logits = model(src, tgt_in)
    assert logits.shape == (B, T, 13)
    pe = model.encoder.embedding.pe
    assert pe.shape == (12, D) and not pe.requires_grad
    assert "embedding.pe" in dict(model.encoder.named_buffers())
    assert all(p is not pe for p in model.parameters())


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_is_causal(norm_first):
    model = _small_model(norm_first=norm_first)
    src = torch.randint(1, 11, (B, S))
    tgt_in = torch.randint(1, 13, (B, T))
    logits = model(src, tgt_in)
    for t in range(T):
        changed = tgt_in.clone()
        changed[:, t] = changed[:, t] % 12 + 1  # a different non-pad token
        new_logits = model(src, changed)
        torch.testing.assert_close(new_logits[:, :t], logits[:, :t], atol=1e-6, rtol=0)
        assert not torch.allclose(new_logits[:, t], logits[:, t], atol=1e-4)  # position t does see it


@pytest.mark.parametrize("norm_first", [False, True])
def test_source_padding_does_not_change_logits(norm_first):
    model = _small_model(norm_first=norm_first)
    src = torch.randint(1, 11, (1, S))
    tgt_in = torch.randint(1, 13, (1, T))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)  # pad id 0
    torch.testing.assert_close(model(padded, tgt_in), model(src, tgt_in), atol=1e-5, rtol=1e-5)
    # the same sentence padded inside a batch beside a longer one
    batch = torch.cat([padded, torch.randint(1, 11, (1, S + 4))])
    torch.testing.assert_close(model(batch, tgt_in.repeat(2, 1))[:1], model(src, tgt_in), atol=1e-5, rtol=1e-5)
    # and the padding does matter when it is declared as a real token
    assert not torch.allclose(model(padded, tgt_in, src_pad_id=-1), model(src, tgt_in), atol=1e-4)


def test_attention_maps_shapes():
    model = _small_model()
    with pytest.raises(RuntimeError, match="run the model"):
        model.attention_maps()
    model(torch.randint(1, 11, (B, S)), torch.randint(1, 13, (B, T)))
    maps = model.attention_maps()
    assert set(maps) == {"encoder_self", "decoder_self", "cross"}
    for name, shape in (("encoder_self", (B, H, S, S)), ("decoder_self", (B, H, T, T)), ("cross", (B, H, T, S))):
        assert len(maps[name]) == 2
        for w in maps[name]:
            assert w.shape == shape
            assert not w.requires_grad


def test_greedy_decode_runs_to_max_len_without_eos():
    model = _small_model()
    with torch.no_grad():  # the output layer always prefers token 5: <eos> (2) never comes
        model.decoder.lm_head.weight.zero_()
        model.decoder.lm_head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(5), 13).float())
    model.train()
    ids = model.greedy_decode(torch.randint(1, 11, (B, S)), max_len=7, bos_id=1, eos_id=2)
    assert ids.shape == (B, 7)
    assert (ids == 5).all()
    assert model.training  # the mode is restored


# A tiny reversal task: 8 sequences of length 5 over tokens 3..9; 0 = pad, 1 = <bos>, 2 = <eos>.
PAD, BOS, EOS, VOCAB = 0, 1, 2, 10


@pytest.fixture(scope="module")
def reverse_model():
    torch.manual_seed(0)
    src = torch.randint(3, VOCAB, (8, 5))
    target = src.flip(1)
    tgt_in = torch.cat([torch.full((8, 1), BOS), target], dim=1)  # <bos> y_1 .. y_5
    tgt_out = torch.cat([target, torch.full((8, 1), EOS)], dim=1)  # y_1 .. y_5 <eos>
    model = EncoderDecoder(VOCAB, VOCAB, d_model=32, num_heads=4, d_ff=64, num_layers=1, max_len=8, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        logits = model(src, tgt_in)
        loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, src, tgt_out, loss.item()


def test_tiny_model_learns_to_reverse(reverse_model):
    model, src, tgt_out, loss = reverse_model
    assert loss < 0.05
    ids = model.greedy_decode(src, max_len=8, bos_id=BOS, eos_id=EOS)
    assert ids.shape == (8, 6)  # stopped at <eos>, not at max_len
    assert (ids == tgt_out).all(dim=1).float().mean().item() == 1.0


def test_greedy_decode_pads_finished_rows_with_eos(reverse_model):
    model, src, _, _ = reverse_model
    short = src.clone()
    short[1, 3:] = PAD  # a shorter sentence; whatever the model emits, after <eos> comes only <eos>
    ids = model.greedy_decode(short, max_len=8, bos_id=BOS, eos_id=EOS)
    for row in ids:
        hits = (row == EOS).nonzero()
        if len(hits):
            assert (row[hits[0, 0]:] == EOS).all()
    maps = model.attention_maps()
    T_last = ids.shape[1]  # the last step's input: <bos> and all generated tokens but the last
    assert maps["cross"][0].shape == (8, 4, T_last, 5)
    assert maps["decoder_self"][0].shape == (8, 4, T_last, T_last)


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


def test_sequence_longer_than_positional_table_raises():
    model = _small_model()  # max_len=12
    with pytest.raises(ValueError, match=r"src has length L=13.*max_len=12"):
        model(torch.randint(1, 11, (1, 13)), torch.randint(1, 13, (1, 3)))
    with pytest.raises(ValueError, match=r"tgt_in has length L=20.*max_len=12"):
        model(torch.randint(1, 11, (1, 3)), torch.randint(1, 13, (1, 20)))
    with pytest.raises(ValueError, match="max_len=13"):
        model.greedy_decode(torch.randint(1, 11, (1, 3)), max_len=13, bos_id=1, eos_id=2)


def test_bad_token_ids_raise():
    model = _small_model()
    tgt_in = torch.randint(1, 13, (1, 3))
    with pytest.raises(TypeError, match=r"src must hold integer token ids.*float32"):
        model(torch.rand(1, 4), tgt_in)
    with pytest.raises(TypeError, match="tgt_in"):
        model(torch.randint(1, 11, (1, 4)), tgt_in.bool())
    with pytest.raises(ValueError, match=r"src must have shape \(B, L\), got \(4\)"):
        model(torch.randint(1, 11, (4,)), tgt_in)
    with pytest.raises(ValueError, match=r"tgt_in must hold ids in \[0, vocab_size=13\)"):
        model(torch.randint(1, 11, (1, 4)), torch.tensor([[1, 13]]))
    with pytest.raises(ValueError, match="batch size"):
        model(torch.randint(1, 11, (2, 4)), tgt_in)


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
