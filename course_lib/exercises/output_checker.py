"""The generic exercise checker: call the learner's function on fixed inputs and compare its
outputs with a reference, naming the classic mistake it reproduces when there is one."""

from __future__ import annotations

import contextlib
import inspect
import io
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from course_lib.exercises.engine import (
    ATOL,
    RTOL,
    SEED,
    Case,
    Failure,
    LearnerError,
    Mistake,
    NotAttempted,
    call_learner,
    shorten,
)

__all__ = ["OutputChecker"]



def _clone(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _fmt_item(x: torch.Tensor, index: tuple) -> str:
    """One element for messages: True / False for bool tensors, else a short number."""
    if x.dtype == torch.bool:
        return str(bool(x[index].item()))
    return _fmt(x.detach().cpu().to(torch.float64)[index].item())


def _as_float64(x: torch.Tensor) -> torch.Tensor:
    """``x`` on the CPU in float64, detached: what values are compared in (a no-op copy-wise for CPU)."""
    return x.detach().cpu().to(torch.float64)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exactly equal, NaN matching NaN."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    b = b.detach().cpu()
    if a.is_floating_point() or a.is_complex():
        return torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True)
    return torch.equal(a, b)


def _changed(before: tuple, after: tuple) -> int | None:
    """Index of the first tensor argument the learner's function changed in place, or None."""
    for i, (a, b) in enumerate(zip(before, after)):
        if isinstance(a, torch.Tensor) and not (isinstance(b, torch.Tensor) and _same(a, b)):
            return i
    return None


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
        changed = None  # (case, argument index) of the first input changed in place
        for i, case in enumerate(cases):
            args = _clone(case.args)
            try:
                outcome = _Outcome(value=call_learner(fn, *args))
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
            if changed is None and (k := _changed(case.args, args)) is not None:
                changed = case, k
        else:
            if changed is None:
                return None
            case, k = changed
            name = self._argument_name(k)
            return Failure(
                f"your function changes its input {name} in place",
                (f"On input {case.description}: {name} was modified, but the caller's tensors must stay as they were.",
                 f"Compute new tensors (x = x / s, not x /= s), or start from {name} = {name}.clone()."),
            )

        found = self._diagnose(fn, cases, wanted, i, first_outcome)
        if found is not None:
            mistake, j, outcome_j = found
            return Failure(
                mistake.problem,
                (self._evidence(cases[j], outcome_j, wanted[j]), mistake.fix),
            )
        return self._generic_failure(cases[i], first_outcome, wanted[i])

    def _argument_name(self, index: int) -> str:
        """The name of positional argument ``index``, read from the reference's signature."""
        try:
            names = list(inspect.signature(self.reference).parameters)
            return names[index]
        except (TypeError, ValueError, IndexError):
            return f"argument {index + 1}"

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
        if value is None or (n == 1 and isinstance(value, tuple) and len(value) == 1 and value[0] is None):
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
            if got.layout != torch.strided:
                return name, f"expected {name} to be a dense torch.Tensor, got layout {got.layout}"
            if got.device.type == "meta":
                return name, f"expected {name} to be a tensor of numbers, got a tensor on the meta device (no values)"
        return None

    def _close(self, got: torch.Tensor, want: torch.Tensor, equal_nan: bool = False) -> bool:
        return got.shape == want.shape and torch.allclose(
            _as_float64(got),
            _as_float64(want),
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
            if got.shape != want.shape:  # shapes as Python prints them: (4,) for a vector
                return name, f"expected {name} of shape {tuple(want.shape)}, got {tuple(got.shape)}"
        for name, got, want in zip(self.outputs, value, wanted):
            if not self._close(got, want):
                g = _as_float64(got)
                w = _as_float64(want)
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
                and str(a) == str(b)  # "Type: message", built safely by LearnerError
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
        at = f" (at `{shorten(line, 60)}`)" if line else ""
        return f"On input {case.description}: {message}{at}."

    def _generic_failure(self, case: Case, outcome: _Outcome, wanted: tuple) -> Failure:
        kind, message = self._problem(outcome, wanted)
        note = (case.note,) if case.note else ()
        if kind == "error":
            line = outcome.error.learner_line()
            at = f" at `{shorten(line, 60)}`" if line else ""
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
