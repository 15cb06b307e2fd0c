"""The exercise of notebook 04 (BERT): ``mlm_masking``, the 15% / 80-10-10 masking rule.

Importing this module registers it.
"""

from __future__ import annotations

from typing import Callable

import torch

from course_lib.batching import IGNORE_INDEX
from course_lib.exercises.engine import Exercise, Failure, call_learner, register, short_repr


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


def _mlm_result(result, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | Failure:
    """The learner's (inputs, labels) as CPU tensors, or the Failure that says what is wrong with them."""
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(t, torch.Tensor) for t in result)):
        return Failure("return two tensors, (inputs, labels)",
                       (f"got {type(result).__name__}",))
    inputs, labels = result
    if inputs.shape != ids.shape or labels.shape != ids.shape:
        return Failure("inputs and labels must have the shape of input_ids",
                       (f"input_ids {tuple(ids.shape)}, got inputs {tuple(inputs.shape)} and labels {tuple(labels.shape)}",))
    for name, t in (("inputs", inputs), ("labels", labels)):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            return Failure(f"{name} must hold integer token ids (torch.long), got dtype {t.dtype}",
                           ("Start from input_ids.clone() and torch.where(selected, input_ids, -100): both stay torch.long.",))
        if t.device.type == "meta" or t.layout != torch.strided:
            return Failure(f"{name} must be an ordinary tensor of ids, got {short_repr(t)}")
    return inputs.detach().cpu(), labels.detach().cpu()


def _mlm_checker(fn: Callable) -> Failure | None:
    ids = _mlm_case(torch.Generator().manual_seed(0))
    original = ids.clone()
    result = _mlm_result(
        call_learner(fn, ids, _MLM_VOCAB, _MLM_MASK, list(_MLM_SPECIAL), torch.Generator().manual_seed(1)), ids)
    if isinstance(result, Failure):
        return result
    inputs, labels = result
    if not torch.equal(ids, original):
        return Failure("input_ids was changed in place: work on a copy",
                       ("inputs = input_ids.clone(), then change inputs.",))
    selected = labels != IGNORE_INDEX
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
    small_result = _mlm_result(
        call_learner(fn, small, 110, _MLM_MASK, list(_MLM_SPECIAL), torch.Generator().manual_seed(3)), small)
    if isinstance(small_result, Failure):
        return Failure(f"with another vocabulary (110 ids): {small_result.summary}", small_result.details)
    small_inputs, _ = small_result
    if torch.isin(small_inputs[small_inputs != small], torch.tensor([i for i in _MLM_SPECIAL if i != _MLM_MASK])).any():
        return Failure("a random replacement is a special token: draw replacements among the ordinary tokens",
                       ("e.g. pick from [i for i in range(vocab_size) if i not in special_token_ids].",))
    again = _mlm_result(
        call_learner(fn, ids, _MLM_VOCAB, _MLM_MASK, list(_MLM_SPECIAL), torch.Generator().manual_seed(1)), ids)
    if isinstance(again, Failure) or not all(torch.equal(a, b) for a, b in zip(result, again)):
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
