"""The exercises of notebook 03 (GPT): ``gpt_combined_loss``, the fine-tuning loss L3 = L2 + λ L1;
``lm_inputs_and_targets``, the shifted pair of L1; ``next_token_distribution``, temperature and top-k;
``last_token_states``, the state of each row's last real token.

Importing this module registers them.
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


# ---------------------------------------------------------------------------
# lm_inputs_and_targets (notebook 03): the shifted pair of the language-model objective L1
# ---------------------------------------------------------------------------

def _shift_reference(token_ids):
    return token_ids[:, :-1], token_ids[:, 1:]


def _shift_cases(g: torch.Generator) -> list[Case]:
    def case(B, T1, note=""):
        ids = torch.randint(0, 50, (B, T1), generator=g)
        return Case(f"token_ids ({B}, {T1})", (ids,), note)

    return [case(3, 6), case(4, 4, "B = T + 1 here: check which axis you cut"), case(1, 2), case(2, 9)]


_SHIFT_MISTAKES = [
    Mistake("the targets are the inputs themselves (no shift): the model would learn to copy its input",
            "The target at position t is the NEXT token: inputs = token_ids[:, :-1], targets = token_ids[:, 1:].",
            variants=(lambda ids: (ids[:, :-1], ids[:, :-1]), lambda ids: (ids[:, 1:], ids[:, 1:]),
                      lambda ids: (ids, ids))),
    Mistake("the shift goes the wrong way: the targets are the PREVIOUS tokens, not the next ones",
            "inputs drop the last token (token_ids[:, :-1]); targets drop the first (token_ids[:, 1:]).",
            variants=(lambda ids: (ids[:, 1:], ids[:, :-1]),)),
    Mistake("the cut is along the batch axis (rows), not along the sequence (columns)",
            "token_ids is (B, T + 1): slice the second axis, token_ids[:, :-1] and token_ids[:, 1:].",
            variants=(lambda ids: (ids[:-1], ids[1:]), lambda ids: (ids[1:], ids[:-1]))),
]

_SHIFT_SOLUTION = '''\
def lm_inputs_and_targets(token_ids):
    # token_ids (B, T + 1): the model reads tokens 0..T-1 and, at each position t, predicts token t + 1
    inputs = token_ids[:, :-1]    # drop the last token: nothing comes after it to predict
    targets = token_ids[:, 1:]    # drop the first token: it is never a "next" token
    return inputs, targets
'''

register(
    Exercise(
        name="lm_inputs_and_targets",
        signature="lm_inputs_and_targets(token_ids (B, T+1) long) -> (inputs (B, T), targets (B, T))",
        checker=OutputChecker(
            outputs=("inputs", "targets"),
            reference=_shift_reference,
            make_cases=_shift_cases,
            mistakes=_SHIFT_MISTAKES,
            check_dtype=True,
        ),
        hints=(
            "L1 sums log P(u_i | u_1 .. u_{i-1}): the model reads tokens up to position t and is scored on the "
            "token at t + 1. So targets are the inputs moved one step to the left.",
            "From T + 1 tokens you get T (input, target) pairs: the inputs lose the last token, the targets the "
            "first one.",
            "Slice the sequence axis (the second one): token_ids[:, :-1] and token_ids[:, 1:].",
        ),
        solution=_SHIFT_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# next_token_distribution (notebook 03): temperature and top-k before sampling
# ---------------------------------------------------------------------------

def _keep_top(scaled, top_k):
    """scaled with -inf outside its top_k entries (ties as torch.topk breaks them)."""
    if top_k is None:
        return scaled
    keep = torch.topk(scaled, top_k).indices
    out = torch.full_like(scaled, float("-inf"))
    out[keep] = scaled[keep]
    return out


def _next_token_reference(logits, temperature, top_k):
    return (torch.softmax(_keep_top(logits / temperature, top_k), dim=-1),)


def _zero_outside(p, logits, k):
    if k is None:
        return p
    out = torch.zeros_like(p)
    keep = torch.topk(logits, max(k, 1)).indices if k >= 1 else torch.tensor([], dtype=torch.long)
    out[keep] = p[keep]
    return out


def _next_token_wrong(logits, temperature, top_k, *, mistake):
    V = logits.shape[-1]
    if mistake == "times":
        return (torch.softmax(_keep_top(logits * temperature, top_k), dim=-1),)
    if mistake == "power_after":           # p ** (1/T) after the softmax, never renormalised
        return (_zero_outside(torch.softmax(logits, -1) ** (1 / temperature), logits, top_k),)
    if mistake == "power_after_topk_renorm":  # renormalised only when top-k cuts
        p = _zero_outside(torch.softmax(logits, -1) ** (1 / temperature), logits, top_k)
        return (p / p.sum() if top_k is not None else p,)
    if mistake == "divide_after":
        return (_zero_outside(torch.softmax(logits, -1) / temperature, logits, top_k),)
    if mistake == "not_renormalised":
        return (_zero_outside(torch.softmax(logits / temperature, -1), logits, top_k),)
    if mistake in ("k_plus", "k_minus"):
        if top_k is None:
            return _next_token_reference(logits, temperature, top_k)
        k = top_k + 1 if mistake == "k_plus" else top_k - 1
        k = min(k, V)
        scaled = logits / temperature
        if k == 0:
            return (torch.softmax(torch.full_like(scaled, float("-inf")), -1),)
        return (torch.softmax(_keep_top(scaled, k), dim=-1),)
    if mistake == "argmax":
        return (F.one_hot(logits.argmax(), V).to(logits.dtype),)
    if mistake == "exp":
        e = torch.exp(_keep_top(logits / temperature, top_k))
        return (e / e.sum(),)
    raise ValueError(mistake)


def _next_token_cases(g: torch.Generator) -> list[Case]:
    def case(V, temperature, top_k, scale=2.0, note=""):
        logits = torch.randn(V, generator=g) * scale
        return Case(f"logits ({V},), temperature={temperature}, top_k={top_k}", (logits, temperature, top_k), note)

    return [
        case(10, 0.5, None, note="temperature 0.5 and no top-k: the result must still sum to 1"),
        case(10, 2.0, 3),
        case(12, 1.0, None),
        case(8, 0.7, 1),
        case(9, 1.5, 9, note="top_k = V keeps every token"),
        case(50, 0.8, 5),
        case(16, 0.5, None, scale=40.0, note="large logits: exp overflows unless the maximum is subtracted first"),
    ]


_NEXT_TOKEN_MISTAKES = [
    Mistake("the logits are MULTIPLIED by the temperature: below 1 that flattens instead of sharpening",
            "Divide: softmax(logits / temperature).",
            variants=(partial(_next_token_wrong, mistake="times"),)),
    Mistake("the temperature is applied after the softmax (p ** (1/T)) and the result is not renormalised: "
            "it no longer sums to 1",
            "Apply it to the logits before the softmax: softmax(logits / temperature) sums to 1 by itself.",
            variants=(partial(_next_token_wrong, mistake="power_after"),
                      partial(_next_token_wrong, mistake="power_after_topk_renorm"))),
    Mistake("the probabilities are divided by the temperature after the softmax: they no longer sum to 1",
            "The temperature divides the LOGITS: softmax(logits / temperature).",
            variants=(partial(_next_token_wrong, mistake="divide_after"),)),
    Mistake("top-k zeroes the other tokens but does not renormalise: the k kept probabilities do not sum to 1",
            "Set the other logits to -inf BEFORE the softmax (or divide the kept probabilities by their sum).",
            variants=(partial(_next_token_wrong, mistake="not_renormalised"),)),
    Mistake("top-k keeps k + 1 tokens", "Keep exactly the k largest: torch.topk(scaled, top_k).indices.",
            variants=(partial(_next_token_wrong, mistake="k_plus"),)),
    Mistake("top-k keeps k - 1 tokens (a `<=` where `<` was meant, or a slice one short?)",
            "Keep exactly the k largest: torch.topk(scaled, top_k).indices, or mask only logits < the k-th largest.",
            variants=(partial(_next_token_wrong, mistake="k_minus"),)),
    Mistake("this is a one-hot argmax (greedy decoding), not a distribution to sample from",
            "Return the whole softmax(logits / temperature), with only the tokens outside the top k set to 0.",
            variants=(partial(_next_token_wrong, mistake="argmax"),)),
    Mistake("exp overflows on large logits (inf / inf = nan)",
            "Use torch.softmax, which subtracts the maximum first, or subtract scaled.max() before exp.",
            variants=(partial(_next_token_wrong, mistake="exp"),)),
]

_NEXT_TOKEN_SOLUTION = '''\
import torch


def next_token_distribution(logits, temperature, top_k):
    scaled = logits / temperature                      # T < 1 sharpens, T > 1 flattens
    if top_k is not None:
        keep = torch.topk(scaled, top_k).indices       # the k most likely tokens
        cut = torch.full_like(scaled, float("-inf"))   # exp(-inf) = 0: the others get probability 0
        cut[keep] = scaled[keep]
        scaled = cut
    return torch.softmax(scaled, dim=-1)               # renormalises over what is left
'''

register(
    Exercise(
        name="next_token_distribution",
        signature="next_token_distribution(logits (V,), temperature > 0, top_k int or None) -> probs (V,)",
        checker=OutputChecker(
            outputs=("probs",),
            reference=_next_token_reference,
            make_cases=_next_token_cases,
            mistakes=_NEXT_TOKEN_MISTAKES,
        ),
        hints=(
            "The temperature divides the scores before the softmax: softmax(logits / temperature). "
            "Top-k then keeps only the k most likely tokens and gives all the others probability 0.",
            "Do the cut on the scaled logits, before the softmax: set every logit outside the top k to -inf, "
            "and the softmax renormalises the k that are left by itself.",
            "torch.topk(scaled, top_k).indices gives the k positions to keep; torch.full_like(scaled, "
            "float('-inf')) is a starting point for the cut logits. With top_k None, skip the cut.",
        ),
        solution=_NEXT_TOKEN_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# last_token_states (notebook 03): the state of each row's last real token, for W_y
# ---------------------------------------------------------------------------

def _last_reference(h, lengths):
    return (h[torch.arange(h.shape[0]), lengths - 1],)


def _masked_mean(h, lengths):
    real = (torch.arange(h.shape[1])[None, :] < lengths[:, None]).to(h.dtype)   # (B, T)
    return ((h * real[..., None]).sum(1) / real.sum(1, keepdim=True),)


def _last_cases(g: torch.Generator) -> list[Case]:
    def case(B, T, d, lengths, note=""):
        h = torch.randn(B, T, d, generator=g)
        return Case(f"h ({B}, {T}, {d}), lengths {lengths}", (h, torch.tensor(lengths)), note)

    return [
        case(3, 5, 4, [2, 4, 3], "every row is padded here"),
        case(4, 6, 6, [6, 1, 3, 6], "rows of full length and a row of length 1"),
        case(5, 5, 5, [5, 2, 4, 1, 3], "B = T = d here"),
        case(1, 1, 3, [1]),
    ]


_LAST_MISTAKES = [
    Mistake("h[:, -1] reads the last POSITION, which is padding in a padded row",
            "Read each row at its own last real token: h[torch.arange(B), lengths - 1].",
            variants=(lambda h, lengths: (h[:, -1],),)),
    Mistake("off by one: position lengths[b] is the first padding position; the last real token is at lengths[b] - 1",
            "Positions count from 0: h[torch.arange(B), lengths - 1].",
            variants=(lambda h, lengths: (h[torch.arange(h.shape[0]), lengths],),)),
    Mistake("this is mean pooling; GPT classifies from the last real token's state (it alone has read the whole text)",
            "Take one position per row: h[torch.arange(B), lengths - 1].",
            variants=(lambda h, lengths: (h.mean(1),), _masked_mean)),
    Mistake("this reads the first token: BERT's [CLS] sits there, but in GPT the first position has read only itself",
            "Read each row's last real token: h[torch.arange(B), lengths - 1].",
            variants=(lambda h, lengths: (h[:, 0],),)),
    Mistake("h[:, lengths - 1] takes every row's position for every row: (B, B, d) instead of (B, d)",
            "Pair row b with position lengths[b] - 1: h[torch.arange(B), lengths - 1].",
            variants=(lambda h, lengths: (h[:, lengths - 1],),), by_shape=True),
]

_LAST_SOLUTION = '''\
import torch


def last_token_states(h, lengths):
    B = h.shape[0]
    rows = torch.arange(B)             # row b ...
    return h[rows, lengths - 1]        # ... at its last real token, position lengths[b] - 1: (B, d)
'''

register(
    Exercise(
        name="last_token_states",
        signature="last_token_states(h (B, T, d), lengths (B,) long) -> (B, d)",
        checker=OutputChecker(
            outputs=("states",),
            reference=_last_reference,
            make_cases=_last_cases,
            mistakes=_LAST_MISTAKES,
        ),
        hints=(
            "Row b has lengths[b] real tokens; the rest of the row is padding. Behind the causal mask only the "
            "last real token has read the whole text, so that is the state to return for row b.",
            "Positions count from 0, so row b's last real token is at position lengths[b] - 1, not lengths[b] "
            "and not -1 (that is padding in a short row).",
            "Index two axes at once with two index tensors of length B: h[torch.arange(B), lengths - 1].",
        ),
        solution=_LAST_SOLUTION,
    )
)
