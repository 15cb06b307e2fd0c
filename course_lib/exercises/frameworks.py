"""Exercise of notebook 06 (a pretraining framework): configure ``DataCollatorForLanguageModeling``.

``collator_setting``: ``my_collator(tokenizer)`` returns a collator for "MLM labels, select 20% of
the tokens, always replace a selected one with [MASK]". The checker builds a small BERT tokenizer,
inspects the returned object's settings, names the classic mistakes, and then masks a batch with
it to confirm the behaviour (20% selected, every selected one [MASK]).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from course_lib.exercises.engine import Exercise, Failure, LearnerError, call_learner, register, short_repr

__all__: list[str] = []

PROBABILITY = 0.2   # the setting the exercise describes


@functools.lru_cache(maxsize=2)
def _tokenizer(which: int = 0):
    """A small BertTokenizerFast trained on a few sentences (built once; about 0.1 s). Two of them
    (``which`` 0 and 1, different vocabularies): the collator must use the one it is given."""
    from course_lib.frameworks.tokenizers import as_bert_tokenizer, train_wordpiece

    words = ["the", "man", "woman", "went", "to", "park", "store", "he", "she", "fed", "ducks", "played", "football"]
    words = words if which == 0 else words[::-1][:9]
    sentences = [" ".join(words[i:] + words[:i]) + " ." for i in range(len(words))]
    return as_bert_tokenizer(train_wordpiece(sentences, vocab_size=120 if which == 0 else 60))


def _batch(tokenizer) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(tokenizer), (400, 30), generator=g)
    return [{"input_ids": [tokenizer.cls_token_id] + row + [tokenizer.sep_token_id]} for row in ids.tolist()]


def _settings_failure(collator, tokenizer) -> Failure | None:
    from transformers import DataCollatorForLanguageModeling

    if not isinstance(collator, DataCollatorForLanguageModeling):
        return Failure(f"my_collator must return a DataCollatorForLanguageModeling, got {short_repr(collator)}",
                       ("return DataCollatorForLanguageModeling(tokenizer, ...)",))
    if collator.tokenizer is not tokenizer:
        return Failure("the collator does not use the tokenizer it was given",
                       ("pass the tokenizer argument on: DataCollatorForLanguageModeling(tokenizer, ...)",))
    if not collator.mlm:
        return Failure("mlm=False: the collator makes next-word (GPT) labels, not masked-language-model labels",
                       ("leave mlm=True (the default)",))
    if getattr(collator, "whole_word_mask", False):
        return Failure("whole_word_mask=True was not asked for", ("leave whole_word_mask=False (the default)",))
    p = collator.mlm_probability
    if p == 0.15:
        return Failure("mlm_probability is 0.15, the default: the setting selects 20% of the tokens",
                       ("mlm_probability=0.2",))
    if p != PROBABILITY:
        return Failure(f"mlm_probability is {p}, the setting selects 20% of the tokens", ("mlm_probability=0.2",))
    if collator.mask_replace_prob == 0.8 and collator.random_replace_prob == 0.1:
        return Failure("the 80 / 10 / 10 defaults are left: a selected token must always become [MASK]",
                       ("mask_replace_prob=1.0 (and random_replace_prob=0.0)",))
    if collator.mask_replace_prob != 1.0:
        return Failure(f"mask_replace_prob is {collator.mask_replace_prob}: only that share of the selected tokens "
                       "becomes [MASK]", ("mask_replace_prob=1.0: every selected token becomes [MASK]",))
    if collator.random_replace_prob != 0.0:
        return Failure(f"random_replace_prob is {collator.random_replace_prob}: the setting has no random tokens "
                       "(it does nothing once mask_replace_prob is 1, but it says something else)",
                       ("random_replace_prob=0.0",))
    return None


def _collator_checker(fn: Callable) -> Failure | None:
    for which in (0, 1):   # two tokenizers: a collator built on a fixed one is caught
        tokenizer = _tokenizer(which)
        try:
            collator = call_learner(fn, tokenizer)
        except LearnerError as e:
            text = e.one_line()
            if "mlm_probability" in text:
                return Failure(f"your function raised {text}", ("mlm_probability is a share in [0, 1] (0.2), "
                                                                "not a percentage",))
            if "sum of mask_replace_prob" in text:
                return Failure(f"your function raised {text}", ("mask_replace_prob + random_replace_prob must not "
                                                                "exceed 1: set random_replace_prob=0.0 too",))
            raise  # check() reports it in one line
        failure = _settings_failure(collator, tokenizer)
        if failure is not None:
            return failure
        # the behaviour, measured on 12,000 ordinary tokens: 20% selected, every selected one [MASK]
        torch.manual_seed(0)
        batch = collator(_batch(tokenizer))
        selected = batch["labels"] != -100
        share = selected[:, 1:-1].float().mean().item()
        if selected[:, 0].any() or selected[:, -1].any():
            return Failure("the collator selected [CLS] or [SEP]: special tokens must never be selected")
        if abs(share - PROBABILITY) > 0.02 or not (batch["input_ids"][selected] == tokenizer.mask_token_id).all():
            return Failure(f"masking a batch selected {share:.1%} of the tokens, or left some selected tokens unmasked")
    return None


register(Exercise(
    name="collator_setting",
    signature="my_collator(tokenizer) -> DataCollatorForLanguageModeling",
    checker=_collator_checker,
    hints=(
        "DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=..., ...): the share of tokens selected "
        "is mlm_probability, a number in [0, 1].",
        "What a selected token becomes: mask_replace_prob (default 0.8) of them [MASK], random_replace_prob "
        "(default 0.1) a random token, the rest unchanged.",
        "Always [MASK]: mask_replace_prob=1.0 and random_replace_prob=0.0.",
    ),
    solution=(
        "from transformers import DataCollatorForLanguageModeling\n\n"
        "def collator_setting(tokenizer):\n"
        "    return DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.2,\n"
        "                                           mask_replace_prob=1.0, random_replace_prob=0.0)\n"
    ),
))
