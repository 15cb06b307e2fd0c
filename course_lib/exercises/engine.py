"""The exercise engine: the registry of exercises and the notebook API ``check``, ``hint``, ``solution``.

``check`` never raises because of a mistake in the learner's code: an untouched
starter is reported as "not attempted", any other exception (``SystemExit`` and other
``BaseException`` subclasses included) is reported in one line, and a result of any
kind (None, a NumPy array, a generator, a tensor of any dtype or device, ...) gets a
verdict. Only ``KeyboardInterrupt`` goes through, so a learner can always stop a cell.
It raises only for programming errors in the call itself (a name that is not a str ->
``TypeError``, an unknown exercise name -> ``ValueError``, something that is not a
function -> ``TypeError``).

Adding an exercise (for instructors)
------------------------------------
Put a new exercise in the module of the notebook it belongs to (``attention.py``
for 01, ``transformer.py`` for 02, ``gpt.py`` for 03, ``bert.py`` for 04,
``pytorch_basics.py`` for 05; a new notebook gets a new module) and import that
module in ``course_lib/exercises/__init__.py``: importing it registers its exercises.

Most exercises are "call the function on a few inputs and compare its outputs with
a reference". :class:`~course_lib.exercises.output_checker.OutputChecker` does all
of that; you give it

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

The solution source must define a function named like the exercise and be
self-contained code a learner can paste. tests/test_exercise_solutions.py executes
every registered solution and checks that it passes its own checker (and that the
library's own version of the function, where there is one, passes it too), so
solutions cannot silently rot; it fails for an exercise it does not know yet.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch

__all__ = [
    "ATOL",
    "RTOL",
    "SEED",
    "Case",
    "Exercise",
    "Failure",
    "LearnerError",
    "Mistake",
    "NotAttempted",
    "Verdict",
    "call_learner",
    "check",
    "exercise_names",
    "get_exercise",
    "hint",
    "register",
    "reset_hints",
    "short_repr",
    "shorten",
    "solution",
    "unregister",
]

SEED = 20240601  # every built-in checker builds its inputs from this seed
ATOL = 1e-5
RTOL = 1e-4


def shorten(text: str, limit: int = 140) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about a learner's value.

    Never raises: a value whose ``__repr__`` fails is shown by its type name.
    """
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return shorten(" ".join(text.split()), limit)


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, or "" when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except Exception:
        return ""

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
    ``solution`` is Python source defining ``def <name>(...)`` (or ``class <name>``).
    """

    name: str
    signature: str
    checker: Callable[[Callable], Failure | None]
    hints: tuple[str, ...]
    solution: str

    def load_solution(self) -> Callable:
        """Run the solution source and return the function (or class) it defines under ``name``."""
        namespace: dict[str, Any] = {}
        exec(self.solution, namespace)  # the course's own source, registered with the exercise
        return namespace[self.name]


class NotAttempted(Exception):
    """The learner's function still raises ``NotImplementedError`` (untouched starter)."""


class LearnerError(Exception):
    """An exception raised inside the learner's function (kept in ``.original``)."""

    def __init__(self, original: BaseException, fn: Callable):
        super().__init__(f"{type(original).__name__}: {_text_of(original)}")
        self.original = original
        self.fn = fn

    def one_line(self) -> str:
        """``"RuntimeError: message"`` with only the first line of the message."""
        text = _text_of(self.original).strip().splitlines()
        message = shorten(text[0], 100) if text else ""
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

    ``NotImplementedError`` becomes :class:`NotAttempted`; ``KeyboardInterrupt`` goes
    through (the learner stopped the cell); any other exception, ``SystemExit`` and
    other ``BaseException`` subclasses included, becomes :class:`LearnerError`.
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted() from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the learner's code may raise anything, even exit()
        raise LearnerError(exc, fn) from exc



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
    if not isinstance(exercise, Exercise):
        raise TypeError(f"exercise must be an Exercise(name=..., signature=..., checker=..., hints=..., solution=...), "
                        f"got {type(exercise).__name__}")
    if not isinstance(exercise.name, str) or not exercise.name.isidentifier():
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
    _check_name(name)
    _REGISTRY.pop(name, None)
    _HINTS_SHOWN.pop(name, None)


def exercise_names() -> list[str]:
    """Names of the registered exercises, in registration order."""
    return list(_REGISTRY)


def _check_name(name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name must be the exercise's name as a str, e.g. 'causal_mask', "
                        f"got {type(name).__name__} {short_repr(name)}")


def get_exercise(name: str) -> Exercise:
    """The registered :class:`Exercise` called ``name`` (``ValueError`` if unknown, ``TypeError`` if not a str)."""
    _check_name(name)
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
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # what the learner's function gave back broke the comparison itself
        message = shorten(_text_of(exc).strip().split("\n")[0], 100)
        failure = Failure("your function returned something that cannot be compared with the expected result",
                          (f"Comparing it raised {type(exc).__name__}" + (f": {message}" if message else "") + ".",
                           f"Expected: {exercise.signature}."))
    if failure is not None and not isinstance(failure, Failure):
        raise TypeError(f"the checker of {name!r} must return None or a Failure, got {type(failure).__name__}")

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
        get_exercise(name)  # an unknown name says so, instead of resetting nothing
        _HINTS_SHOWN.pop(name, None)


def solution(name: str) -> None:
    """Print the source code of the reference solution of exercise ``name``."""
    exercise = get_exercise(name)
    print(f"# Reference solution for {name}: {exercise.signature}")
    print(exercise.solution.strip("\n"))
    print("# To use it: paste it over your function and give it your function's name (the one you pass to check).")

