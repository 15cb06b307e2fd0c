"""Tests for the exercise of notebook 02 (course_lib.exercises.transformer): causal_mask.

Every classic mistake is written out as a separate wrong implementation, the way a
learner would write it, and must be rejected with its specific diagnosis.
"""

import pytest
import torch
import torch.nn.functional as F

from course_lib.exercises import check, get_exercise

CAUSAL = "causal_mask"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(name, fn, capsys):
    """check() and its printed text."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


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
    mask = get_exercise(CAUSAL).load_solution()(6)
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


def test_causal_first_hint_warns_that_the_literal_formula_leaks():
    """The notes' softmax((QKᵀ ⊙ M)/√d_k)V leaks taken literally: the hint must say so and give the -inf form."""
    first = get_exercise(CAUSAL).hints[0]
    assert "⊙ M" in first and "leak" in first           # the notes' formula is named, with its warning
    assert "+ M̃" in first and "-inf" in first           # and the form that works
    assert first.index("leak") < first.index("+ M̃")     # the warning comes before the recipe
