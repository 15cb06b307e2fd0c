"""Tests for notebook 01's newer exercises (course_lib.exercises.attention):
key_value_attention, split_heads and multi_head_self_attention.

Every classic mistake is written out the way a learner would write it, and must be rejected
with its own diagnosis; correct answers written differently from the reference must pass.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.exercises import get_exercise
from exercise_helpers import run_check as run

KV = "key_value_attention"
SPLIT = "split_heads"
MHSA = "multi_head_self_attention"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_named(name, fn, phrase, capsys):
    ok, out = run(name, fn, capsys)
    assert ok is False, out
    first = out.splitlines()[0]
    assert first.startswith(f"❌ {name}:"), out
    assert phrase in first, out
    assert "On input" in out  # the evidence: which input, what was expected
    assert f'hint("{name}")' in out
    assert len(out.splitlines()) <= 4
    return out


# ---------------------------------------------------------------------------
# key_value_attention
# ---------------------------------------------------------------------------


def kv_alternative(K, V, q):
    scores = (K * q).sum(dim=1)
    e = torch.exp(scores - scores.max())
    a = e / e.sum()
    return a, (a[:, None] * V).sum(dim=0)


def kv_einsum(K, V, q):
    a = F.softmax(torch.einsum("nd,d->n", K, q), dim=-1)
    return a, torch.einsum("n,nv->v", a, V)


def kv_context_over_K(K, V, q):
    a = torch.softmax(K @ q, dim=0)
    return a, a @ K


def kv_raw_scores(K, V, q):
    a = K @ q
    return a, a @ V


def kv_exp_not_divided(K, V, q):
    a = torch.exp(K @ q)
    return a, a @ V


def kv_scaled(K, V, q):
    a = torch.softmax(K @ q / math.sqrt(K.shape[1]), dim=0)
    return a, a @ V


def kv_scores_from_values(K, V, q):
    a = torch.softmax(V @ q, dim=0)
    return a, a @ V


def kv_context_wrong_axis(K, V, q):
    a = torch.softmax(K @ q, dim=0)
    return a, (a.unsqueeze(1) * V).sum(dim=1)


def kv_mean_of_values(K, V, q):
    return torch.softmax(K @ q, dim=0), V.mean(dim=0)


def kv_unstable(K, V, q):
    e = torch.exp(K @ q)
    a = e / e.sum()
    return a, a @ V


def kv_swapped(K, V, q):
    a = torch.softmax(K @ q, dim=0)
    return a @ V, a


@pytest.mark.parametrize("fn", [kv_alternative, kv_einsum], ids=lambda f: f.__name__)
def test_kv_alternatives_pass(fn, capsys):
    ok, out = run(KV, fn, capsys)
    assert ok and out.startswith("✅"), out


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (kv_context_over_K, "weighted sum of the keys K"),
        (kv_raw_scores, "not normalised"),
        (kv_exp_not_divided, "not normalised"),
        (kv_scaled, "divided by √d_k"),
        (kv_scores_from_values, "from the values V instead of the keys K"),
        (kv_context_wrong_axis, "wrong axis"),
        (kv_mean_of_values, "ignores the weights"),
        (kv_unstable, "overflows"),
        (kv_swapped, "wrong order"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_kv_classic_mistakes(fn, phrase, capsys):
    assert_named(KV, fn, phrase, capsys)


def test_kv_context_over_K_reports_the_shapes(capsys):
    out = assert_named(KV, kv_context_over_K, "keys K", capsys)
    assert "expected context of shape (3,), got (4,)" in out
    assert "a @ V" in out


def test_kv_scaled_is_told_kindly_and_why(capsys):
    out = assert_named(KV, kv_scaled, "√d_k", capsys)
    assert "good instinct" in out and "plain dot product" in out


# ---------------------------------------------------------------------------
# split_heads
# ---------------------------------------------------------------------------


def split_alternative(x, num_heads):
    B, T, d = x.shape
    return x.reshape(B, T, num_heads, -1).permute(0, 2, 1, 3)


def split_unflatten(x, num_heads):
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2).contiguous()


def split_by_chunks(x, num_heads):
    return torch.stack(x.chunk(num_heads, dim=-1), dim=1)


def split_no_transpose(x, num_heads):
    B, T, d = x.shape
    return x.view(B, num_heads, T, d // num_heads)


def split_interleaved(x, num_heads):
    return torch.stack([x[..., j::num_heads] for j in range(num_heads)], dim=1)


def split_not_moved(x, num_heads):
    B, T, d = x.shape
    return x.view(B, T, num_heads, d // num_heads)


def split_last_two_swapped(x, num_heads):
    B, T, d = x.shape
    return x.view(B, T, num_heads, d // num_heads).permute(0, 2, 3, 1)


def split_h_and_dh_swapped(x, num_heads):
    B, T, d = x.shape
    return x.view(B, T, d // num_heads, num_heads).transpose(1, 2)


def split_merged_into_batch(x, num_heads):
    B, T, d = x.shape
    return x.view(B, T, num_heads, -1).transpose(1, 2).reshape(B * num_heads, T, -1)


@pytest.mark.parametrize("fn", [split_alternative, split_unflatten, split_by_chunks], ids=lambda f: f.__name__)
def test_split_alternatives_pass(fn, capsys):
    ok, out = run(SPLIT, fn, capsys)
    assert ok and out.startswith("✅"), out


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (split_no_transpose, "without the transpose"),
        (split_interleaved, "dealt out in turn"),
        (split_not_moved, "returned (B, T, h, d_head)"),
        (split_last_two_swapped, "returned (B, h, d_head, T)"),
        (split_h_and_dh_swapped, "num_heads and d_head are swapped"),
        (split_merged_into_batch, "merged into the batch axis"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_split_classic_mistakes(fn, phrase, capsys):
    assert_named(SPLIT, fn, phrase, capsys)


def test_split_no_transpose_shows_a_mixed_position(capsys):
    """The counting input makes the evidence readable: 100·t + i, so a wrong t shows at once."""
    out = assert_named(SPLIT, split_no_transpose, "mix positions", capsys)
    assert "heads[0, 0, 1, 0] should be 100, got 4" in out


def test_split_not_moved_reports_both_shapes(capsys):
    out = assert_named(SPLIT, split_not_moved, "(B, T, h, d_head)", capsys)
    assert "expected heads of shape (2, 2, 3, 4), got (2, 3, 2, 4)" in out


def test_split_cases_separate_the_mistakes():
    cases = get_exercise(SPLIT).checker.cases()
    shapes = [(c.args[0].shape, c.args[1]) for c in cases]
    assert any(h > 1 and T != h and d // h != h for (B, T, d), h in shapes)  # every wrong shape differs
    assert any(h == 1 for _, h in shapes) and any(d // h == 1 for (_, _, d), h in shapes)  # the edges
    assert all(d % h == 0 for (_, _, d), h in shapes)


# ---------------------------------------------------------------------------
# multi_head_self_attention
# ---------------------------------------------------------------------------


def mhsa_with_torch_sdpa(X, W_q, W_k, W_v, W_o, num_heads):
    """Correct, written differently: PyTorch's fused attention and unflatten/flatten."""
    def heads(t):
        return t.unflatten(-1, (num_heads, -1)).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(X @ W_q), heads(X @ W_k), heads(X @ W_v))
    return out.transpose(1, 2).flatten(-2) @ W_o


def mhsa_loop_over_heads(X, W_q, W_k, W_v, W_o, num_heads):
    """Correct, written head by head with the notes' ⊕."""
    d_head = X.shape[-1] // num_heads
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    outs = []
    for h in range(num_heads):
        own = slice(h * d_head, (h + 1) * d_head)
        a = torch.softmax(Q[..., own] @ K[..., own].transpose(-2, -1) / d_head ** 0.5, dim=-1)
        outs.append(a @ V[..., own])
    return torch.cat(outs, dim=-1) @ W_o


def _mhsa(X, W_q, W_k, W_v, W_o, num_heads, *, divisor=None, split_heads=True, project=True,
          merge_with_transpose=True, dim=-1):
    B, T, d = X.shape
    h = num_heads if split_heads else 1
    d_head = d // h
    Q, K, V = (t.view(B, T, h, d_head).transpose(1, 2) for t in (X @ W_q, X @ W_k, X @ W_v))
    scale = math.sqrt(d // num_heads) if divisor is None else divisor(d, num_heads)
    out = torch.softmax(Q @ K.transpose(-2, -1) / scale, dim=dim) @ V
    out = out.transpose(1, 2).reshape(B, T, d) if merge_with_transpose else out.reshape(B, T, d)
    return out @ W_o if project else out


def mhsa_no_w_o(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa(X, W_q, W_k, W_v, W_o, num_heads, project=False)


def mhsa_sqrt_d(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa(X, W_q, W_k, W_v, W_o, num_heads, divisor=lambda d, h: math.sqrt(d))


def mhsa_one_head(X, W_q, W_k, W_v, W_o, num_heads):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    a = torch.softmax(Q @ K.transpose(1, 2) / math.sqrt(X.shape[-1]), dim=-1)
    return (a @ V) @ W_o


def mhsa_one_head_fused(X, W_q, W_k, W_v, W_o, num_heads):
    return F.scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v) @ W_o


def mhsa_transposed(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa(X, W_q.T, W_k.T, W_v.T, W_o.T, num_heads)


def mhsa_by_linear(X, W_q, W_k, W_v, W_o, num_heads):
    """The nn.Linear habit: F.linear(x, W) computes x Wᵀ."""
    return F.linear(_mhsa(X, *(W.T for W in (W_q, W_k, W_v)), torch.eye(X.shape[-1], dtype=X.dtype),
                          num_heads), W_o)


def mhsa_no_scaling(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa(X, W_q, W_k, W_v, W_o, num_heads, divisor=lambda d, h: 1.0)


def mhsa_split_without_transpose(X, W_q, W_k, W_v, W_o, num_heads):
    B, T, d = X.shape
    Q, K, V = (t.reshape(B, num_heads, T, d // num_heads) for t in (X @ W_q, X @ W_k, X @ W_v))
    out = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(d // num_heads), dim=-1) @ V
    return out.transpose(1, 2).reshape(B, T, d) @ W_o


def mhsa_join_without_transpose(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa(X, W_q, W_k, W_v, W_o, num_heads, merge_with_transpose=False)


def mhsa_softmax_over_queries(X, W_q, W_k, W_v, W_o, num_heads):
    return _mhsa(X, W_q, W_k, W_v, W_o, num_heads, dim=2)


@pytest.mark.parametrize("fn", [mhsa_with_torch_sdpa, mhsa_loop_over_heads], ids=lambda f: f.__name__)
def test_mhsa_alternatives_pass(fn, capsys):
    ok, out = run(MHSA, fn, capsys)
    assert ok and out.startswith("✅"), out


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (mhsa_no_w_o, "W_o is missing"),
        (mhsa_sqrt_d, "√d instead of √d_head"),
        (mhsa_one_head, "one head, not num_heads"),
        (mhsa_one_head_fused, "one head, not num_heads"),
        (mhsa_transposed, "applied transposed (X Wᵀ)"),
        (mhsa_by_linear, "applied transposed (X Wᵀ)"),
        (mhsa_no_scaling, "missing the 1/√d_head scaling"),
        (mhsa_split_without_transpose, "split without the transpose"),
        (mhsa_join_without_transpose, "joined without the transpose"),
        (mhsa_softmax_over_queries, "wrong axis"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_mhsa_classic_mistakes(fn, phrase, capsys):
    assert_named(MHSA, fn, phrase, capsys)


def test_mhsa_registered_solution_matches_the_library_layer():
    from course_lib.attention import MultiHeadAttention

    torch.manual_seed(3)
    layer = MultiHeadAttention(12, 3, bias=False)
    X = torch.randn(2, 5, 12)
    fn = get_exercise(MHSA).load_solution()
    with torch.no_grad():
        want, _ = layer(X, X, X)
        got = fn(X, layer.w_q.weight.T, layer.w_k.weight.T, layer.w_v.weight.T, layer.w_o.weight.T, 3)
    assert torch.allclose(got, want, atol=1e-5)


def test_mhsa_cases_pin_down_the_details():
    cases = get_exercise(MHSA).checker.cases()
    for X, *Ws, h in (c.args for c in cases):
        d = X.shape[-1]
        assert d % h == 0 and all(W.shape == (d, d) for W in Ws)
        assert all(not torch.allclose(W, W.T) for W in Ws)  # X Wᵀ differs from X W
    assert any(h > 1 for *_, h in (c.args for c in cases))  # √d and one head differ from the right answer
    assert any(c.args[0].dtype == torch.float64 for c in cases)


# ---------------------------------------------------------------------------
# all three: the starter, a learner's exception, None, a wrong type or shape
# ---------------------------------------------------------------------------

def test_starters_are_not_attempted(capsys):
    def my_key_value_attention(K, V, q):
        raise NotImplementedError  # your code here

    def my_split_heads(x, num_heads):
        raise NotImplementedError  # your code here

    def my_multi_head_self_attention(X, W_q, W_k, W_v, W_o, num_heads):
        raise NotImplementedError  # your code here

    for name, fn in ((KV, my_key_value_attention), (SPLIT, my_split_heads), (MHSA, my_multi_head_self_attention)):
        ok, out = run(name, fn, capsys)
        assert ok is False
        assert out.startswith(f"⏳ {name}: not attempted yet — ")
        assert out.count("\n") == 1


@pytest.mark.parametrize("name", [KV, SPLIT, MHSA])
def test_learner_exception_is_reported(name, capsys):
    def fn(*args):
        raise RuntimeError("boom")

    ok, out = run(name, fn, capsys)
    assert ok is False
    assert out.splitlines()[0] == f"❌ {name}: your function raised RuntimeError: boom"


@pytest.mark.parametrize("name", [KV, SPLIT, MHSA])
@pytest.mark.parametrize("value", [None, 3, "text", [1.0, 2.0], (torch.zeros(2),), torch.zeros(1, 2, 3, 4, 5)],
                         ids=["None", "int", "str", "list", "tuple", "5-D tensor"])
def test_strange_results_get_a_verdict(name, value, capsys):
    ok, out = run(name, lambda *args: value, capsys)
    assert ok is False
    assert out.startswith(f"❌ {name}:"), out


def test_kv_returning_none_says_return(capsys):
    def fn(K, V, q):
        a = torch.softmax(K @ q, dim=0)  # noqa: F841  (forgot the return)

    ok, out = run(KV, fn, capsys)
    assert ok is False
    assert "returned None" in out and "return a, context" in out


def test_split_in_place_change_is_reported(capsys):
    def fn(x, num_heads):
        x[..., 0] = 0  # changes the caller's tensor
        B, T, d = x.shape
        return x.view(B, T, num_heads, -1).transpose(1, 2)

    ok, out = run(SPLIT, fn, capsys)
    assert ok is False
    assert out.splitlines()[0].startswith(f"❌ {SPLIT}:")


def test_mhsa_wrong_shape_is_reported(capsys):
    def fn(X, W_q, W_k, W_v, W_o, num_heads):
        return mhsa_loop_over_heads(X, W_q, W_k, W_v, W_o, num_heads)[:, -1]

    ok, out = run(MHSA, fn, capsys)
    assert ok is False
    assert "wrong shape for output" in out and "expected output of shape (2, 5, 8), got (2, 8)" in out


@pytest.mark.parametrize("name", [KV, SPLIT, MHSA])
def test_verdicts_are_deterministic(name, capsys):
    fn = {KV: kv_scaled, SPLIT: split_interleaved, MHSA: mhsa_sqrt_d}[name]
    _, first = run(name, fn, capsys)
    _, second = run(name, fn, capsys)
    assert first == second
