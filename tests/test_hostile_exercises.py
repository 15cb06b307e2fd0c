"""Hostile and careless learners against every exercise checker.

``check(name, fn)`` must give a verdict for anything a learner's function can return or raise
(KeyboardInterrupt excepted: it stops the cell), never an exception from the checker itself.
Property-based: for every registered exercise, learner functions built by hypothesis return
arbitrary values (None, numbers, strings, lists, NumPy arrays, tensors of any shape, dtype and
device, tuples and dicts of them, generators) or raise arbitrary exceptions.
"""

import contextlib
import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_lib.exercises import Verdict, check, exercise_names, get_exercise

NAMES = exercise_names()


def verdict_of(name, fn):
    """(verdict, printed text) of check(name, fn), the printing captured."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(name, fn)
    return verdict, out.getvalue()


def assert_wrong(name, fn, expected=None):
    verdict, text = verdict_of(name, fn)
    assert isinstance(verdict, Verdict) and not verdict, text
    first = text.splitlines()[0]
    assert first.startswith(("❌", "⏳")) and name in first, text
    if expected is not None:
        assert expected in text, text
    return text


# ---------------------------------------------------------------------------
# what a learner's function may give back
# ---------------------------------------------------------------------------

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.uint8,
          torch.bool, torch.complex64]


@st.composite
def tensors(draw):
    shape = tuple(draw(st.lists(st.integers(0, 6), max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    fill = draw(st.sampled_from([0, 1, -100, 103, float("nan"), float("inf"), "random"]))
    if fill == "random":
        t = torch.randint(0, 200, shape).to(dtype) if dtype != torch.bool else torch.rand(shape) < 0.5
    elif isinstance(fill, float) and not (dtype.is_floating_point or dtype.is_complex):
        t = torch.zeros(shape, dtype=dtype)
    else:
        t = torch.full(shape, fill, dtype=dtype) if dtype != torch.bool else torch.full(shape, bool(fill))
    kind = draw(st.sampled_from(["plain", "meta", "grad", "sparse", "noncontiguous"]))
    if kind == "meta":
        t = t.to("meta")
    elif kind == "grad" and dtype.is_floating_point:
        t = t.clone().requires_grad_()
    elif kind == "sparse" and t.dim() >= 1 and dtype != torch.bool:
        t = t.to_sparse()
    elif kind == "noncontiguous" and t.dim() == 2:
        t = t.T
    return t


arrays = hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_, np.complex64]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.binary(max_size=8),
    arrays, tensors(), st.just(Ellipsis), st.just(object()), st.just(torch.float32), st.just(print),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner), st.tuples(inner, inner),
                            st.tuples(inner, inner, inner), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)


class LearnerBaseError(BaseException):
    """A BaseException subclass a learner's code might raise (like SystemExit)."""


class BrokenMessage(Exception):
    def __str__(self):
        raise RuntimeError("no message")


EXCEPTIONS = [ValueError("bad"), RuntimeError("shape '[2, 3]' is invalid"), TypeError("x"), IndexError(3),
              KeyError("k"), ZeroDivisionError(), AttributeError("no attr"), StopIteration(), RecursionError(),
              MemoryError(), AssertionError(), SystemExit(1), SystemExit(), GeneratorExit(), LearnerBaseError("b"),
              BrokenMessage(), NotImplementedError(), Exception("x" * 10_000 + "\nsecond line")]


def returning(value):
    def learner(*args, **kwargs):
        return value
    return learner


def raising(exc):
    def learner(*args, **kwargs):
        raise exc
    return learner


def yielding(value):
    def learner(*args, **kwargs):
        yield value
    return learner


learners = st.one_of(
    values.map(returning),
    st.sampled_from(EXCEPTIONS).map(raising),
    values.map(yielding),
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(learner=learners)
def test_any_learner_function_gets_a_verdict_never_an_exception(name, learner):
    assert_wrong(name, learner)


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_still_passes(name):
    verdict, text = verdict_of(name, get_exercise(name).load_solution())
    assert verdict and text.startswith(f"✅ {name}: correct!"), text


@pytest.mark.parametrize("name", NAMES)
def test_keyboard_interrupt_still_stops_the_cell(name):
    with pytest.raises(KeyboardInterrupt):
        verdict_of(name, raising(KeyboardInterrupt()))


# ---------------------------------------------------------------------------
# the probes of the issue, one by one
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.ones((5, 5), dtype=bool), np.tril(np.ones((5, 5), dtype=bool)),
                                   (np.ones(3),), [np.ones(2)]], ids=["ones", "tril", "tuple", "list"])
@pytest.mark.parametrize("name", ["causal_mask", "gpt_combined_loss", "soft_attention"])
def test_a_numpy_array_is_a_wrong_type_not_a_crash(name, value):
    assert_wrong(name, returning(value), "wrong")


@pytest.mark.parametrize("name", [n for n in NAMES if n != "folder_dataset"])
def test_none_for_only_one_of_several_inputs(name):
    solution = get_exercise(name).load_solution()
    calls = []

    def learner(*args):
        calls.append(1)
        return None if len(calls) == 2 else solution(*args)

    assert_wrong(name, learner)


def folder_solution():
    return get_exercise("folder_dataset").load_solution()


@pytest.mark.parametrize("text", [np.array(["a wasp stings"]), None, 3, b"a wasp stings", torch.ones(2), ["x"]],
                         ids=["array", "None", "int", "bytes", "tensor", "list"])
def test_folder_dataset_item_text_of_another_type(text):
    base = folder_solution()

    class Learner(base):
        def __getitem__(self, index):
            real, label = super().__getitem__(index)
            return (text if index == 1 else real), label

    assert_wrong("folder_dataset", Learner, "the texts are not the files' contents")


@pytest.mark.parametrize("label", [np.array([0, 1]), None, "0", torch.ones(3), 0.5], ids=["array", "None", "str",
                                                                                          "tensor", "float"])
def test_folder_dataset_label_of_another_type(label):
    base = folder_solution()

    class Learner(base):
        def __getitem__(self, index):
            text, _ = super().__getitem__(index)
            return text, label

    assert_wrong("folder_dataset", Learner, "labels")


def test_folder_dataset_none_for_one_item_and_no_getitem():
    base = folder_solution()

    class OneNone(base):
        def __getitem__(self, index):
            return None if index == 2 else super().__getitem__(index)

    class NoGetItem:
        def __init__(self, root):
            pass

        def __len__(self):
            return 6

    assert_wrong("folder_dataset", OneNone, "pair (text, label)")
    assert_wrong("folder_dataset", NoGetItem, "__getitem__")


@pytest.mark.parametrize("name", [n for n in NAMES if n != "folder_dataset"])
@pytest.mark.parametrize("how", ["generator", "dict", "meta", "int8", "complex", "sparse"])
def test_results_of_the_wrong_kind(name, how):
    solution = get_exercise(name).load_solution()

    def learner(*args):
        result = solution(*args)
        first = result[0] if isinstance(result, tuple) else result
        if how == "generator":
            return (x for x in (first,))
        if how == "dict":
            return {"result": result}
        if how == "meta":
            return tuple(t.to("meta") for t in result) if isinstance(result, tuple) else result.to("meta")
        if how == "int8":
            return tuple(t.to(torch.int8) for t in result) if isinstance(result, tuple) else result.to(torch.int8)
        if how == "complex":
            return tuple(t.to(torch.complex64) for t in result) if isinstance(result, tuple) else result.to(torch.complex64)
        return tuple(t.to_sparse() for t in result) if isinstance(result, tuple) else result.to_sparse()

    text = verdict_of(name, learner)[1]
    assert text.startswith(("❌", "✅")), text  # an int8 loss may round to the right values: any verdict will do
    assert_wrong(name, learner) if how != "int8" else None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("exc", [SystemExit(2), LearnerBaseError("stop"), GeneratorExit(), BrokenMessage()],
                         ids=["SystemExit", "BaseException", "GeneratorExit", "broken-str"])
def test_base_exceptions_become_a_verdict(name, exc):
    text = assert_wrong(name, raising(exc), "your function raised")
    assert type(exc).__name__ in text


@pytest.mark.parametrize("name", NAMES)
def test_a_learner_who_prints_a_lot_still_gets_the_verdict(name):
    solution = get_exercise(name).load_solution()

    def learner(*args):
        print("debug " * 5_000)
        return solution(*args)

    verdict, text = verdict_of(name, learner)
    assert verdict and f"✅ {name}: correct!" in text


# Exercises whose results are not tensors (a Dataset, lists of tokens, a float): nothing to require grad.
NOT_TENSORS = ("folder_dataset", "bert_input", "wordpiece", "training_step", "collator_setting")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_TENSORS])
def test_results_that_require_grad_are_compared_by_value(name):
    solution = get_exercise(name).load_solution()

    def learner(*args):
        result = solution(*args)
        grad = lambda t: t.detach().clone().requires_grad_() if t.is_floating_point() else t  # noqa: E731
        return tuple(grad(t) for t in result) if isinstance(result, tuple) else grad(result)

    assert bool(verdict_of(name, learner)[0])


@pytest.mark.parametrize("name", [n for n in NAMES if n != "folder_dataset"])
def test_nan_results_are_wrong_values(name):
    solution = get_exercise(name).load_solution()

    def learner(*args):
        result = solution(*args)
        nan = lambda t: torch.full_like(t, float("nan")) if t.is_floating_point() else t.double() * float("nan")  # noqa: E731
        return tuple(nan(t) for t in result) if isinstance(result, tuple) else nan(result)

    assert_wrong(name, learner)


@pytest.mark.parametrize("name, expected", [
    ("soft_attention", "changes its input H in place"),
    ("scaled_dot_product_attention", "changes its input q in place"),
    ("gpt_combined_loss", "changes its input class_logits in place"),
    ("mlm_masking", "changed in place"),
])
def test_a_function_that_changes_its_inputs_in_place_is_wrong(name, expected):
    solution = get_exercise(name).load_solution()

    def learner(*args):
        result = solution(*args)
        args[0].add_(1) if args[0].is_floating_point() else args[0].fill_(0)
        return result

    assert_wrong(name, learner, expected)


# ---------------------------------------------------------------------------
# programming errors in the call itself
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, error", [("nope", ValueError), ("", ValueError), (None, TypeError),
                                         ([1], TypeError), (3, TypeError)])
def test_check_with_a_bad_name(name, error):
    with pytest.raises(error, match=r"\bname\b|unknown exercise"):
        check(name, lambda *a: None)


@pytest.mark.parametrize("fn", [None, 3, "causal_mask", torch.ones(2)], ids=["None", "int", "str", "tensor"])
def test_check_with_something_that_is_not_a_function(fn):
    with pytest.raises(TypeError, match="needs your function itself"):
        check("causal_mask", fn)
