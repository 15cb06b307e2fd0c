"""Tests for the exercise of notebook 04 (course_lib.exercises.bert): mlm_masking,
a statistical checker with its own diagnoses."""

import pytest
import torch

from course_lib.exercises import check


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(name, fn, capsys):
    """check() and its printed text."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


def _mlm(select=0.15, mask=0.8, rand=0.1, specials_ok=False, in_place=False, labels_everywhere=False, seeded=True,
         any_replacement=False):
    def fn(input_ids, vocab_size, mask_token_id, special_token_ids, generator):
        g = generator if seeded else None
        special = torch.tensor(list(special_token_ids))
        ordinary = torch.ones_like(input_ids, dtype=torch.bool) if specials_ok else ~torch.isin(input_ids, special)
        selected = ordinary & (torch.rand(input_ids.shape, generator=g) < select)
        labels = input_ids.clone() if labels_everywhere else torch.where(selected, input_ids, -100)
        action = torch.rand(input_ids.shape, generator=g)
        inputs = input_ids if in_place else input_ids.clone()
        randomise = selected & (action >= mask) & (action < mask + rand)
        choices = torch.tensor([i for i in range(vocab_size)
                                if any_replacement or i not in set(special.tolist())])
        picks = choices[torch.randint(len(choices), input_ids.shape, generator=g)]
        inputs[selected & (action < mask)] = mask_token_id
        inputs[randomise] = picks[randomise]
        return inputs, labels
    return fn


@pytest.mark.parametrize("variant, expected", [
    (_mlm(), "✅"),
    (_mlm(select=0.3), "not 15%"),
    (_mlm(mask=1.0, rand=0.0), "not 80 / 10 / 10"),
    (_mlm(mask=0.9, rand=0.1), "not 80 / 10 / 10"),
    (_mlm(specials_ok=True), "special tokens"),
    (_mlm(in_place=True), "changed in place"),
    (_mlm(labels_everywhere=True), "labels must be -100"),
    (_mlm(seeded=False), "same seeded generator"),
    (_mlm(any_replacement=True), "random replacement is a special token"),
])
def test_mlm_masking_checker_names_the_mistake(variant, expected, capsys):
    ok, out = run("mlm_masking", variant, capsys)
    assert ok is (expected == "✅")
    assert expected in out.splitlines()[0]
