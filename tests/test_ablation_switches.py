"""The switches that remove one part of the Transformer (notebook 02's ablations) remove exactly that part."""

import pytest
import torch
from torch import nn

from course_lib.encoder_decoder import EncoderDecoder
from course_lib.transformer import DecoderLayer, EncoderLayer, to_torch


def _model(**parts):
    torch.manual_seed(0)
    return EncoderDecoder(20, 20, d_model=16, num_heads=2, d_ff=32, num_layers=2, max_len=16, dropout=0.0,
                          **parts).eval()


def test_without_positions_the_encoder_sees_a_bag_of_words():
    src = torch.tensor([[3, 4, 5, 6, 7]])
    perm = torch.tensor([4, 2, 0, 3, 1])
    for positions, equivariant in ((False, True), (True, False)):
        model = _model(positions=positions)
        memory, _ = model.encode(src)
        shuffled, _ = model.encode(src[:, perm])
        assert torch.allclose(memory[:, perm], shuffled, atol=1e-5) == equivariant


def test_without_the_causal_mask_an_early_position_reads_later_words():
    src, tgt = torch.tensor([[3, 4, 5]]), torch.tensor([[1, 5, 6, 7]])
    changed = tgt.clone()
    changed[0, 3] = 9  # only the last word differs
    for causal, sees_future in ((True, False), (False, True)):
        model = _model(causal=causal)
        first = model(src, tgt)[0, 0]
        assert (not torch.allclose(first, model(src, changed)[0, 0], atol=1e-6)) == sees_future


@pytest.mark.parametrize("norm_first", [False, True])
def test_without_residual_or_norm_a_layer_computes_what_is_left(norm_first):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    plain = EncoderLayer(16, 2, 32, dropout=0.0, norm_first=norm_first, residual=False, layer_norm=False).eval()
    assert isinstance(plain.norm1, nn.Identity)
    attn, _ = plain.self_attn(x, x, x)
    assert torch.allclose(plain(x), plain.ffn(attn), atol=1e-6)  # no Add, no Norm: the sub-layers alone
    no_norm = EncoderLayer(16, 2, 32, dropout=0.0, norm_first=norm_first, layer_norm=False).eval()
    attn, _ = no_norm.self_attn(x, x, x)
    y = x + attn
    assert torch.allclose(no_norm(x), y + no_norm.ffn(y), atol=1e-6)


def test_the_default_layers_are_unchanged_and_the_ablated_ones_have_no_torch_twin():
    model = _model(residual=False)
    assert all(not layer.residual for layer in model.encoder.layers)
    assert _model(layer_norm=False).encoder.final_norm is None
    with pytest.raises(ValueError, match="residual"):
        to_torch(DecoderLayer(16, 2, 32, residual=False))
    with pytest.raises(ValueError, match="LayerNorm"):
        to_torch(EncoderLayer(16, 2, 32, layer_norm=False))


@pytest.mark.parametrize("name", ["positions", "causal", "residual", "layer_norm"])
def test_a_switch_must_be_a_bool(name):
    with pytest.raises(TypeError, match=name):
        EncoderDecoder(20, 20, **{name: "no"})
