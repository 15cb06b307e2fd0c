"""Tests for the exercise of notebook 06 (course_lib.exercises.frameworks): collator_setting."""

import pytest
from transformers import DataCollatorForLanguageModeling

from course_lib.exercises import check

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(fn, capsys):
    """check("collator_setting", fn) and its printed text."""
    capsys.readouterr()
    verdict = check("collator_setting", fn)
    return bool(verdict), capsys.readouterr().out


def test_the_right_setting_passes(capsys):
    ok, out = run(lambda tok: DataCollatorForLanguageModeling(tok, mlm_probability=0.2, mask_replace_prob=1.0,
                                                              random_replace_prob=0.0), capsys)
    assert ok, out


@pytest.mark.parametrize("make, words", [
    (lambda tok: DataCollatorForLanguageModeling(tok), "0.15, the default"),
    (lambda tok: DataCollatorForLanguageModeling(tok, mlm_probability=0.2), "80 / 10 / 10 defaults"),
    (lambda tok: DataCollatorForLanguageModeling(tok, mlm=False, mlm_probability=0.2, mask_replace_prob=1.0,
                                                 random_replace_prob=0.0), "mlm=False"),
    (lambda tok: DataCollatorForLanguageModeling(tok, mlm_probability=0.25, mask_replace_prob=1.0,
                                                 random_replace_prob=0.0), "mlm_probability is 0.25"),
    (lambda tok: DataCollatorForLanguageModeling(tok, mlm_probability=0.2, mask_replace_prob=0.9,
                                                 random_replace_prob=0.0), "mask_replace_prob is 0.9"),
    (lambda tok: DataCollatorForLanguageModeling(tok, mlm_probability=20, mask_replace_prob=1.0,
                                                 random_replace_prob=0.0), "not a percentage"),
    (lambda tok: DataCollatorForLanguageModeling(tok, mlm_probability=0.2, mask_replace_prob=1.0),
     "random_replace_prob=0.0 too"),
    (lambda tok: {"mlm_probability": 0.2}, "must return a DataCollatorForLanguageModeling"),
])
def test_the_classic_mistakes_are_named(make, words, capsys):
    ok, out = run(make, capsys)
    assert not ok and words in out, out


def test_a_collator_for_another_tokenizer_is_refused(capsys):
    from course_lib.frameworks.tokenizers import as_bert_tokenizer, train_wordpiece

    other = as_bert_tokenizer(train_wordpiece(["a b c d e ."], vocab_size=40))
    ok, out = run(lambda tok: DataCollatorForLanguageModeling(other, mlm_probability=0.2, mask_replace_prob=1.0,
                                                              random_replace_prob=0.0), capsys)
    assert not ok and "tokenizer it was given" in out


def test_the_starter_is_not_attempted(capsys):
    def my_collator(tokenizer):
        raise NotImplementedError

    ok, out = run(my_collator, capsys)
    assert not ok and "not attempted" in out
