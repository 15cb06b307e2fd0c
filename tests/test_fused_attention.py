"""The fused attention kernel (``need_weights=False``) computes what the explicit path computes.

``MultiHeadAttention`` without weights calls ``torch.nn.functional.scaled_dot_product_attention``;
the layers use it in training mode. Both paths must give the same outputs and the same gradients
(eval mode, and training mode with dropout 0), including for query rows whose keys are all masked
(zeros, finite gradients), and every model built on the layers must train the same on both.
"""

import pytest
import torch

from course_lib.attention import MultiHeadAttention, causal_mask, padding_mask
from course_lib.bert import BertConfig, BertForPreTraining
from course_lib.encoder_decoder import EncoderDecoder
from course_lib.gpt import GPT, GPTConfig
from course_lib.transformer import DecoderLayer, EncoderLayer, set_need_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

B, T, S, D, H = 3, 6, 5, 16, 4


def _masks():
    """name -> mask for (B, h, T, S) scores, True = may attend; the last two hide every key of some rows."""
    ids = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 0, 0], [1, 0, 0, 0, 0]])
    rows = torch.ones(B, 1, T, S, dtype=torch.bool)
    rows[0, 0, 2] = False  # query 2 of sequence 0 may attend to nothing
    return {
        "none": None,
        "padding (B, 1, 1, S)": padding_mask(ids, 0),
        "per head (B, h, T, S)": torch.rand(B, H, T, S) > 0.3,
        "empty rows": rows,
        "all padding": padding_mask(torch.zeros(B, S, dtype=torch.long), 0),
    }


def _both_paths(mha, query, memory, mask):
    """Outputs and gradients (inputs and parameters) of the explicit and the fused path."""
    results = []
    for need_weights in (True, False):
        mha.zero_grad()
        q = query.clone().requires_grad_()
        m = memory.clone().requires_grad_()
        out, weights = mha(q, m, m, mask, need_weights=need_weights)
        assert (weights is None) == (not need_weights)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [q.grad, m.grad] + [p.grad.clone() for p in mha.parameters()]
        results.append((out.detach(), grads))
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("mask_name", list(_masks()))
def test_fused_and_explicit_paths_give_the_same_output_and_gradients(mask_name, training, dtype):
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H, dropout=0.0).to(dtype).train(training)
    query, memory = torch.randn(B, T, D, dtype=dtype), torch.randn(B, S, D, dtype=dtype)
    mask = _masks()[mask_name]
    (out_e, grads_e), (out_f, grads_f) = _both_paths(mha, query, memory, mask)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(out_f, out_e, **tol)
    for g_f, g_e in zip(grads_f, grads_e):
        assert torch.isfinite(g_f).all()
        torch.testing.assert_close(g_f, g_e, **tol)
    if mask is not None:  # a query that may attend to nothing gets context 0: the output is W_o's bias alone
        empty = ~mask.expand(B, H, T, S).any(-1)[:, 0]  # (B, T); every head is masked alike here except "per head"
        if mask_name != "per head (B, h, T, S)" and empty.any():
            torch.testing.assert_close(out_f[empty], mha.w_o.bias.detach().expand_as(out_f[empty]))


def test_self_attention_with_a_causal_mask_and_empty_axes():
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H).eval()
    x = torch.randn(B, T, D)
    for mask in (causal_mask(T), causal_mask(T)[None, None] & padding_mask(torch.ones(B, T, dtype=torch.long), 0)):
        explicit, _ = mha(x, x, x, mask)
        fused, none = mha(x, x, x, mask, need_weights=False)
        assert none is None
        torch.testing.assert_close(fused, explicit, atol=1e-6, rtol=1e-5)
    for q, kv in ((x[:0], x[:0]), (x[:, :0], x), (x, x[:, :0])):  # B = 0, Tq = 0, Tk = 0 (zero context)
        explicit, _ = mha(q, kv, kv)
        fused, _ = mha(q, kv, kv, need_weights=False)
        assert fused.shape == explicit.shape
        torch.testing.assert_close(fused, explicit)


def test_fused_path_applies_dropout_in_training_only():
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H, dropout=0.5)
    x = torch.randn(B, T, D)
    mha.eval()
    reference, _ = mha(x, x, x, need_weights=False)
    mha.train()
    dropped, _ = mha(x, x, x, need_weights=False)
    assert not torch.allclose(dropped, reference, atol=1e-3)
    torch.manual_seed(1)
    again_a, _ = mha(x, x, x, need_weights=False)
    torch.manual_seed(1)
    again_b, _ = mha(x, x, x, need_weights=False)
    torch.testing.assert_close(again_a, again_b)  # the global seed makes the dropout reproducible


@pytest.mark.parametrize("norm_first", [False, True])
def test_layers_in_training_use_the_fused_path_with_the_same_numbers(norm_first):
    torch.manual_seed(0)
    enc = EncoderLayer(D, H, 32, dropout=0.0, norm_first=norm_first).train()
    dec = DecoderLayer(D, H, 32, dropout=0.0, norm_first=norm_first).train()
    x, memory = torch.randn(B, T, D), torch.randn(B, S, D)
    src_mask = padding_mask(torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]), 0)
    runs = []
    for need_weights in (None, True):  # None in training: fused, nothing kept; True: explicit, weights kept
        set_need_weights(enc, need_weights)
        set_need_weights(dec, need_weights)
        enc.zero_grad()
        dec.zero_grad()
        out = dec(enc(x, causal_mask(T)), memory, src_mask, causal_mask(T))
        out.pow(2).mean().backward()
        kept = [enc.attn_weights, dec.self_attn_weights, dec.cross_attn_weights]
        assert all((w is None) == (need_weights is None) for w in kept)
        runs.append((out.detach(), [p.grad.clone() for p in [*enc.parameters(), *dec.parameters()]]))
    (out_f, grads_f), (out_e, grads_e) = runs
    torch.testing.assert_close(out_f, out_e, atol=1e-5, rtol=1e-4)
    for g_f, g_e in zip(grads_f, grads_e):
        torch.testing.assert_close(g_f, g_e, atol=1e-5, rtol=1e-4)


def _train_steps(model, loss_fn, steps=3):
    """Loss after a few SGD steps: the same on both paths, to float rounding."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = loss_fn(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


@pytest.mark.parametrize("which", ["transformer", "gpt", "bert"])
def test_every_model_trains_the_same_on_both_paths(which):
    ids = torch.randint(3, 20, (4, 8))
    if which == "transformer":
        def make():
            return EncoderDecoder(20, 20, d_model=D, num_heads=H, d_ff=32, num_layers=2, max_len=16, dropout=0.0)

        def loss_fn(m):
            return torch.nn.functional.cross_entropy(m(ids, ids).flatten(0, 1), ids.flatten())
    elif which == "gpt":
        def make():
            return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=H, n_embd=D))

        def loss_fn(m):
            return m(ids[:, :-1], ids[:, 1:])[1]
    else:
        config = BertConfig(vocab_size=20, hidden_size=D, num_hidden_layers=2, num_attention_heads=H,
                            intermediate_size=32, max_position_embeddings=8, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)

        def make():
            return BertForPreTraining(config)

        def loss_fn(m):
            labels = ids.masked_fill(torch.arange(8) % 3 != 0, -100)
            return m(ids, attention_mask=(ids > 4).long(), mlm_labels=labels, nsp_labels=torch.tensor([0, 1, 0, 1]))[2]
    losses = []
    for need_weights in (None, True):
        torch.manual_seed(0)
        model = set_need_weights(make(), need_weights).train()
        losses.append(_train_steps(model, loss_fn))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4, abs=1e-5)
