"""Tests for course_lib.exercises: the engine (registry, check / hint / solution, OutputChecker).

The tests of each notebook's exercises are in tests/test_exercises_<notebook module>.py;
tests/test_exercise_solutions.py runs every registered solution (and the library's version).
"""

import pytest
import torch

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


# ---------------------------------------------------------------------------
# Registered exercises and registered mistakes
# ---------------------------------------------------------------------------


def test_the_exercises_are_registered_in_notebook_order():
    assert exercise_names() == [
        SOFT, SDPA, "key_value_attention", "split_heads", "multi_head_self_attention",          # 01
        "layer_norm", "add_and_norm", "positional_encoding", CAUSAL, "padding_mask",            # 02
        "gpt_combined_loss", "lm_inputs_and_targets", "next_token_distribution", "last_token_states",  # 03
        "mlm_masking", "bert_input", "wordpiece",                                               # 04
        "folder_dataset", "pad_collate", "training_step", "hwc_to_chw",                         # 05
        "collator_setting",                                                                     # 06
    ]
    assert len(exercise_names()) == 22


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


def test_cases_are_deterministic():
    a = get_exercise(SOFT).checker.cases()
    b = get_exercise(SOFT).checker.cases()
    for ca, cb in zip(a, b):
        for x, y in zip(ca.args, cb.args):
            assert torch.equal(x, y)


# ---------------------------------------------------------------------------
# check / hint / solution API and the registry
# ---------------------------------------------------------------------------


def test_unknown_name_raises_value_error_listing_names():
    with pytest.raises(ValueError) as info:
        check("soft_atention", get_exercise(SOFT).load_solution())
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
        check(SOFT, get_exercise(SOFT).load_solution()(H, q))


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


def test_a_verdict_is_truthy_and_shows_nothing_in_a_notebook(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    right, wrong = check(SOFT, get_exercise(SOFT).load_solution()), check(SOFT, lambda H, q: H.sum(0))
    assert right and not wrong
    # A cell ending in check(...) hands its value to the display formatter; a kernel sends an
    # Out[] only when the formatter returns some data.
    data, _ = InteractiveShell.instance().display_formatter.format(wrong)
    assert data == {}
    assert InteractiveShell.instance().display_formatter.format(False)[0] == {"text/plain": "False"}
