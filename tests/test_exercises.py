"""Tests for course_lib.exercises: check / hint / solution and the registered exercises.

Every classic mistake is written out as a separate wrong implementation, the way a
learner would write it, and must be rejected with its specific diagnosis.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises
from course_lib.exercises import (
    Case,
    Exercise,
    Mistake,
    OutputChecker,
    call_learner,
    check,
    exercise_names,
    get_exercise,
    hint,
    register,
    reset_hints,
    solution,
    unregister,
)

SOFT = "soft_attention"
SDPA = "scaled_dot_product_attention"
CAUSAL = "causal_mask"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _fresh_hints():
    reset_hints()
    yield
    reset_hints()


def run(name, fn, capsys):
    """check() and its printed text."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


def load_solution(name):
    """Execute the registered solution source and return the function it defines."""
    namespace = {}
    exec(get_exercise(name).solution, namespace)
    return namespace[name]


# ---------------------------------------------------------------------------
# Registered solutions and registered mistakes
# ---------------------------------------------------------------------------


def test_the_exercises_are_registered():
    assert SOFT in exercise_names()
    assert SDPA in exercise_names()
    assert CAUSAL in exercise_names()
    assert "gpt_combined_loss" in exercise_names()


@pytest.mark.parametrize("name", [SOFT, SDPA, CAUSAL, "gpt_combined_loss", "mlm_masking", "folder_dataset"])
def test_registered_solution_passes(name, capsys):
    ok, out = run(name, load_solution(name), capsys)
    assert ok is True
    assert out.startswith(f"✅ {name}")
    assert out.count("\n") == 1  # a single line


def _registered_mistakes():
    for name in exercise_names():
        checker = get_exercise(name).checker
        if isinstance(checker, OutputChecker):
            for mistake in checker.mistakes:
                for i, variant in enumerate(mistake.variants):
                    case_id = f"{name}-{mistake.problem[:30]}-{i}"
                    yield pytest.param(name, mistake, variant, id=case_id)


@pytest.mark.filterwarnings("ignore:The use of `x.T`")
@pytest.mark.parametrize("name, mistake, variant", list(_registered_mistakes()))
def test_every_registered_variant_gets_its_own_diagnosis(name, mistake, variant, capsys):
    ok, out = run(name, variant, capsys)
    assert ok is False
    assert out.splitlines()[0] == f"❌ {name}: {mistake.problem}"
    assert mistake.fix in out


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


def test_cases_are_deterministic():
    a = get_exercise(SOFT).checker.cases()
    b = get_exercise(SOFT).checker.cases()
    for ca, cb in zip(a, b):
        for x, y in zip(ca.args, cb.args):
            assert torch.equal(x, y)


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
    fn = load_solution(SDPA)
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


# ---------------------------------------------------------------------------
# causal_mask
# ---------------------------------------------------------------------------


def causal_alternative_compare(T):
    """Correct, written differently: compare the positions, j <= i."""
    i = torch.arange(T)
    return i[None, :] <= i[:, None]


def causal_alternative_from_float(T):
    return torch.tril(torch.ones(T, T)).bool()


def causal_alternative_not_triu(T):
    return ~torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)


def causal_no_diagonal(T):
    return torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-1)


def causal_one_future_position(T):
    return torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=1)


def causal_upper(T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool))


def causal_upper_float(T):
    return torch.ones(T, T).triu()


def causal_inverted_not(T):
    return ~torch.tril(torch.ones(T, T, dtype=torch.bool))


def causal_inverted_triu1(T):
    return torch.triu(torch.ones(T, T), diagonal=1) == 1


def causal_additive(T):
    return torch.triu(torch.full((T, T), float("-inf")), diagonal=1)


def causal_all_ones(T):
    return torch.ones(T, T, dtype=torch.bool)


def causal_float(T):
    return torch.tril(torch.ones(T, T))


def causal_double(T):
    return torch.ones(T, T, dtype=torch.float64).tril()


def causal_int(T):
    return torch.tril(torch.ones(T, T, dtype=torch.int32))


def causal_vector(T):
    return torch.ones(T, dtype=torch.bool)


def causal_batched(T):
    return torch.tril(torch.ones(T, T, dtype=torch.bool)).unsqueeze(0)


def test_causal_solution_is_what_sdpa_uses_for_is_causal():
    mask = load_solution(CAUSAL)(6)
    assert mask.dtype == torch.bool and mask.shape == (6, 6)
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))
    assert torch.allclose(
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
        atol=1e-6,
    )


def test_causal_cases_cover_small_and_larger_T():
    checker = get_exercise(CAUSAL).checker
    Ts = [c.args[0] for c in checker.cases()]
    assert set(Ts) == {1, 2, 5, 8}
    # on the first input every registered mistake gives its own wrong matrix
    first = checker.cases()[0]
    want = checker.reference(*first.args)
    outputs = [(m.problem, v(*first.args)) for m in checker.mistakes for v in m.variants]
    for _, out in outputs:
        assert out.shape != want.shape or out.dtype != want.dtype or not torch.equal(out, want)
    for p1, a in outputs:
        for p2, b in outputs:
            if p1 != p2 and a.shape == b.shape and a.dtype == b.dtype == torch.bool:
                assert not torch.equal(a, b), (p1, p2)


@pytest.mark.parametrize(
    "fn",
    [causal_alternative_compare, causal_alternative_from_float, causal_alternative_not_triu],
    ids=lambda f: f.__name__,
)
def test_causal_alternatives_pass(fn, capsys):
    ok, out = run(CAUSAL, fn, capsys)
    assert ok and out.startswith("✅")


@pytest.mark.parametrize(
    "fn, phrase",
    [
        (causal_no_diagonal, "cannot attend to itself"),
        (causal_one_future_position, "one step into the future"),
        (causal_upper, "upper triangle"),
        (causal_upper_float, "upper triangle"),
        (causal_inverted_not, "mask is inverted"),
        (causal_inverted_triu1, "mask is inverted"),
        (causal_additive, "additive float mask"),
        (causal_all_ones, "blocks nothing"),
        (causal_float, "must be a bool tensor"),
        (causal_double, "must be a bool tensor"),
        (causal_int, "must be a bool tensor"),
        (causal_vector, "wrong shape"),
        (causal_batched, "wrong shape"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_causal_classic_mistakes(fn, phrase, capsys):
    ok, out = run(CAUSAL, fn, capsys)
    assert ok is False
    first = out.splitlines()[0]
    assert first.startswith(f"❌ {CAUSAL}:")
    assert phrase in first
    assert f'hint("{CAUSAL}")' in out
    assert len(out.splitlines()) <= 4


@pytest.mark.parametrize(
    "fn, dtype",
    [
        (causal_float, "torch.float32"),
        (causal_double, "torch.float64"),
        (causal_int, "torch.int32"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_causal_right_pattern_in_wrong_dtype_fails_on_dtype(fn, dtype, capsys):
    ok, out = run(CAUSAL, fn, capsys)
    assert ok is False
    assert f"expected mask of dtype torch.bool, got {dtype}" in out
    assert ".bool()" in out and "dtype=torch.bool" in out


def test_causal_inverted_explains_the_convention(capsys):
    _, out = run(CAUSAL, causal_inverted_not, capsys)
    assert "True means 'may attend'" in out
    assert "scaled_dot_product_attention" in out


@pytest.mark.parametrize("fn, got", [(causal_vector, "(5,)"), (causal_batched, "(1, 5, 5)")],
                         ids=lambda x: getattr(x, "__name__", x))
def test_causal_wrong_shape_reports_both_shapes(fn, got, capsys):
    _, out = run(CAUSAL, fn, capsys)
    assert f"expected mask of shape (5, 5), got {got}" in out


def test_causal_wrong_values_speak_of_true_and_false(capsys):
    _, out = run(CAUSAL, causal_no_diagonal, capsys)
    assert "mask[0, 0] should be True, got False" in out


def test_causal_undiagnosed_mistake_names_an_element(capsys):
    ok, out = run(CAUSAL, lambda T: torch.eye(T, dtype=torch.bool), capsys)
    assert ok is False
    assert out.splitlines()[0] == f"❌ {CAUSAL}: wrong values in mask"
    assert "mask[1, 0] should be True, got False" in out


def test_causal_starter_is_not_attempted(capsys):
    def my_causal_mask(T):
        raise NotImplementedError  # your code here

    ok, out = run(CAUSAL, my_causal_mask, capsys)
    assert ok is False
    assert out.startswith(f"⏳ {CAUSAL}: not attempted yet")
    assert out.count("\n") == 1


def test_causal_learner_exception_is_reported(capsys):
    ok, out = run(CAUSAL, lambda T: torch.tril(T), capsys)
    assert ok is False
    assert out.splitlines()[0].startswith(f"❌ {CAUSAL}: your function raised TypeError")


# ---------------------------------------------------------------------------
# check / hint / solution API and the registry
# ---------------------------------------------------------------------------


def test_unknown_name_raises_value_error_listing_names():
    with pytest.raises(ValueError) as info:
        check("soft_atention", soft_alternative)
    message = str(info.value)
    assert SOFT in message and SDPA in message
    assert "Did you mean 'soft_attention'" in message


def test_unknown_name_in_hint_and_solution():
    with pytest.raises(ValueError):
        hint("nope")
    with pytest.raises(ValueError):
        solution("nope")


def test_non_callable_raises_type_error():
    H, q = torch.randn(3, 2), torch.randn(2)
    with pytest.raises(TypeError, match="no parentheses"):
        check(SOFT, soft_alternative(H, q))


@pytest.mark.parametrize("name", [SOFT, SDPA, CAUSAL])
def test_hint_walks_through_hints_then_repeats_the_last(name, capsys):
    hints = get_exercise(name).hints
    assert 2 <= len(hints) <= 3
    seen = []
    for _ in range(len(hints) + 2):
        capsys.readouterr()
        hint(name)
        seen.append(capsys.readouterr().out)
    for i, text in enumerate(hints):
        assert text in seen[i]
        assert f"Hint {i + 1}/{len(hints)}" in seen[i]
    assert hints[-1] in seen[-1] and hints[-1] in seen[-2]
    reset_hints(name)
    hint(name)
    assert hints[0] in capsys.readouterr().out


def test_hints_use_the_notes_notation():
    soft = " ".join(get_exercise(SOFT).hints)
    for phrase in ["a_i = softmax(s(h_i, q))", "Σ_i a_i·h_i", "torch.softmax"]:
        assert phrase in soft
    sdpa = " ".join(get_exercise(SDPA).hints)
    for phrase in ["softmax(QKᵀ/√d_k)V", "transpose(-2, -1)", "masked_fill", "torch.softmax"]:
        assert phrase in sdpa
    causal = " ".join(get_exercise(CAUSAL).hints)
    for phrase in ["softmax((QKᵀ ⊙ M)/√d_k)V", "torch.tril",
                   "torch.ones(T, T, dtype=torch.bool)", "True = may attend"]:
        assert phrase in causal


@pytest.mark.parametrize("name", [SOFT, SDPA, CAUSAL])
def test_solution_prints_code(name, capsys):
    solution(name)
    out = capsys.readouterr().out
    assert f"def {name}(" in out
    compile(out, "<solution>", "exec")  # what is printed is valid Python


def _double_checker():
    return OutputChecker(
        outputs=("y",),
        reference=lambda x: (2 * x,),
        make_cases=lambda g: [Case("x of shape (3,)", (torch.randn(3, generator=g),))],
        mistakes=[Mistake("y is x squared, not doubled", "use 2 * x", variants=(lambda x: x * x,))],
    )


@pytest.fixture
def double_exercise():
    ex = register(
        Exercise(
            name="double_for_tests",
            signature="double_for_tests(x) -> y",
            checker=_double_checker(),
            hints=("Multiply by 2.",),
            solution="def double_for_tests(x):\n    return 2 * x\n",
        )
    )
    yield ex
    unregister(ex.name)


def test_instructor_can_register_an_exercise(double_exercise, capsys):
    name = double_exercise.name
    assert name in exercise_names()
    ok, out = run(name, lambda x: x + x, capsys)
    assert ok and out.startswith("✅")
    ok, out = run(name, lambda x: x * x, capsys)
    assert not ok and "x squared" in out
    ok, out = run(name, lambda x: x.unsqueeze(0) * 2, capsys)
    assert "expected y of shape (3,), got (1, 3)" in out
    for value in [3.0, None, [1, 2, 3], (torch.ones(3), torch.ones(3))]:
        ok, out = run(name, lambda x, value=value: value, capsys)
        assert ok is False and out.startswith("❌")
    hint(name)
    hint(name)
    assert capsys.readouterr().out.count("Multiply by 2.") == 2


def test_check_dtype_is_opt_in(capsys):
    def reference(x):
        return (x > 0,)

    def make_cases(g):
        return [Case("x of shape (4,)", (torch.tensor([-1.0, 2.0, 0.5, -3.0]),))]

    for check_dtype in (False, True):
        checker = OutputChecker(outputs=("y",), reference=reference, make_cases=make_cases,
                                check_dtype=check_dtype)
        register(Exercise("positive_for_tests", "f(x) -> y", checker, ("Compare with 0.",),
                          "def positive_for_tests(x):\n    return x > 0\n"), replace=True)
        try:
            ok, out = run("positive_for_tests", lambda x: (x > 0).float(), capsys)
            assert ok is (not check_dtype)
            if check_dtype:
                assert out.splitlines()[0] == "❌ positive_for_tests: wrong dtype for y"
                assert "expected y of dtype torch.bool, got torch.float32" in out
        finally:
            unregister("positive_for_tests")


def test_register_refuses_duplicates_and_bad_solutions(double_exercise):
    with pytest.raises(ValueError, match="already registered"):
        register(double_exercise)
    register(double_exercise, replace=True)
    with pytest.raises(ValueError, match="must define"):
        bad_solution = "def f(x):\n    return x\n"  # not named like the exercise
        register(Exercise("other_for_tests", "s", _double_checker(), ("h",), bad_solution))
    with pytest.raises(ValueError, match="identifier"):
        register(Exercise("not an id", "s", _double_checker(), ("h",), "def f(): pass"))
    assert "other_for_tests" not in exercise_names()


def test_custom_checker_with_call_learner(capsys):
    def checker(fn):
        return None if call_learner(fn, 2) == 4 else exercises.Failure("2 + 2 should be 4")

    register(Exercise("plus_two_for_tests", "f(x) -> int", checker, ("Add 2.",),
                      "def plus_two_for_tests(x):\n    return x + 2\n"))
    try:
        assert run("plus_two_for_tests", lambda x: x + 2, capsys)[0] is True
        ok, out = run("plus_two_for_tests", lambda x: x, capsys)
        assert not ok and "2 + 2 should be 4" in out
        ok, out = run("plus_two_for_tests", lambda x: 1 / 0, capsys)
        assert not ok and "ZeroDivisionError" in out
    finally:
        unregister("plus_two_for_tests")


def test_check_does_not_raise_on_odd_return_values(capsys):
    for value in ["hello", (1, 2), (torch.ones(3), torch.ones(4), torch.ones(1)),
                  (torch.ones(5, dtype=torch.complex64), torch.ones(4))]:
        ok, out = run(SOFT, lambda H, q, value=value: value, capsys)
        assert ok is False and out.startswith("❌")



# ---------------------------------------------------------------------------
# mlm_masking: a statistical checker, with its own diagnoses
# ---------------------------------------------------------------------------

def _mlm(select=0.15, mask=0.8, rand=0.1, specials_ok=False, in_place=False, labels_everywhere=False, seeded=True,
         any_replacement=False):
    def fn(input_ids, vocab_size, mask_token_id, special_token_ids, generator):
        g = generator if seeded else None
        special = torch.tensor(list(special_token_ids))
        ordinary = torch.ones_like(input_ids, dtype=torch.bool) if specials_ok else ~torch.isin(input_ids, special)
        selected = ordinary & (torch.rand(input_ids.shape, generator=g) < select)
        labels = input_ids.clone() if labels_everywhere else torch.where(selected, input_ids, -100)
        action = torch.rand(input_ids.shape, generator=g)
        inputs = input_ids if in_place else input_ids.clone()
        randomise = selected & (action >= mask) & (action < mask + rand)
        choices = torch.tensor([i for i in range(vocab_size)
                                if any_replacement or i not in set(special.tolist())])
        picks = choices[torch.randint(len(choices), input_ids.shape, generator=g)]
        inputs[selected & (action < mask)] = mask_token_id
        inputs[randomise] = picks[randomise]
        return inputs, labels
    return fn


@pytest.mark.parametrize("variant, expected", [
    (_mlm(), "✅"),
    (_mlm(select=0.3), "not 15%"),
    (_mlm(mask=1.0, rand=0.0), "not 80 / 10 / 10"),
    (_mlm(mask=0.9, rand=0.1), "not 80 / 10 / 10"),
    (_mlm(specials_ok=True), "special tokens"),
    (_mlm(in_place=True), "changed in place"),
    (_mlm(labels_everywhere=True), "labels must be -100"),
    (_mlm(seeded=False), "same seeded generator"),
    (_mlm(any_replacement=True), "random replacement is a special token"),
])
def test_mlm_masking_checker_names_the_mistake(variant, expected, capsys):
    ok, out = run("mlm_masking", variant, capsys)
    assert ok is (expected == "✅")
    assert expected in out.splitlines()[0]



def test_folder_dataset_checker_names_the_mistakes(capsys):
    import os
    import pathlib

    class CountsFolders:
        def __init__(self, root):
            self.names = os.listdir(root)

        def __len__(self):
            return len(self.names)

        def __getitem__(self, i):
            return "x", 0

    class ReturnsPaths:
        def __init__(self, root):
            root = pathlib.Path(root)
            classes = sorted(p.name for p in root.iterdir() if p.is_dir())
            self.items = [(p, classes.index(p.parent.name)) for c in classes for p in sorted((root / c).glob("*.txt"))]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    class ReverseLabels(ReturnsPaths):
        def __getitem__(self, i):
            path, label = self.items[i]
            return path.read_text().strip(), 2 - label

    for cls, expected in ((CountsFolders, "counts the class folders"), (ReturnsPaths, "holds the file's path"),
                          (ReverseLabels, "sorted folder names")):
        ok, out = run("folder_dataset", cls, capsys)
        assert ok is False and expected in out.splitlines()[0]


def test_a_verdict_is_truthy_and_shows_nothing_in_a_notebook(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    right, wrong = check(SOFT, load_solution(SOFT)), check(SOFT, lambda H, q: H.sum(0))
    assert right and not wrong
    # A cell ending in check(...) hands its value to the display formatter; a kernel sends an
    # Out[] only when the formatter returns some data.
    data, _ = InteractiveShell.instance().display_formatter.format(wrong)
    assert data == {}
    assert InteractiveShell.instance().display_formatter.format(False)[0] == {"text/plain": "False"}
