"""Tests of course_lib.encoder_decoder: the encoder and decoder stacks and the translation model.

The pre-norm stacks with their final LayerNorm are compared with PyTorch's own
``nn.TransformerEncoder`` / ``nn.TransformerDecoder(norm=...)`` given the same weights; the model
is checked for causality, padding invariance, greedy decoding, its attention maps, its input
checks, and that it can learn a tiny task. Sizes are tiny, so the file runs in a few seconds.
"""

import pytest
import torch
from torch import nn

from course_lib.attention import causal_mask, padding_mask
from course_lib.encoder_decoder import Decoder, Encoder, EncoderDecoder
from course_lib.transformer import EncoderLayer, to_torch

ATOL = 1e-5
D, H, D_FF = 16, 4, 32
B, T, S = 2, 6, 5
SRC_LENGTHS = torch.tensor([5, 3])  # the second source ends in two padding positions


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------
# The stacks against torch.nn
# ---------------------------------------------------------------------------

def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
    theirs.weight.copy_(ours.weight)
    theirs.bias.copy_(ours.bias)


def _randomise_norms(module) -> None:
    """LayerNorm weights other than 1 and 0, so a swapped or skipped norm is noticed."""
    with torch.no_grad():
        for norm in (m for m in module.modules() if isinstance(m, nn.LayerNorm)):
            norm.weight.copy_(1 + 0.1 * torch.randn(norm.weight.shape))
            norm.bias.copy_(0.1 * torch.randn(norm.bias.shape))


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
    cached_maps = model.attention_maps()
    assert torch.equal(ids, model.greedy_decode(short, max_len=8, bos_id=BOS, eos_id=EOS, use_cache=False))
    for kind, layers in model.attention_maps().items():  # the cache keeps every step's row: the same maps
        for got, expected in zip(cached_maps[kind], layers):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    for row in ids:
        hits = (row == EOS).nonzero()
        if len(hits):
            assert (row[hits[0, 0]:] == EOS).all()
    maps = model.attention_maps()
    T_last = ids.shape[1]  # the last step's input: <bos> and all generated tokens but the last
    assert maps["cross"][0].shape == (8, 4, T_last, 5)
    assert maps["decoder_self"][0].shape == (8, 4, T_last, T_last)


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


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------

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


def test_encode_decode_and_greedy_decode_check_their_inputs():
    model = _small_model()  # max_len=12, vocabularies of 11 and 13
    with pytest.raises(TypeError, match=r"^src must hold integer token ids"):
        model.encode(torch.rand(1, 4))
    memory, src_mask = model.encode(torch.randint(1, 11, (B, S)))
    with pytest.raises(ValueError, match=r"^tgt_in must hold ids in \[0, vocab_size=13\)"):
        model.decode(torch.tensor([[1, 13]] * B), memory, src_mask)
    with pytest.raises(ValueError, match="^memory must have the batch size of tgt_in"):
        model.decode(torch.ones(B + 1, 3, dtype=torch.long), memory, src_mask)
    with pytest.raises(ValueError, match=r"^src_mask must be broadcastable to \(B, h, T, S\)"):
        model.decode(torch.ones(B, 3, dtype=torch.long), memory, src_mask[..., :-1])
    with pytest.raises(ValueError, match="^max_len must be a positive int"):
        model.greedy_decode(torch.randint(1, 11, (B, S)), max_len=0, bos_id=1, eos_id=2)
    with pytest.raises(ValueError, match=r"^bos_id and eos_id must hold ids in \[0, vocab_size=13\)"):
        model.greedy_decode(torch.randint(1, 11, (B, S)), max_len=5, bos_id=1, eos_id=13)
    with pytest.raises(ValueError, match="^src has length L=13, more than max_len=12"):
        model.greedy_decode(torch.randint(1, 11, (B, 13)), max_len=5, bos_id=1, eos_id=2)
    with pytest.raises(ValueError, match=r"^ids must hold ids in \[0, vocab_size=11\)"):
        model.encoder.embedding(torch.tensor([[11]]))
    with pytest.raises(ValueError, match=r"^src must hold ids in \[0, vocab_size=11\)"):
        model.encoder.embedding(torch.tensor([[11]]), "src")
