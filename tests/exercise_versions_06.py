"""Library version of the exercise of notebook 06 (a pretraining framework).

Merged into tests/test_exercise_solutions.py (dicts LIBRARY_VERSIONS and NO_LIBRARY_VERSION).
"""

LIBRARY_VERSIONS = {}

NO_LIBRARY_VERSION = {
    "collator_setting": (
        "the exercise configures transformers' DataCollatorForLanguageModeling; course_lib has no collator "
        "of its own (its masking rule is course_lib.bert.mask_tokens, with 80 / 10 / 10 fixed)"
    ),
}
