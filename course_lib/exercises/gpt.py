"""The exercise of notebook 03 (GPT): ``gpt_combined_loss``, the fine-tuning loss L3 = L2 + λ L1.

Importing this module registers it.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from course_lib.batching import IGNORE_INDEX
from course_lib.exercises.engine import Case, Exercise, Mistake, register
from course_lib.exercises.output_checker import OutputChecker


# ---------------------------------------------------------------------------
# gpt_combined_loss (notebook 03): L3 = L2 + λ L1
# ---------------------------------------------------------------------------

def _combined_reference(class_logits, labels, lm_logits, lm_targets, lam):
    l2 = F.cross_entropy(class_logits, labels)
    l1 = F.cross_entropy(lm_logits.reshape(-1, lm_logits.shape[-1]), lm_targets.reshape(-1), ignore_index=IGNORE_INDEX)
    return (l2 + lam * l1,)


def _combined_wrong(class_logits, labels, lm_logits, lm_targets, lam, *, mistake):
    V = lm_logits.shape[-1]
    flat_logits, flat_targets = lm_logits.reshape(-1, V), lm_targets.reshape(-1)
    l2 = F.cross_entropy(class_logits, labels)
    l1 = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE_INDEX)
    if mistake == "swapped":
        return (lam * l2 + l1,)
    if mistake == "no_lambda":
        return (l2 + l1,)
    if mistake == "likelihood":  # the notes' L1 is a log-likelihood (to maximise); the loss is its negative
        return (l2 - lam * l1,)
    if mistake == "sum":
        return (l2 + lam * F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE_INDEX, reduction="sum"),)
    if mistake == "padding_as_token":
        return (l2 + lam * F.cross_entropy(flat_logits, flat_targets.clamp_min(0)),)
    if mistake == "only_l2":
        return (l2,)
    if mistake == "notes_maximised":  # the notes' L3 itself: a log-likelihood, to be maximised
        return (-(l2 + lam * l1),)
    if mistake == "notes_sums":  # the notes' sums over examples and tokens, as negative log-likelihoods
        l2_sum = F.cross_entropy(class_logits, labels, reduction="sum")
        l1_sum = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE_INDEX, reduction="sum")
        return (l2_sum + lam * l1_sum,)
    raise ValueError(mistake)


def _combined_cases(g: torch.Generator) -> list[Case]:
    def case(B, C, T, V, lam, pad, dtype=torch.float32):
        class_logits = torch.randn(B, C, generator=g, dtype=dtype)
        labels = torch.randint(0, C, (B,), generator=g)
        lm_logits = torch.randn(B, T, V, generator=g, dtype=dtype)
        lm_targets = torch.randint(0, V, (B, T), generator=g)
        if pad:  # the last positions of every other row are padding (IGNORE_INDEX), no loss there
            lm_targets[::2, T - pad:] = IGNORE_INDEX
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
    Mistake("this is the notes' L3 itself, L2 + λ·L1 with each L a log-likelihood: a quantity to MAXIMISE. "
            "An optimizer minimises, so the loss is its negative, the cross-entropies (negative log-likelihoods)",
            "Return F.cross_entropy(...) for each term, which is -log P averaged, and add them: l2 + lam * l1.",
            variants=(partial(_combined_wrong, mistake="notes_maximised"),)),
    Mistake("the notes' sums: L2 summed over the examples and L1 over the tokens. The code uses means, and that "
            "changes what λ means: sum-L3 / B = mean-L2 + λ·(N/B)·mean-L1, with N predicted tokens and B "
            "examples, so the notes' λ equals the mean form's λ divided by the tokens per example",
            "Use the means (F.cross_entropy's default reduction) for both terms: l2 + lam * l1.",
            variants=(partial(_combined_wrong, mistake="notes_sums"),)),
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
