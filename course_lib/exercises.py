"""Auto-checked exercises for the course notebooks: ``check``, ``hint``, ``solution``.

In a notebook::

    from course_lib.exercises import check, hint, solution

    def my_soft_attention(H, q):
        raise NotImplementedError  # your code here

    check("soft_attention", my_soft_attention)  # one-line verdict, returns True / False
    hint("soft_attention")                      # the next hint (2-3 per exercise)
    solution("soft_attention")                  # the reference solution's source code

``check`` never raises because of a mistake in the learner's code: an untouched
starter is reported as "not attempted", any other exception is reported in one
line. It raises only for programming errors in the call itself (unknown exercise
name -> ``ValueError``, something that is not a function -> ``TypeError``).

Adding an exercise (for instructors)
------------------------------------
Most exercises are "call the function on a few inputs and compare its outputs with
a reference". :class:`OutputChecker` does all of that; you give it

- ``outputs``: the names of the returned values, e.g. ``("a", "context")``;
- ``reference``: a correct implementation (plain torch code);
- ``make_cases``: a function ``generator -> list[Case]`` that builds the test
  inputs from the seeded ``torch.Generator`` it receives (so checks are
  deterministic);
- ``mistakes``: classic mistakes, each a :class:`Mistake` with one or more wrong
  implementations (``variants``). When the learner's outputs match a variant (and
  not the reference), ``check`` prints that mistake's ``problem`` and ``fix``.
  A mistake that is about the shape of the result, whatever its values, is a
  ``Mistake(..., by_shape=True)``;
- ``check_dtype=True`` when the dtype matters too (e.g. a bool mask): a result
  with the right values but another dtype is then wrong, and a mistake whose
  variant returns the right values in a wrong dtype recognises any wrong dtype.

then registers it::

    register(Exercise(
        name="double",                       # a Python identifier
        signature="double(x) -> y",
        checker=OutputChecker(
            outputs=("y",),
            reference=lambda x: (2 * x,),
            make_cases=lambda g: [Case("x (3,)", (torch.randn(3, generator=g),))],
            mistakes=[Mistake("y is x squared, not doubled", "use 2 * x",
                              variants=(lambda x: (x * x,),))],
        ),
        hints=("Multiply by 2.",),
        solution="def double(x):\\n    return 2 * x\\n",  # must define `def double`
    ))

A checker can also be any callable ``checker(fn) -> Failure | None`` (``None``
means "correct"); call the learner's function through :func:`call_learner` so that
"not attempted" and learner exceptions are reported properly.

The solution source must define a function named like the exercise; the test
suite executes every registered solution and checks that it passes its own
checker, so solutions cannot silently rot.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import io
import math
import traceback
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import torch

__all__ = [
    "Case",
    "Exercise",
    "Failure",
    "LearnerError",
    "Mistake",
    "NotAttempted",
    "OutputChecker",
    "Verdict",
    "call_learner",
    "check",
    "exercise_names",
    "get_exercise",
    "hint",
    "register",
    "reset_hints",
    "solution",
    "unregister",
]

SEED = 20240601  # every built-in checker builds its inputs from this seed
ATOL = 1e-5
RTOL = 1e-4


# ---------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What a checker returns when the learner's function is not correct.

    ``summary`` goes on the verdict line (``❌ <name>: <summary>``); ``details``
    are at most two short extra lines (which input, expected vs got, how to fix).
    """

    summary: str
    details: tuple[str, ...] = ()
    icon: str = "❌"


@dataclass(frozen=True)
class Case:
    """One test input: a short description for messages and the positional args.

    ``note`` is printed when this is the first input the learner's function fails
    and no specific mistake was recognised (e.g. "first input with a mask").
    """

    description: str
    args: tuple
    note: str = ""


@dataclass(frozen=True)
class Mistake:
    """A classic mistake, recognised by comparing the learner with wrong variants.

    Each variant takes the same arguments as the exercise and returns the same
    outputs, computed with this one mistake. The learner "made" the mistake on an
    input when their outputs match a variant's (NaN matching NaN) while the
    variant differs from the reference, or when both raise the same exception.

    With ``by_shape=True`` a variant whose output has a wrong shape is matched by
    that shape alone, whatever the values (e.g. "returned (1, T, T) instead of (T, T)").
    """

    problem: str  # what is wrong, in the learner's words (verdict line)
    fix: str  # how to fix it (one short line)
    variants: tuple[Callable[..., Any], ...] = ()
    by_shape: bool = False


@dataclass(frozen=True)
class Exercise:
    """A registered exercise.

    ``checker(fn)`` returns ``None`` when ``fn`` is correct, else a :class:`Failure`.
    ``solution`` is Python source defining ``def <name>(...)``.
    """

    name: str
    signature: str
    checker: Callable[[Callable], Failure | None]
    hints: tuple[str, ...]
    solution: str


class NotAttempted(Exception):
    """The learner's function still raises ``NotImplementedError`` (untouched starter)."""


class LearnerError(Exception):
    """An exception raised inside the learner's function (kept in ``.original``)."""

    def __init__(self, original: BaseException, fn: Callable):
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original
        self.fn = fn

    def one_line(self) -> str:
        """``"RuntimeError: message"`` with only the first line of the message."""
        text = str(self.original).strip().splitlines()
        message = _shorten(text[0], 100) if text else ""
        name = type(self.original).__name__
        return f"{name}: {message}" if message else name

    def learner_line(self) -> str:
        """The line of the learner's code that raised, or "" if not found."""
        code = getattr(self.fn, "__code__", None)
        if code is None:
            return ""
        for frame in reversed(traceback.extract_tb(self.original.__traceback__)):
            if frame.filename == code.co_filename and frame.line:
                return frame.line.strip()
        return ""


def call_learner(fn: Callable, *args, **kwargs):
    """Call the learner's function, translating its exceptions for :func:`check`.

    ``NotImplementedError`` becomes :class:`NotAttempted`; any other exception
    becomes :class:`LearnerError`.
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted() from exc
    except Exception as exc:  # the learner's code may raise anything
        raise LearnerError(exc, fn) from exc


# ---------------------------------------------------------------------------
# The generic "compare outputs with a reference" checker
# ---------------------------------------------------------------------------


def _shorten(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shape(x: torch.Tensor) -> str:
    return str(tuple(x.shape))


def _clone(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _fmt_item(x: torch.Tensor, index: tuple) -> str:
    """One element for messages: True / False for bool tensors, else a short number."""
    if x.dtype == torch.bool:
        return str(bool(x[index].item()))
    return _fmt(x.detach().to(torch.float64)[index].item())


@dataclass(frozen=True)
class _Outcome:
    """What the learner's function did on one case: returned ``value`` or raised ``error``."""

    value: Any = None
    error: LearnerError | None = None


@dataclass
class OutputChecker:
    """Checks a function by comparing its outputs with ``reference`` on fixed inputs.

    The learner's function must return a tuple of tensors named ``outputs`` (or a
    single tensor when there is one output), with the reference's shapes and
    values (``torch.allclose`` with ``atol``/``rtol``, compared in float64 so both
    float32 and float64 results are accepted). With ``check_dtype=True`` the
    outputs must also have the reference's dtypes (checked after the values).
    """

    outputs: tuple[str, ...]
    reference: Callable[..., tuple]
    make_cases: Callable[[torch.Generator], list[Case]]
    mistakes: Sequence[Mistake] = ()
    seed: int = SEED
    atol: float = ATOL
    rtol: float = RTOL
    check_dtype: bool = False

    def cases(self) -> list[Case]:
        """The test inputs, rebuilt from the fixed seed (identical on every call)."""
        return self.make_cases(torch.Generator().manual_seed(self.seed))

    # -- the check ---------------------------------------------------------

    def __call__(self, fn: Callable) -> Failure | None:
        cases = self.cases()
        wanted = [self._as_tuple(self.reference(*_clone(c.args))) for c in cases]
        first_outcome = None
        for i, case in enumerate(cases):
            try:
                outcome = _Outcome(value=call_learner(fn, *_clone(case.args)))
            except NotAttempted:
                if i == 0:
                    raise
                return Failure(
                    "not finished yet — your function raises NotImplementedError for some inputs",
                    (f"On input {case.description}.",),
                    icon="⏳",
                )
            except LearnerError as err:
                outcome = _Outcome(error=err)
            if self._problem(outcome, wanted[i]) is not None:
                first_outcome = outcome
                break
        else:
            return None

        found = self._diagnose(fn, cases, wanted, i, first_outcome)
        if found is not None:
            mistake, j, outcome_j = found
            return Failure(
                mistake.problem,
                (self._evidence(cases[j], outcome_j, wanted[j]), mistake.fix),
            )
        return self._generic_failure(cases[i], first_outcome, wanted[i])

    # -- comparing ---------------------------------------------------------

    def _as_tuple(self, value):
        """With a single output, the function may return it bare instead of in a tuple.

        A list is then the (wrongly typed) output itself, not a sequence of outputs.
        """
        if len(self.outputs) == 1 and not isinstance(value, tuple):
            return (value,)
        return value

    def _structure_problem(self, value) -> tuple[str, str] | None:
        """(kind, message) when ``value`` is not a tuple of tensors, else None."""
        names = ", ".join(self.outputs)
        n = len(self.outputs)
        if value is None or (n == 1 and value == (None,)):
            ret = f"return {names}"
            return "return", f"your function returned None — did you forget `{ret}`?"
        if n > 1 and not isinstance(value, (tuple, list)):
            return "return", f"expected a tuple ({names}), got a {type(value).__name__}"
        if isinstance(value, (tuple, list)) and len(value) != n:
            return "return", f"expected {n} value(s) ({names}), got {len(value)}"
        for name, got in zip(self.outputs, value):
            if not isinstance(got, torch.Tensor):
                return name, f"expected {name} to be a torch.Tensor, got {type(got).__name__}"
            if got.is_complex():
                return name, f"expected {name} to be a real tensor, got dtype {got.dtype}"
        return None

    def _close(self, got: torch.Tensor, want: torch.Tensor, equal_nan: bool = False) -> bool:
        return got.shape == want.shape and torch.allclose(
            got.detach().to(torch.float64),
            want.detach().to(torch.float64),
            atol=self.atol,
            rtol=self.rtol,
            equal_nan=equal_nan,
        )

    def _problem(self, outcome: _Outcome, wanted: tuple) -> tuple[str, str] | None:
        """(kind, message) describing how ``outcome`` differs from ``wanted``, or None."""
        if outcome.error is not None:
            return "error", f"your function raised {outcome.error.one_line()}"
        value = self._as_tuple(outcome.value)
        problem = self._structure_problem(value)
        if problem is not None:
            return problem
        for name, got, want in zip(self.outputs, value, wanted):
            if got.shape != want.shape:
                return name, f"expected {name} of shape {_shape(want)}, got {_shape(got)}"
        for name, got, want in zip(self.outputs, value, wanted):
            if not self._close(got, want):
                g = got.detach().to(torch.float64)
                w = want.detach().to(torch.float64)
                bad = ~torch.isclose(g, w, atol=self.atol, rtol=self.rtol)
                index = tuple(int(k) for k in bad.nonzero()[0])
                where = f"{name}[{', '.join(map(str, index))}]"
                expected, got_value = _fmt_item(want, index), _fmt_item(got, index)
                return name, f"{where} should be {expected}, got {got_value}"
        if self.check_dtype:
            for name, got, want in zip(self.outputs, value, wanted):
                if got.dtype != want.dtype:
                    return name, f"expected {name} of dtype {want.dtype}, got {got.dtype}"
        return None

    def _matches(
        self, outcome: _Outcome, variant_outcome: _Outcome, wanted: tuple, by_shape: bool = False
    ) -> bool:
        """True when the learner's outcome reproduces a (wrong) variant's outcome.

        Values are compared whatever the dtypes, except for a variant with the right
        values in a wrong dtype (``check_dtype``): the learner then matches with the
        same values in any wrong dtype. With ``by_shape``, a variant with a wrong
        shape is matched by the shapes alone.
        """
        if outcome.error is not None or variant_outcome.error is not None:
            a, b = outcome.error, variant_outcome.error
            return (
                a is not None
                and b is not None
                and type(a.original) is type(b.original)
                and str(a.original) == str(b.original)
            )
        got = self._as_tuple(outcome.value)
        bad = self._as_tuple(variant_outcome.value)
        if self._structure_problem(got) or self._structure_problem(bad):
            return False
        if self._problem(variant_outcome, wanted) is None:  # not a mistake here
            return False
        if by_shape and any(b.shape != w.shape for b, w in zip(bad, wanted)):
            return all(g.shape == b.shape for g, b in zip(got, bad))
        if not all(self._close(g, b, equal_nan=True) for g, b in zip(got, bad)):
            return False
        if self.check_dtype:
            for g, b, w in zip(got, bad, wanted):
                if b.dtype != w.dtype and g.dtype == w.dtype:
                    return False
        return True

    # -- diagnosing --------------------------------------------------------

    def _all_mistakes(self) -> list[Mistake]:
        mistakes = list(self.mistakes)
        if len(self.outputs) == 2:

            def swapped(*args):
                first, second = self._as_tuple(self.reference(*args))
                return second, first

            names = ", ".join(self.outputs)
            mistakes.append(
                Mistake(
                    "the outputs are in the wrong order",
                    f"return ({names}) in this order.",
                    variants=(swapped,),
                )
            )
        return mistakes

    def _run_variant(self, variant, case: Case) -> _Outcome:
        try:
            with warnings.catch_warnings():  # e.g. the k.T deprecation warning
                warnings.simplefilter("ignore")
                return _Outcome(value=variant(*_clone(case.args)))
        except Exception as exc:
            return _Outcome(error=LearnerError(exc, variant))

    def _diagnose(self, fn, cases, wanted, first, first_outcome):
        """Find a known mistake on the first failing case, else on a later case.

        A mistake seen only on a later case must also explain the first failure
        (its variant is wrong there too), so that e.g. an unrelated exception on
        the first input is not blamed on a mask problem seen later.
        Returns (mistake, case index, learner outcome on that case) or None.
        """
        mistakes = self._all_mistakes()
        for j in range(first, len(cases)):
            if j == first:
                outcome = first_outcome
            else:
                # the learner's prints were shown once already; keep the output short
                with contextlib.redirect_stdout(io.StringIO()):
                    try:
                        outcome = _Outcome(value=call_learner(fn, *_clone(cases[j].args)))
                    except NotAttempted:
                        continue
                    except LearnerError as err:
                        outcome = _Outcome(error=err)
            if self._problem(outcome, wanted[j]) is None:
                continue
            for mistake in mistakes:
                for variant in mistake.variants:
                    variant_outcome = self._run_variant(variant, cases[j])
                    if not self._matches(outcome, variant_outcome, wanted[j], mistake.by_shape):
                        continue
                    if j == first or self._problem(
                        self._run_variant(variant, cases[first]), wanted[first]
                    ):
                        return mistake, j, outcome
        return None

    def _evidence(self, case: Case, outcome: _Outcome, wanted: tuple) -> str:
        _, message = self._problem(outcome, wanted)
        line = outcome.error.learner_line() if outcome.error is not None else ""
        at = f" (at `{_shorten(line, 60)}`)" if line else ""
        return f"On input {case.description}: {message}{at}."

    def _generic_failure(self, case: Case, outcome: _Outcome, wanted: tuple) -> Failure:
        kind, message = self._problem(outcome, wanted)
        note = (case.note,) if case.note else ()
        if kind == "error":
            line = outcome.error.learner_line()
            at = f" at `{_shorten(line, 60)}`" if line else ""
            return Failure(message, (f"On input {case.description}{at}.",) + note)
        if kind == "return":
            summary = "wrong return value"
        elif message.startswith("expected") and " to be a " in message:
            summary = f"wrong type for {kind}"
        elif message.startswith("expected") and " of dtype " in message:
            summary = f"wrong dtype for {kind}"
        elif message.startswith("expected"):
            summary = f"wrong shape for {kind}"
        else:
            summary = f"wrong values in {kind}"
        return Failure(summary, (f"On input {case.description}: {message}.",) + note)


# ---------------------------------------------------------------------------
# Registry and the notebook API
# ---------------------------------------------------------------------------

_REGISTRY: dict[str, Exercise] = {}
_HINTS_SHOWN: dict[str, int] = {}


def _defined_functions(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def register(exercise: Exercise, *, replace: bool = False) -> Exercise:
    """Add ``exercise`` to the registry and return it.

    Checks that the name is a Python identifier, that there is at least one hint,
    and that ``exercise.solution`` parses and defines ``def <name>`` (or ``class <name>``). Registering a
    name twice raises ``ValueError`` unless ``replace=True``.
    """
    if not exercise.name.isidentifier():
        raise ValueError(f"exercise name must be a Python identifier, got {exercise.name!r}")
    if exercise.name in _REGISTRY and not replace:
        raise ValueError(
            f"exercise {exercise.name!r} is already registered (pass replace=True to replace it)"
        )
    if not exercise.hints:
        raise ValueError(f"exercise {exercise.name!r} needs at least one hint")
    if not callable(exercise.checker):
        raise TypeError(f"exercise {exercise.name!r}: checker must be callable")
    if exercise.name not in _defined_functions(exercise.solution):
        raise ValueError(
            f"the solution of {exercise.name!r} must define a function `def {exercise.name}(...)` "
            f"(or a class `class {exercise.name}`)"
        )
    _REGISTRY[exercise.name] = exercise
    _HINTS_SHOWN.pop(exercise.name, None)
    return exercise


def unregister(name: str) -> None:
    """Remove an exercise from the registry (unknown names are ignored)."""
    _REGISTRY.pop(name, None)
    _HINTS_SHOWN.pop(name, None)


def exercise_names() -> list[str]:
    """Names of the registered exercises, in registration order."""
    return list(_REGISTRY)


def get_exercise(name: str) -> Exercise:
    """The registered :class:`Exercise` called ``name`` (``ValueError`` if unknown)."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        did_you_mean = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown exercise {name!r}.{did_you_mean} "
            f"Known exercises: {', '.join(_REGISTRY) or '(none)'}"
        )
    return _REGISTRY[name]


@contextlib.contextmanager
def _one_thread():
    """Run torch on one thread: the test inputs are tiny, and starting the
    intra-op thread pool for each small op costs far more than the op itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Verdict:
    """What :func:`check` returns: true when the function is correct.

    A notebook shows a cell's last value; the verdict is already printed, so this one shows
    nothing (a bare ``False`` under the message would only confuse).
    """

    def __init__(self, correct: bool):
        self.correct = correct

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        return f"Verdict(correct={self.correct})"

    def _ipython_display_(self) -> None:
        pass


def check(name: str, fn: Callable) -> Verdict:
    """Check the learner's function ``fn`` for exercise ``name``; print a verdict.

    Prints one verdict line (✅ / ❌ / ⏳), plus on failure up to three short lines
    (which input, expected vs got, how to fix, and a pointer to ``hint``).
    Returns a :class:`Verdict`, true when ``fn`` is correct.
    """
    exercise = get_exercise(name)
    if not callable(fn):
        raise TypeError(
            f"check({name!r}, ...) needs your function itself, e.g. check({name!r}, my_function) "
            f"(no parentheses after the name); got a {type(fn).__name__}"
        )
    try:
        with _one_thread():
            failure = exercise.checker(fn)
    except NotAttempted:
        print(
            f"⏳ {name}: not attempted yet — replace `raise NotImplementedError` "
            "with your code, then run check again."
        )
        return Verdict(False)
    except LearnerError as err:  # a custom checker that did not handle it itself
        failure = Failure(f"your function raised {err.one_line()}")

    if failure is None:
        print(f"✅ {name}: correct! Your function passes all the test inputs.")
        return Verdict(True)
    lines = [f"{failure.icon} {name}: {failure.summary}"]
    lines += [f"   {d}" for d in failure.details[:2]]
    lines.append(f'   Stuck? Run hint("{name}").')
    print("\n".join(lines))
    return Verdict(False)


def hint(name: str) -> None:
    """Print the next hint for exercise ``name`` (after the last one, repeat it)."""
    exercise = get_exercise(name)
    shown = _HINTS_SHOWN.get(name, 0)
    index = min(shown, len(exercise.hints) - 1)
    _HINTS_SHOWN[name] = shown + 1
    total = len(exercise.hints)
    more = "" if index == total - 1 else f' (run hint("{name}") again for the next one)'
    print(f"💡 Hint {index + 1}/{total} for {name}{more}:\n{exercise.hints[index]}")


def reset_hints(name: str | None = None) -> None:
    """Start the hints of ``name`` (or of every exercise) from the first one again."""
    if name is None:
        _HINTS_SHOWN.clear()
    else:
        _HINTS_SHOWN.pop(name, None)


def solution(name: str) -> None:
    """Print the source code of the reference solution of exercise ``name``."""
    exercise = get_exercise(name)
    print(f"# Reference solution for {name}: {exercise.signature}")
    print(exercise.solution.strip("\n"))
    print("# To use it: paste it over your function and give it your function's name (the one you pass to check).")


# ---------------------------------------------------------------------------
# Exercise 1: soft attention over encoder states
# ---------------------------------------------------------------------------


def _soft_reference(H, q):
    a = torch.softmax(H @ q, dim=0)
    return a, a @ H


def _soft_wrong(H, q, *, weights="softmax", context="rows", scale=1.0):
    """soft attention with one deliberate mistake (see _SOFT_MISTAKES)."""
    scores = (H @ q) * scale
    if weights == "softmax":
        a = torch.softmax(scores, dim=0)
    elif weights == "raw":
        a = scores
    elif weights == "sum":
        a = scores / scores.sum()
    elif weights == "naive_exp":
        e = torch.exp(scores)
        a = e / e.sum()
    if context == "rows":
        ctx = a @ H
    elif context == "sum_dim1":
        ctx = (a[:, None] * H).sum(dim=1)
    elif context == "columns":
        ctx = (H * a).sum(dim=0)
    elif context == "H_at_a":
        ctx = H @ a
    elif context == "mean":
        ctx = H.mean(dim=0)
    elif context == "sum":
        ctx = H.sum(dim=0)
    return a, ctx


def _soft_cases(g: torch.Generator) -> list[Case]:
    def states(n, d, dtype=torch.float32):
        H = torch.randn(n, d, generator=g, dtype=dtype)
        q = torch.randn(d, generator=g, dtype=dtype)
        return H, q

    # scores ≈ 1000: exp overflows to inf (also in float64) unless the max is subtracted
    H_big, q_big = states(6, 4, torch.float64)
    H_big[:, 0] = 10 + 0.01 * torch.randn(6, generator=g, dtype=torch.float64)
    q_big[0] = 100.0
    return [
        Case("H of shape (5, 4), q of shape (4,)", states(5, 4)),
        # n == d: summing over the wrong axis gives wrong values here instead of an error
        Case("H of shape (4, 4), q of shape (4,)", states(4, 4)),
        Case("H of shape (7, 3), q of shape (3,), float64", states(7, 3, torch.float64)),
        Case("H of shape (1, 3), q of shape (3,) (a single state)", states(1, 3)),
        Case(
            "H of shape (6, 4), q of shape (4,) with large scores (≈1000)",
            (H_big, q_big),
            note="With scores ≈ 1000, exp() overflows: subtract the max score first, "
            "or use torch.softmax.",
        ),
    ]


_SOFT_MISTAKES = [
    Mistake(
        "softmax is missing — the weights a are the raw scores h_i·q",
        "Apply a_i = softmax(s(h_i, q)): a = torch.softmax(scores, dim=0).",
        variants=(partial(_soft_wrong, weights="raw"),),
    ),
    Mistake(
        "a is the scores divided by their sum, without exp — that is not a softmax",
        "softmax takes exp first: a = torch.softmax(scores, dim=0).",
        variants=(partial(_soft_wrong, weights="sum"),),
    ),
    Mistake(
        "context is summed over the wrong axis",
        "context = Σ_i a_i·h_i is a weighted sum of the ROWS of H: a @ H, shape (d,).",
        variants=(
            partial(_soft_wrong, context="sum_dim1"),
            partial(_soft_wrong, context="columns"),
            partial(_soft_wrong, context="H_at_a"),
        ),
    ),
    Mistake(
        "context ignores the weights a (plain mean or sum of the rows of H)",
        "Weight each row h_i by a_i: context = a @ H.",
        variants=(
            partial(_soft_wrong, context="mean"),
            partial(_soft_wrong, context="sum"),
        ),
    ),
    Mistake(
        "the scores are divided by √d — this exercise uses plain dot-product scores",
        "Use s(h_i, q) = h_i·q with no scaling (the 1/√d scaling comes in the next exercise).",
        variants=(lambda H, q: _soft_wrong(H, q, scale=1 / math.sqrt(H.shape[-1])),),
    ),
    Mistake(
        "your softmax overflows: exp(1000) is inf, so the weights become nan",
        "Subtract the max score before exp, or use torch.softmax (it does this for you).",
        variants=(partial(_soft_wrong, weights="naive_exp"),),
    ),
]

_SOFT_SOLUTION = '''\
import torch


def soft_attention(H, q):
    scores = H @ q                     # s(h_i, q) = h_i · q, shape (n,)
    a = torch.softmax(scores, dim=0)   # a_i = softmax(s(h_i, q)), shape (n,)
    context = a @ H                    # Σ_i a_i·h_i, shape (d,)
    return a, context
'''

register(
    Exercise(
        name="soft_attention",
        signature="soft_attention(H, q) -> (a, context)",
        checker=OutputChecker(
            outputs=("a", "context"),
            reference=_soft_reference,
            make_cases=_soft_cases,
            mistakes=_SOFT_MISTAKES,
        ),
        hints=(
            "Start with the scores s(h_i, q) = h_i · q. For all rows of H at once this is "
            "one matrix-vector product: scores = H @ q, shape (n,).",
            "Turn the scores into weights: a_i = softmax(s(h_i, q)) = exp(s_i) / Σ_j exp(s_j). "
            "Use torch.softmax(scores, dim=0): it subtracts the max first, so large scores "
            "do not overflow.",
            "context = Σ_i a_i·h_i is a weighted sum of the rows of H: context = a @ H, "
            "shape (d,). Return a, context.",
        ),
        solution=_SOFT_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# Exercise 2: scaled dot-product attention
# ---------------------------------------------------------------------------


def _sdpa_reference(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return output, weights


def _sdpa_wrong(
    q, k, v, mask=None, *, scale="sqrt_dk", dim=-1, mask_mode="fill", fill=float("-inf"),
    transpose=lambda k: k.transpose(-2, -1),
):
    """scaled dot-product attention with one deliberate mistake (see _SDPA_MISTAKES)."""
    divisor = {
        "sqrt_dk": math.sqrt(q.shape[-1]),
        "none": 1.0,
        "dk": q.shape[-1],
        "sqrt_dv": math.sqrt(v.shape[-1]),
    }[scale]
    scores = q @ transpose(k) / divisor
    # mask_mode "ignore" leaves the scores unmasked
    if mask is not None and mask_mode == "fill":
        scores = scores.masked_fill(~mask, fill)
    elif mask is not None and mask_mode == "inverted":
        scores = scores.masked_fill(mask, fill)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and mask_mode == "after_softmax":
        weights = weights * mask
    return weights @ v, weights


def _sdpa_cases(g: torch.Generator) -> list[Case]:
    def qkv(batch, Tq, Tk, d_k, d_v, dtype=torch.float32):
        return (
            torch.randn(*batch, Tq, d_k, generator=g, dtype=dtype),
            torch.randn(*batch, Tk, d_k, generator=g, dtype=dtype),
            torch.randn(*batch, Tk, d_v, generator=g, dtype=dtype),
        )

    def causal(Tq, Tk):
        return torch.ones(Tq, Tk, dtype=torch.bool).tril()

    # padding: the second sequence has only 3 real keys out of 6
    padding = (torch.arange(6) < torch.tensor([6, 3])[:, None]).view(2, 1, 1, 6)
    batched_note = (
        "Earlier unbatched inputs passed: transpose only the last two dims, "
        "k.transpose(-2, -1) (k.T and k.t() are for 2-D matrices), softmax over dim=-1."
    )
    mask_note = (
        "This is the first input with a mask (True = may attend): set the blocked scores "
        'to float("-inf") before the softmax.'
    )
    return [
        Case("q (5, 8), k (5, 8), v (5, 8)", qkv((), 5, 5, 8, 8)),
        Case("q (3, 4), k (6, 4), v (6, 5), float64", qkv((), 3, 6, 4, 5, torch.float64)),
        Case("q (2, 4, 8), k (2, 6, 8), v (2, 6, 5)", qkv((2,), 4, 6, 8, 5),
             note=batched_note),
        Case("q (2, 3, 4, 8), k (2, 3, 6, 8), v (2, 3, 6, 5)",
             qkv((2, 3), 4, 6, 8, 5), note=batched_note),
        Case("q (5, 8), k (5, 8), v (5, 8), causal mask (5, 5)",
             qkv((), 5, 5, 8, 8) + (causal(5, 5),), note=mask_note),
        Case("q (2, 4, 8), k (2, 6, 8), v (2, 6, 5), causal mask (4, 6)",
             qkv((2,), 4, 6, 8, 5) + (causal(4, 6),), note=mask_note),
        Case("q (2, 3, 4, 8), k (2, 3, 6, 8), v (2, 3, 6, 5), padding mask (2, 1, 1, 6)",
             qkv((2, 3), 4, 6, 8, 5) + (padding,), note=mask_note),
    ]


_SDPA_MISTAKES = [
    Mistake(
        "the scores are missing the 1/√d_k scaling",
        "Attention(Q,K,V) = softmax(QKᵀ/√d_k)V: "
        "divide q @ k.transpose(-2, -1) by math.sqrt(d_k).",
        variants=(partial(_sdpa_wrong, scale="none"),),
    ),
    Mistake(
        "the scores are divided by d_k instead of √d_k",
        "Divide by math.sqrt(d_k), with d_k = q.size(-1).",
        variants=(partial(_sdpa_wrong, scale="dk"),),
    ),
    Mistake(
        "the scores are scaled with √d_v instead of √d_k",
        "d_k is the size of the last dim of q and k: q.size(-1), not v.size(-1).",
        variants=(partial(_sdpa_wrong, scale="sqrt_dv"),),
    ),
    Mistake(
        "the softmax runs over the wrong axis (the queries instead of the keys)",
        "Use torch.softmax(scores, dim=-1): each query's weights over the keys sum to 1.",
        variants=(partial(_sdpa_wrong, dim=-2),),
    ),
    Mistake(
        "k is transposed over the wrong dimensions",
        "Use k.transpose(-2, -1): it swaps only the last two dims (k.T, k.t() are for 2-D).",
        variants=(
            partial(_sdpa_wrong, transpose=lambda k: k.T),
            partial(_sdpa_wrong, transpose=lambda k: k.t()),
            partial(_sdpa_wrong, transpose=lambda k: k.transpose(0, 1)),
            partial(_sdpa_wrong, transpose=lambda k: k.transpose(1, 2)),
        ),
    ),
    Mistake(
        "the mask is ignored",
        'Before the softmax: scores = scores.masked_fill(~mask, float("-inf")).',
        variants=(partial(_sdpa_wrong, mask_mode="ignore"),),
    ),
    Mistake(
        "the mask is inverted: True means 'may attend', not 'blocked'",
        'Block where the mask is False: scores.masked_fill(~mask, float("-inf")).',
        variants=(
            partial(_sdpa_wrong, mask_mode="inverted"),
            partial(_sdpa_wrong, mask_mode="inverted", fill=-1e9),
        ),
    ),
    Mistake(
        "the mask is applied after the softmax, so the rows of weights no longer sum to 1",
        'Mask the scores BEFORE the softmax: scores.masked_fill(~mask, float("-inf")).',
        variants=(partial(_sdpa_wrong, mask_mode="after_softmax"),),
    ),
]

_SDPA_SOLUTION = '''\
import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)      # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # True = may attend
    weights = torch.softmax(scores, dim=-1)                # over the keys
    return weights @ v, weights                            # (..., Tq, d_v), (..., Tq, Tk)
'''

register(
    Exercise(
        name="scaled_dot_product_attention",
        signature="scaled_dot_product_attention(q, k, v, mask=None) -> (output, weights)",
        checker=OutputChecker(
            outputs=("output", "weights"),
            reference=_sdpa_reference,
            make_cases=_sdpa_cases,
            mistakes=_SDPA_MISTAKES,
        ),
        hints=(
            "Attention(Q,K,V) = softmax(QKᵀ/√d_k)V. Start with the scores: "
            "q @ k.transpose(-2, -1) / math.sqrt(d_k), with d_k = q.size(-1). "
            "transpose(-2, -1) swaps only the last two dims, so batch and head dims still work "
            "(k.T does not).",
            "The mask: True means 'may attend'. Before the softmax, set the blocked scores to "
            '-inf: scores = scores.masked_fill(~mask, float("-inf")). '
            "Masking after the softmax leaves rows that do not sum to 1.",
            "weights = torch.softmax(scores, dim=-1) (over the keys, shape (..., Tq, Tk)); "
            "output = weights @ v (shape (..., Tq, d_v)). Return output, weights.",
        ),
        solution=_SDPA_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# Exercise 3: the causal mask of the Transformer decoder
# ---------------------------------------------------------------------------


def _causal_reference(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


def _causal_cases(g: torch.Generator) -> list[Case]:
    # T = 5 comes first: there every mistake below gives a different matrix
    # (for T = 2, diagonal=+1 and "no masking" are the same matrix).
    return [
        Case("T = 5", (5,)),
        Case("T = 1 (a single position, which sees only itself)", (1,)),
        Case("T = 2", (2,)),
        Case("T = 8", (8,)),
    ]


def _causal_tril(T, diagonal=0, dtype=torch.bool):
    return torch.ones(T, T, dtype=dtype).tril(diagonal)


_CAUSAL_MISTAKES = [
    Mistake(
        "off by one: the diagonal is blocked, so position i cannot attend to itself",
        "Position i sees j <= i, itself included: keep the diagonal, "
        "torch.tril with the default diagonal=0 (not diagonal=-1).",
        variants=(partial(_causal_tril, diagonal=-1),),
    ),
    Mistake(
        "off by one: position i also sees position i + 1, one step into the future",
        "Position i sees only j <= i: torch.tril with the default diagonal=0 "
        "(not diagonal=1).",
        variants=(partial(_causal_tril, diagonal=1),),
    ),
    Mistake(
        "this is the upper triangle: position i looks at the future (j >= i), not the past",
        "Keep the lower triangle, on and below the diagonal: torch.tril, not torch.triu.",
        variants=(lambda T: torch.ones(T, T, dtype=torch.bool).triu(),),
    ),
    Mistake(
        "the mask is inverted: it is True where attention is blocked, "
        "but True means 'may attend'",
        "True = may attend, as in F.scaled_dot_product_attention: return the lower "
        "triangle itself, torch.ones(T, T, dtype=torch.bool).tril() (no ~, no triu).",
        variants=(
            lambda T: ~_causal_tril(T),
            lambda T: torch.ones(T, T, dtype=torch.bool).triu(diagonal=1),
        ),
    ),
    Mistake(
        "this is an additive float mask (0 = attend, -inf = blocked), "
        "but here the mask is a bool tensor, True = may attend",
        "Return torch.ones(T, T, dtype=torch.bool).tril(); the attention code turns "
        'False into -inf itself (masked_fill(~mask, float("-inf"))).',
        variants=(
            lambda T: torch.zeros(T, T).masked_fill(~_causal_tril(T), float("-inf")),
        ),
    ),
    Mistake(
        "the mask blocks nothing: every position may attend to every position, "
        "the future included",
        "Keep only j <= i, the lower triangle: torch.ones(T, T, dtype=torch.bool).tril().",
        variants=(lambda T: torch.ones(T, T, dtype=torch.bool),),
    ),
    Mistake(
        "the mask holds numbers (0 / 1) instead of True / False: it must be a bool tensor",
        "Build it with dtype=torch.bool, torch.ones(T, T, dtype=torch.bool).tril(), "
        "or add .bool() at the end.",
        variants=(
            partial(_causal_tril, dtype=torch.float32),
            partial(_causal_tril, dtype=torch.int64),
        ),
    ),
    Mistake(
        "the mask has the wrong shape: it must be a (T, T) matrix, "
        "row i = query position, column j = key position",
        "Return exactly shape (T, T), no batch dim: torch.ones(T, T, dtype=torch.bool).tril() "
        "(it broadcasts over batches later).",
        variants=(
            lambda T: torch.ones(T, dtype=torch.bool),
            lambda T: _causal_tril(T).unsqueeze(0),
        ),
        by_shape=True,
    ),
]

_CAUSAL_SOLUTION = '''\
import torch


def causal_mask(T):
    # M[i, j] = True when position i may attend to position j, i.e. j <= i:
    # the lower triangle, diagonal included.
    return torch.ones(T, T, dtype=torch.bool).tril()   # shape (T, T), dtype bool
'''

register(
    Exercise(
        name="causal_mask",
        signature="causal_mask(T) -> mask, a bool tensor of shape (T, T)",
        checker=OutputChecker(
            outputs=("mask",),
            reference=_causal_reference,
            make_cases=_causal_cases,
            mistakes=_CAUSAL_MISTAKES,
            check_dtype=True,
        ),
        hints=(
            "The decoder's masked attention is softmax((QKᵀ ⊙ M)/√d_k)V. "
            "In the (T, T) mask M, row i is the query position and column j the key "
            "position; position i may attend to j <= i, so M[i, j] is True on and below "
            "the diagonal (True = may attend, as in F.scaled_dot_product_attention).",
            "On and below the diagonal is the lower triangle: torch.tril(x) keeps it "
            "(diagonal included, diagonal=0 is the default) and sets the rest to zero / False. "
            "Start from a matrix that is all True.",
            "torch.ones(T, T, dtype=torch.bool) is all True; .tril() (or torch.tril(...)) keeps "
            "j <= i. Return that (T, T) bool tensor: no .float(), no extra batch dim.",
        ),
        solution=_CAUSAL_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# gpt_combined_loss (notebook 03): L3 = L2 + λ L1
# ---------------------------------------------------------------------------

_F = torch.nn.functional


def _combined_reference(class_logits, labels, lm_logits, lm_targets, lam):
    l2 = _F.cross_entropy(class_logits, labels)
    l1 = _F.cross_entropy(lm_logits.reshape(-1, lm_logits.shape[-1]), lm_targets.reshape(-1), ignore_index=-100)
    return (l2 + lam * l1,)


def _combined_wrong(class_logits, labels, lm_logits, lm_targets, lam, *, mistake):
    V = lm_logits.shape[-1]
    flat_logits, flat_targets = lm_logits.reshape(-1, V), lm_targets.reshape(-1)
    l2 = _F.cross_entropy(class_logits, labels)
    l1 = _F.cross_entropy(flat_logits, flat_targets, ignore_index=-100)
    if mistake == "swapped":
        return (lam * l2 + l1,)
    if mistake == "no_lambda":
        return (l2 + l1,)
    if mistake == "likelihood":  # the notes' L1 is a log-likelihood (to maximise); the loss is its negative
        return (l2 - lam * l1,)
    if mistake == "sum":
        return (l2 + lam * _F.cross_entropy(flat_logits, flat_targets, ignore_index=-100, reduction="sum"),)
    if mistake == "padding_as_token":
        return (l2 + lam * _F.cross_entropy(flat_logits, flat_targets.clamp_min(0)),)
    if mistake == "only_l2":
        return (l2,)
    raise ValueError(mistake)


def _combined_cases(g: torch.Generator) -> list[Case]:
    def case(B, C, T, V, lam, pad, dtype=torch.float32):
        class_logits = torch.randn(B, C, generator=g, dtype=dtype)
        labels = torch.randint(0, C, (B,), generator=g)
        lm_logits = torch.randn(B, T, V, generator=g, dtype=dtype)
        lm_targets = torch.randint(0, V, (B, T), generator=g)
        if pad:  # the last positions of every other row are padding: -100, no loss there
            lm_targets[::2, T - pad:] = -100
        desc = f"B={B}, {C} classes, T={T}, V={V}, lam={lam}" + (f", {pad} padded targets per other row" if pad else "")
        return Case(desc, (class_logits, labels, lm_logits, lm_targets, lam))

    return [
        case(4, 3, 6, 11, 0.5, 2),
        case(2, 2, 5, 7, 2.0, 0),
        case(3, 2, 4, 9, 0.0, 1),
        case(5, 4, 7, 13, 0.25, 3, dtype=torch.float64),
    ]


_COMBINED_MISTAKES = [
    Mistake("λ multiplies the wrong term: the notes' L3 is L2 + λ·L1 (λ scales the language-model loss)",
            "Return L2 + lam * L1, with L2 the classification loss and L1 the language-model loss.",
            variants=(partial(_combined_wrong, mistake="swapped"),)),
    Mistake("the language-model loss is added without its weight λ",
            "Multiply L1 by lam: L2 + lam * L1.",
            variants=(partial(_combined_wrong, mistake="no_lambda"),)),
    Mistake("L1 is subtracted: the notes' L1 is a log-likelihood to maximise, so as a loss it is the "
            "cross-entropy, which is added",
            "Use the cross-entropy (the negative log-likelihood) for L1 and add it: L2 + lam * L1.",
            variants=(partial(_combined_wrong, mistake="likelihood"),)),
    Mistake("L1 is a sum over tokens, not a mean: its size then grows with the batch and the length",
            "Use the mean over predicted tokens, F.cross_entropy's default reduction.",
            variants=(partial(_combined_wrong, mistake="sum"),)),
    Mistake("padded targets (-100) are counted as a real token",
            "Pass ignore_index=-100 to F.cross_entropy for L1, so padding does not count.",
            variants=(partial(_combined_wrong, mistake="padding_as_token"),)),
    Mistake("only the classification loss L2 is returned: with lam > 0 the language-model loss must be added",
            "Compute L1 = F.cross_entropy(lm_logits.reshape(-1, V), lm_targets.reshape(-1), ignore_index=-100) "
            "and return L2 + lam * L1.",
            variants=(partial(_combined_wrong, mistake="only_l2"),)),
]

_COMBINED_SOLUTION = '''\
import torch.nn.functional as F


def gpt_combined_loss(class_logits, labels, lm_logits, lm_targets, lam):
    # L2: classification, P(y | x^1..x^m) = softmax(h W_y)  ->  mean cross-entropy over the batch
    l2 = F.cross_entropy(class_logits, labels)
    # L1: the language-model loss on the same texts, mean over the predicted tokens, padding (-100) left out
    V = lm_logits.shape[-1]
    l1 = F.cross_entropy(lm_logits.reshape(-1, V), lm_targets.reshape(-1), ignore_index=-100)
    return l2 + lam * l1   # L3 = L2 + λ L1
'''

register(
    Exercise(
        name="gpt_combined_loss",
        signature="gpt_combined_loss(class_logits (B, C), labels (B,), lm_logits (B, T, V), lm_targets (B, T), lam) "
                  "-> loss, a scalar tensor",
        checker=OutputChecker(
            outputs=("loss",),
            reference=_combined_reference,
            make_cases=_combined_cases,
            mistakes=_COMBINED_MISTAKES,
        ),
        hints=(
            "L3 = L2 + λ·L1. L2 is the classification loss: the mean cross-entropy of class_logits against labels. "
            "L1 is the language-model loss on the same texts: the mean cross-entropy of lm_logits against lm_targets.",
            "F.cross_entropy wants (N, classes) and (N,): flatten the language-model part with "
            "lm_logits.reshape(-1, V) and lm_targets.reshape(-1).",
            "Padding positions hold -100 in lm_targets: pass ignore_index=-100 so they do not count. "
            "Then return l2 + lam * l1.",
        ),
        solution=_COMBINED_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# mlm_masking (notebook 04): the 15% / 80-10-10 rule. Random by nature, so checked by statistics.
# ---------------------------------------------------------------------------

_MLM_SPECIAL = (0, 100, 101, 102, 103)   # [PAD] [UNK] [CLS] [SEP] [MASK], as in the real BERT vocabulary
_MLM_MASK, _MLM_VOCAB = 103, 1000


def _mlm_case(g: torch.Generator, vocab_size: int = _MLM_VOCAB) -> torch.Tensor:
    """200 sequences of 120 tokens: [CLS] words [SEP], the last 20 of every other row padding."""
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in _MLM_SPECIAL])
    ids = ordinary[torch.randint(len(ordinary), (200, 120), generator=g)]
    ids[:, 0], ids[:, -21] = 101, 102
    ids[1::2, -20:] = 0
    ids[0::2, -20:] = ordinary[torch.randint(len(ordinary), (100, 20), generator=g)]
    return ids


def _mlm_checker(fn: Callable) -> Failure | None:
    ids = _mlm_case(torch.Generator().manual_seed(0))
    original = ids.clone()
    result = call_learner(fn, ids, _MLM_VOCAB, _MLM_MASK, list(_MLM_SPECIAL), torch.Generator().manual_seed(1))
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(t, torch.Tensor) for t in result)):
        return Failure("return two tensors, (inputs, labels)",
                       (f"got {type(result).__name__}",))
    inputs, labels = result
    if inputs.shape != ids.shape or labels.shape != ids.shape:
        return Failure("inputs and labels must have the shape of input_ids",
                       (f"input_ids {_shape(ids)}, got inputs {_shape(inputs)} and labels {_shape(labels)}",))
    if not torch.equal(ids, original):
        return Failure("input_ids was changed in place: work on a copy",
                       ("inputs = input_ids.clone(), then change inputs.",))
    selected = labels != -100
    special = torch.isin(ids, torch.tensor(_MLM_SPECIAL))
    if not selected.any():
        return Failure("no position is selected: labels must hold the original id at the ~15% selected positions",
                       ("labels = -100 everywhere else.",))
    if selected.float().mean() > 0.5:
        return Failure("labels must be -100 at every position that was not selected (only ~15% hold an id)",
                       ("labels = torch.where(selected, input_ids, -100): the loss then counts only the selected.",))
    if (selected & special).any():
        return Failure("special tokens ([CLS], [SEP], [PAD], ...) were selected: only ordinary tokens may be masked",
                       ("Select among positions whose id is not in special_token_ids (torch.isin).",))
    if not torch.equal(labels[selected], ids[selected]):
        return Failure("labels must hold the ORIGINAL id at the selected positions (and -100 elsewhere)",
                       ("labels = torch.where(selected, input_ids, -100).",))
    share = selected.sum().item() / (~special).sum().item()
    if abs(share - 0.15) > 0.02:
        return Failure(f"{share:.1%} of the ordinary tokens were selected, not 15%",
                       ("Select each ordinary position with probability 0.15: torch.rand(...) < 0.15.",))
    if not torch.equal(inputs[~selected], ids[~selected]):
        return Failure("positions that were not selected changed: only the selected 15% may change")
    n = selected.sum().item()
    masked = ((inputs == _MLM_MASK) & selected).sum().item() / n
    kept = ((inputs == ids) & selected).sum().item() / n
    randomised = 1 - masked - kept
    if abs(masked - 0.8) > 0.04 or abs(kept - 0.1) > 0.03 or abs(randomised - 0.1) > 0.03:
        return Failure(f"the selected tokens split {masked:.0%} [MASK] / {randomised:.0%} random / {kept:.0%} "
                       f"unchanged, not 80 / 10 / 10",
                       ("Draw one more uniform number per selected position: < 0.8 -> [MASK], "
                        "0.8-0.9 -> a random token, >= 0.9 -> unchanged.",))
    # Among 1,000 ids a replacement drawn from the whole vocabulary rarely hits a special id; among
    # 110 (5 of them special) some of ~340 replacements surely do.
    small = _mlm_case(torch.Generator().manual_seed(2), vocab_size=110)
    small_inputs, _ = call_learner(fn, small, 110, _MLM_MASK, list(_MLM_SPECIAL), torch.Generator().manual_seed(3))
    if torch.isin(small_inputs[small_inputs != small], torch.tensor([i for i in _MLM_SPECIAL if i != _MLM_MASK])).any():
        return Failure("a random replacement is a special token: draw replacements among the ordinary tokens",
                       ("e.g. pick from [i for i in range(vocab_size) if i not in special_token_ids].",))
    again = call_learner(fn, ids, _MLM_VOCAB, _MLM_MASK, list(_MLM_SPECIAL), torch.Generator().manual_seed(1))
    if not all(torch.equal(a, b) for a, b in zip(result, again)):
        return Failure("two calls with the same seeded generator gave different results",
                       ("Pass generator=generator to every torch.rand / torch.randint call.",))
    return None


_MLM_SOLUTION = '''\
import torch


def mlm_masking(input_ids, vocab_size, mask_token_id, special_token_ids, generator):
    special = torch.tensor(list(special_token_ids))
    ordinary = ~torch.isin(input_ids, special)                       # never select [CLS], [SEP], [PAD] ...
    selected = ordinary & (torch.rand(input_ids.shape, generator=generator) < 0.15)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()                                        # leave the caller's tensor alone
    inputs[selected & (action < 0.8)] = mask_token_id                 # 80%: [MASK]
    randomise = selected & (action >= 0.8) & (action < 0.9)           # 10%: a random ordinary token
    choices = torch.tensor([i for i in range(vocab_size) if i not in set(special.tolist())])
    picks = choices[torch.randint(len(choices), input_ids.shape, generator=generator)]
    inputs[randomise] = picks[randomise]
    return inputs, labels                                             # the other 10% stay unchanged
'''

register(
    Exercise(
        name="mlm_masking",
        signature="mlm_masking(input_ids, vocab_size, mask_token_id, special_token_ids, generator) -> (inputs, labels)",
        checker=_mlm_checker,
        hints=(
            "First choose: each ordinary (non-special) position is selected with probability 0.15 "
            "(torch.rand(shape, generator=generator) < 0.15, and not torch.isin(input_ids, special)). "
            "labels = the original id where selected, -100 elsewhere.",
            "Then a second uniform number per position decides what happens to a selected token: "
            "< 0.8 -> mask_token_id, 0.8 to 0.9 -> a random ordinary token, >= 0.9 -> keep it.",
            "Work on inputs = input_ids.clone(); use generator= in every random call so a seed gives the same "
            "result twice; draw random replacements only among non-special ids.",
        ),
        solution=_MLM_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# folder_dataset (notebook 05): a torch Dataset over class folders
# ---------------------------------------------------------------------------

def _folder_checker(cls: Callable) -> Failure | None:
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        files = {"wasps": ["a wasp stings", "wasps are yellow"], "ants": ["ants carry leaves", "an ant", "ants dig"],
                 "bees": ["bees make honey"]}
        for name, texts in files.items():  # created in an unsorted order on purpose
            (root / name).mkdir()
            for i, text in enumerate(texts):
                (root / name / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
        (root / "ants" / "README.md").write_text("not a sample\n")
        classes = sorted(files)
        expected = sorted((text, classes.index(name)) for name, texts in files.items() for text in texts)
        dataset = call_learner(cls, root)
        n = call_learner(len, dataset)
        if n == len(files):
            return Failure("len() counts the class folders, not the files",
                           ("__len__ must return the number of .txt files in all class folders together.",))
        if n == len(expected) + 1:
            return Failure("a file that is not a .txt sample was counted (README.md)",
                           ("Collect only the .txt files: (root / name).glob('*.txt').",))
        if n != len(expected):
            return Failure(f"len() is {n}, but there are {len(expected)} .txt files")
        items = [call_learner(dataset.__getitem__, i) for i in range(n)]
        if not all(isinstance(item, tuple) and len(item) == 2 for item in items):
            return Failure("each item must be a pair (text, label)", (f"got {items[0]!r}",))
        if any(isinstance(text, pathlib.Path) or (isinstance(text, str) and text.endswith(".txt")) for text, _ in items):
            return Failure("an item holds the file's path: read the file and return its text",
                           ("text = path.read_text(encoding='utf-8').strip()",))
        got = sorted((text.strip() if isinstance(text, str) else text, label) for text, label in items)
        if [t for t, _ in got] != [t for t, _ in expected]:
            return Failure("the texts are not the files' contents", (f"expected e.g. {expected[0][0]!r}",))
        if got != expected:
            return Failure("the labels do not follow the sorted folder names (ants = 0, bees = 1, wasps = 2)",
                           ("classes = sorted(folder names); the label of a file is classes.index(its folder's name).",))
    return None


_FOLDER_SOLUTION = '''\
import pathlib

from torch.utils.data import Dataset


class folder_dataset(Dataset):
    def __init__(self, root):
        root = pathlib.Path(root)
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())   # label = index in this list
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in sorted((root / name).glob("*.txt"))]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        return path.read_text(encoding="utf-8").strip(), label
'''

register(
    Exercise(
        name="folder_dataset",
        signature="folder_dataset(root): a torch Dataset; len() = number of .txt files; item i = (text, label)",
        checker=_folder_checker,
        hints=(
            "In __init__, list the class folders (the sub-folders of root) and sort their names: the label of a "
            "class is its index in that sorted list. Then collect (path, label) for every .txt file in each folder.",
            "__len__ returns how many (path, label) pairs you collected; __getitem__(i) opens the i-th file and "
            "returns (its text, its label).",
            "pathlib makes it short: sorted(p.name for p in root.iterdir() if p.is_dir()), "
            "sorted((root / name).glob('*.txt')), path.read_text(encoding='utf-8').strip().",
        ),
        solution=_FOLDER_SOLUTION,
    )
)
