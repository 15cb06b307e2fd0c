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
- one module per notebook, each registering its exercises when imported (twenty-two in all, each
  placed in its notebook right after the section it practises):
  ``attention`` (01: soft_attention, scaled_dot_product_attention, key_value_attention, split_heads,
  multi_head_self_attention), ``transformer`` (02: layer_norm, add_and_norm, positional_encoding,
  causal_mask, padding_mask), ``gpt`` (03: gpt_combined_loss, lm_inputs_and_targets,
  next_token_distribution, last_token_states), ``bert`` (04: mlm_masking, bert_input, wordpiece),
  ``pytorch_basics`` (05: folder_dataset, pad_collate, training_step, hwc_to_chw), ``frameworks`` (06: collator_setting).
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
from course_lib.exercises import attention, transformer, gpt, bert, pytorch_basics, frameworks  # noqa: F401

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
