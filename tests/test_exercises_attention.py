"""Tests for the exercises of notebook 01 (course_lib.exercises.attention):
soft_attention and scaled_dot_product_attention.

Every classic mistake is written out as a separate wrong implementation, the way a
learner would write it, and must be rejected with its specific diagnosis.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.exercises import check, get_exercise

SOFT = "soft_attention"
SDPA = "scaled_dot_product_attention"


pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:The use of `x.T`"),  # the learner's k.T on batched inputs
]


def run(name, fn, capsys):
    """check() and its printed text."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


# ---------------------------------------------------------------------------
# soft_attention
# ---------------------------------------------------------------------------


def soft_alternative(H, q):
    """Correct, written differently from the reference: explicit stable softmax."""
    scores = (H * q).sum(dim=1)
    e = torch.exp(scores - scores.max())
    a = e / e.sum()
    return a, (a[:, None] * H).sum(dim=0)


def soft_no_softmax(H, q):
    a = (H * q).sum(dim=1)
    return a, (a[:, None] * H).sum(dim=0)


def soft_sum_no_exp(H, q):
    s = H @ q
    a = s / torch.sum(s)
    return a, a @ H


def soft_context_dim1(H, q):
    a = torch.softmax(H @ q, dim=0)
    return a, (a.unsqueeze(1) * H).sum(dim=1)


def soft_context_columns(H, q):
    a = torch.softmax(H @ q, dim=0)
    return a, (a * H).sum(dim=0)  # broadcasts a over the columns


def soft_mean(H, q):
    return torch.softmax(H @ q, dim=0), H.mean(dim=0)


def soft_scaled(H, q):
    a = F.softmax(H @ q / q.shape[0] ** 0.5, dim=-1)
    return a, a @ H


def soft_unstable(H, q):
    e = torch.exp(H @ q)
    a = e / e.sum()
    return a, a @ H


def test_soft_alternative_passes(capsys):
    ok, out = run(SOFT, soft_alternative, capsys)
    assert ok and out.startswith("✅")


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (soft_no_softmax, "softmax is missing"),
        (soft_sum_no_exp, "without exp"),
        (soft_context_dim1, "wrong axis"),
        (soft_context_columns, "wrong axis"),
        (soft_mean, "ignores the weights"),
        (soft_scaled, "plain dot-product scores"),
        (soft_unstable, "overflows"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_soft_classic_mistakes(fn, phrase, capsys):
    ok, out = run(SOFT, fn, capsys)
    assert ok is False
    first = out.splitlines()[0]
    assert first.startswith(f"❌ {SOFT}:")
    assert phrase in first
    assert f'hint("{SOFT}")' in out
    assert len(out.splitlines()) <= 4


def test_soft_wrong_axis_reports_both_shapes(capsys):
    _, out = run(SOFT, soft_context_dim1, capsys)
    assert "expected context of shape (4,), got (5,)" in out


def test_soft_unstable_tells_to_subtract_max(capsys):
    _, out = run(SOFT, soft_unstable, capsys)
    assert "Subtract the max" in out and "torch.softmax" in out
    assert "got nan" in out


def test_soft_scaled_mentions_next_exercise(capsys):
    _, out = run(SOFT, soft_scaled, capsys)
    assert "next exercise" in out


def test_soft_wrong_shape_is_reported_with_both_shapes(capsys):
    def fn(H, q):
        a = torch.softmax(H @ q, dim=0)
        return a, (a @ H).unsqueeze(1)

    ok, out = run(SOFT, fn, capsys)
    assert ok is False
    assert "wrong shape for context" in out
    assert "expected context of shape (4,), got (4, 1)" in out


def test_soft_starter_is_not_attempted(capsys):
    def my_soft_attention(H, q):
        raise NotImplementedError  # your code here

    ok, out = run(SOFT, my_soft_attention, capsys)
    assert ok is False
    assert out.startswith(f"⏳ {SOFT}: not attempted yet — ")
    assert out.count("\n") == 1


def test_soft_learner_exception_is_reported(capsys):
    def fn(H, q):
        raise RuntimeError("boom")

    ok, out = run(SOFT, fn, capsys)
    assert ok is False
    assert out.splitlines()[0] == f"❌ {SOFT}: your function raised RuntimeError: boom"
    assert "raise RuntimeError" in out  # the learner's line that raised


def test_soft_multiline_exception_stays_on_one_line(capsys):
    message = "\n".join(["first line", "second line"])

    def fn(H, q):
        raise ValueError(message)

    _, out = run(SOFT, fn, capsys)
    assert "ValueError: first line" in out
    assert "second line" not in out


def test_soft_returning_none(capsys):
    def fn(H, q):
        a = torch.softmax(H @ q, dim=0)  # noqa: F841  (forgot the return)

    ok, out = run(SOFT, fn, capsys)
    assert ok is False
    assert "returned None" in out and "return a, context" in out


def test_soft_returning_one_tensor(capsys):
    ok, out = run(SOFT, lambda H, q: torch.softmax(H @ q, dim=0) @ H, capsys)
    assert ok is False
    assert "expected a tuple (a, context), got a Tensor" in out


def test_soft_returning_non_tensors(capsys):
    def fn(H, q):
        a = torch.softmax(H @ q, dim=0)
        return a.numpy(), (a @ H).tolist()

    ok, out = run(SOFT, fn, capsys)
    assert ok is False
    assert "expected a to be a torch.Tensor, got ndarray" in out


def test_soft_swapped_outputs(capsys):
    def fn(H, q):
        a = torch.softmax(H @ q, dim=0)
        return a @ H, a

    ok, out = run(SOFT, fn, capsys)
    assert ok is False
    assert "wrong order" in out


def test_soft_float64_result_for_float32_input_is_accepted(capsys):
    def fn(H, q):
        H, q = H.double(), q.double()
        a = torch.softmax(H @ q, dim=0)
        return a, a @ H

    ok, _ = run(SOFT, fn, capsys)
    assert ok is True


def test_soft_output_is_deterministic(capsys):
    _, first = run(SOFT, soft_mean, capsys)
    _, second = run(SOFT, soft_mean, capsys)
    assert first == second


# ---------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------


def sdpa_alternative(q, k, v, mask=None):
    """Correct, written differently: einsum, mT, torch.where with a large negative number."""
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(-1e9, dtype=scores.dtype))
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights


def sdpa_alternative_mT(q, k, v, mask=None):
    scores = q @ k.mT / math.sqrt(k.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask == 0, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def sdpa_no_scale(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2))
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def sdpa_divide_by_dk(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def sdpa_softmax_dim_minus2(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-2)
    return weights @ v, weights


def sdpa_softmax_dim1(q, k, v, mask=None):
    """Works for 2-D inputs only: dim=1 is the keys axis there, the queries axis in 3-D."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=1)
    return weights @ v, weights


def sdpa_mask_ignored(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v, weights


def sdpa_mask_inverted(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = torch.where(mask, torch.tensor(float("-inf")), scores)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def sdpa_mask_inverted_large_negative(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def sdpa_mask_after_softmax(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if mask is not None:
        weights = weights * mask.float()
    return weights @ v, weights


def sdpa_k_T(q, k, v, mask=None):
    scores = q @ k.T / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def sdpa_k_t(q, k, v, mask=None):
    scores = torch.matmul(q, k.t()) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def test_sdpa_registered_solution_matches_torch():
    fn = get_exercise(SDPA).load_solution()
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 4, 8, generator=g) for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    out, w = fn(q, k, v, mask)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 4))


@pytest.mark.parametrize("fn", [sdpa_alternative, sdpa_alternative_mT], ids=lambda f: f.__name__)
def test_sdpa_alternatives_pass(fn, capsys):
    ok, out = run(SDPA, fn, capsys)
    assert ok and out.startswith("✅")


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (sdpa_no_scale, "missing the 1/√d_k scaling"),
        (sdpa_divide_by_dk, "divided by d_k instead of √d_k"),
        (sdpa_softmax_dim_minus2, "wrong axis"),
        (sdpa_softmax_dim1, "wrong axis"),
        (sdpa_mask_ignored, "mask is ignored"),
        (sdpa_mask_inverted, "mask is inverted"),
        (sdpa_mask_inverted_large_negative, "mask is inverted"),
        (sdpa_mask_after_softmax, "after the softmax"),
        (sdpa_k_T, "transposed over the wrong dimensions"),
        (sdpa_k_t, "transposed over the wrong dimensions"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_sdpa_classic_mistakes(fn, phrase, capsys):
    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    first = out.splitlines()[0]
    assert first.startswith(f"❌ {SDPA}:")
    assert phrase in first
    assert f'hint("{SDPA}")' in out
    assert len(out.splitlines()) <= 4


@pytest.mark.parametrize("fn", [sdpa_k_T, sdpa_k_t], ids=lambda f: f.__name__)
def test_sdpa_transpose_mistake_explains_transpose(fn, capsys):
    _, out = run(SDPA, fn, capsys)
    assert "k.transpose(-2, -1)" in out
    assert "raised RuntimeError" in out  # the learner's exception is shown
    assert "On input q (2, 4, 8)" in out  # the first batched input


def test_sdpa_softmax_dim1_says_dim_minus_1(capsys):
    _, out = run(SDPA, sdpa_softmax_dim1, capsys)
    assert "dim=-1" in out


def test_sdpa_mask_after_softmax_mentions_rows_sum(capsys):
    _, out = run(SDPA, sdpa_mask_after_softmax, capsys)
    assert "sum to 1" in out


def test_sdpa_starter_is_not_attempted(capsys):
    def my_attention(q, k, v, mask=None):
        raise NotImplementedError  # your code here

    ok, out = run(SDPA, my_attention, capsys)
    assert ok is False
    assert out.startswith(f"⏳ {SDPA}: not attempted yet")


def test_sdpa_unfinished_mask_branch(capsys):
    def fn(q, k, v, mask=None):
        if mask is not None:
            raise NotImplementedError  # the mask comes later
        return sdpa_alternative(q, k, v)

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert out.startswith(f"⏳ {SDPA}: not finished yet")
    assert "mask" in out


def test_sdpa_learner_exception_is_reported(capsys):
    def fn(q, k, v, mask=None):
        raise RuntimeError("shapes do not fit")

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert f"❌ {SDPA}: your function raised RuntimeError: shapes do not fit" in out


def test_sdpa_unrelated_exception_is_not_blamed_on_a_later_mistake(capsys):
    """bmm fails on the first (2-D) input; the ignored mask seen later must not hide that."""

    def fn(q, k, v, mask=None):
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        return torch.bmm(weights, v), weights

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert out.splitlines()[0].startswith(f"❌ {SDPA}: your function raised RuntimeError")
    assert "mask" not in out


def test_sdpa_missing_mask_parameter(capsys):
    def fn(q, k, v):
        return sdpa_alternative(q, k, v)

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert "raised TypeError" in out
    assert "first input with a mask" in out


def test_sdpa_wrong_shape_is_reported_with_both_shapes(capsys):
    def fn(q, k, v, mask=None):
        out, w = sdpa_alternative(q, k, v, mask)
        return out.unsqueeze(0), w

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert "expected output of shape (5, 8), got (1, 5, 8)" in out


def test_sdpa_swapped_outputs(capsys):
    def fn(q, k, v, mask=None):
        out, w = sdpa_alternative(q, k, v, mask)
        return w, out

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert "wrong order" in out


def test_sdpa_undiagnosed_value_error_names_an_element(capsys):
    def fn(q, k, v, mask=None):
        out, w = sdpa_alternative(q, k, v, mask)
        return out + 1, w

    ok, out = run(SDPA, fn, capsys)
    assert ok is False
    assert "wrong values in output" in out
    assert "output[0, 0] should be" in out


def test_sdpa_test_masks_leave_every_row_a_key():
    cases = get_exercise(SDPA).checker.cases()
    masks = [c.args[3] for c in cases if len(c.args) == 4]
    assert len(masks) >= 3
    for (q, k, v, mask) in (c.args for c in cases if len(c.args) == 4):
        assert mask.dtype == torch.bool
        full = mask.expand(*q.shape[:-1], k.shape[-2])
        assert full.any(dim=-1).all()
        assert not full.all()  # the mask really blocks something


def test_sdpa_cases_cover_the_required_shapes():
    cases = get_exercise(SDPA).checker.cases()
    dims = {c.args[0].dim() for c in cases}
    assert dims == {2, 3, 4}
    assert any(c.args[0].shape[-2] != c.args[1].shape[-2] for c in cases)  # Tq != Tk
    assert any(c.args[1].shape[-1] != c.args[2].shape[-1] for c in cases)  # d_v != d_k
    assert any(c.args[0].dtype == torch.float64 for c in cases)
