"""Auto-checked exercises for the course notebooks: ``check``, ``hint``, ``solution``.

In a notebook::

    from course_lib.exercises import check, hint, solution

    def my_soft_attention(H, q):
        raise NotImplementedError  # your code here

    check("soft_attention", my_soft_attention)  # one-line verdict, returns True / False
    hint("soft_attention")                      # the next hint (2-3 per exercise)
    solution("soft_attention")                  # the reference solution's source code

Modules:

- ``engine``: the registry, ``check`` / ``hint`` / ``solution`` and the data types
  (how to add an exercise is in its docstring);
- ``output_checker``: ``OutputChecker``, the "compare outputs with a reference" checker;
- one module per notebook, each registering its exercises when imported:
  ``attention`` (01: soft_attention, scaled_dot_product_attention),
  ``transformer`` (02: causal_mask), ``gpt`` (03: gpt_combined_loss),
  ``bert`` (04: mlm_masking), ``pytorch_basics`` (05: folder_dataset).
"""

from course_lib.exercises.engine import (
    Case,
    Exercise,
    Failure,
    LearnerError,
    Mistake,
    NotAttempted,
    Verdict,
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
from course_lib.exercises.output_checker import OutputChecker

# Imported for their side effect, in notebook order (the order of exercise_names()):
# each registers its notebook's exercises.
from course_lib.exercises import attention, transformer, gpt, bert, pytorch_basics  # noqa: F401

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
