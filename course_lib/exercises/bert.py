"""The exercises of notebook 04 (BERT): ``mlm_masking``, the 15% / 80-10-10 masking rule; ``bert_input``,
the [CLS] A [SEP] B [SEP] layout and its segment ids; ``wordpiece``, greedy longest-match-first.

Importing this module registers them.
"""

from __future__ import annotations

import contextlib
import copy
import io
from functools import partial
from typing import Callable

import torch

from course_lib.batching import IGNORE_INDEX
from course_lib.exercises.engine import (Exercise, Failure, LearnerError, NotAttempted, call_learner, register,
                                         short_repr, shorten)


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


# ---------------------------------------------------------------------------
# A small checker for exercises whose results are Python lists (bert_input, wordpiece)
# ---------------------------------------------------------------------------

class _ListMistake:
    """A classic mistake: ``problem`` and ``fix`` are shown when the learner's result equals ``variant``'s."""

    def __init__(self, problem: str, fix: str, *variants: Callable):
        self.problem, self.fix, self.variants = problem, fix, variants


def _run_quietly(variant: Callable, args: tuple):
    try:
        return variant(*copy.deepcopy(args))
    except Exception:
        return _FAILED


_FAILED = object()


def _list_checker(cases, reference, validate, mistakes, signature, normalise=lambda result: result):
    """A checker comparing the learner's list results with ``reference`` on ``cases`` ((description, args) pairs).

    ``validate(result)`` returns (problem, fix) when the result has the wrong structure (checked first), else
    None; ``normalise`` then turns a valid result into the reference's form (e.g. a list pair into a tuple).
    A mistake is named when its variant gives exactly the learner's (wrong) result on the first failing case,
    or on a later case where the learner is wrong too, if the variant is also wrong on the first failing case.
    """

    def checker(fn: Callable) -> Failure | None:
        results = []
        first = None
        for i, (description, args) in enumerate(cases):
            given = copy.deepcopy(args)
            try:
                result = call_learner(fn, *given)
            except NotAttempted:
                if i == 0:
                    raise
                return Failure("not finished yet — your function raises NotImplementedError for some inputs",
                               (f"On input {description}.",), icon="⏳")
            except LearnerError as err:
                line = err.learner_line()
                at = f" (at `{shorten(line, 60)}`)" if line else ""
                return Failure(f"your function raised {err.one_line()}", (f"On input {description}{at}.",))
            problem = validate(result)
            if problem is not None:
                return Failure(problem[0], (f"On input {description}: got {short_repr(result)}.", problem[1]))
            if given != args:
                return Failure("your function changes its input lists in place",
                               (f"On input {description}: an argument was modified.",
                                "Build new lists (tokens = [...] + ...); do not .append / .insert into the arguments."))
            want = reference(*copy.deepcopy(args))
            results.append(result)
            if normalise(result) != want:
                first = i
                break
        if first is None:
            return None
        for j in range(first, len(cases)):
            description, args = cases[j]
            want = reference(*copy.deepcopy(args))
            if j == first:
                got = results[first]
            else:
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        got = call_learner(fn, *copy.deepcopy(args))
                except (NotAttempted, LearnerError):
                    continue
                if validate(got) is not None or normalise(got) == want:
                    continue
            for mistake in mistakes:
                for variant in mistake.variants:
                    bad = _run_quietly(variant, args)
                    if bad is _FAILED or bad == want or bad != normalise(got):
                        continue
                    first_args = cases[first][1]
                    if j != first and _run_quietly(variant, first_args) == reference(*copy.deepcopy(first_args)):
                        continue
                    return Failure(mistake.problem, (f"On input {description}: expected {short_repr(want, 90)}, "
                                                     f"got {short_repr(normalise(got), 90)}.", mistake.fix))
        description, args = cases[first]
        want = reference(*copy.deepcopy(args))
        return Failure("wrong result", (f"On input {description}: expected {short_repr(want, 90)}, "
                                        f"got {short_repr(normalise(results[first]), 90)}.",
                                        f"Expected: {signature}."))

    return checker


# ---------------------------------------------------------------------------
# bert_input (notebook 04): [CLS] A [SEP] B [SEP] and the segment ids
# ---------------------------------------------------------------------------

def _bert_input_reference(tokens_a, tokens_b):
    tokens = ["[CLS]"] + list(tokens_a) + ["[SEP]"]
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens += list(tokens_b) + ["[SEP]"]
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


def _bert_input_wrong(tokens_a, tokens_b, *, mistake):
    tokens, segments = _bert_input_reference(tokens_a, tokens_b)
    if mistake == "sep_in_b":
        n_a = len(tokens_a) + 1                       # [CLS] A in segment 0, the first [SEP] in segment 1
        return tokens, [0] * n_a + [1] * (len(tokens) - n_a) if tokens_b is not None else segments
    if mistake == "no_final_sep":
        if tokens_b is None:
            return tokens[:-1], segments[:-1]
        return tokens[:-1], segments[:-1]
    if mistake == "no_final_sep_pair":
        return (tokens[:-1], segments[:-1]) if tokens_b is not None else (tokens, segments)
    if mistake == "no_cls":
        return tokens[1:], segments[1:]
    if mistake == "one_two":
        return tokens, [s + 1 for s in segments]
    if mistake == "empty_is_none":
        return _bert_input_reference(tokens_a, tokens_b or None)
    raise ValueError(mistake)


def _bert_input_validate(result):
    if result is None:
        return ("your function returned None — did you forget `return tokens, segment_ids`?",
                "Return the two lists as a pair.")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return ("return two lists, (tokens, segment_ids)", "e.g. return tokens, segment_ids")
    tokens, segments = result
    if isinstance(segments, torch.Tensor) or isinstance(tokens, torch.Tensor):
        return ("return plain Python lists, not tensors", "A tensor becomes a list with .tolist().")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        return ("tokens must be a list of str", "e.g. ['[CLS]'] + tokens_a + ['[SEP]']")
    if not isinstance(segments, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in segments):
        return ("segment_ids must be a list of int", "e.g. [0] * (len(tokens_a) + 2)")
    return None


_BERT_INPUT_CASES = [
    ("tokens_a ['the', 'man', 'went'], tokens_b ['he', 'bought']", (["the", "man", "went"], ["he", "bought"])),
    ("tokens_a ['penguin', '##s'], tokens_b None (one sentence)", (["penguin", "##s"], None)),
    ("tokens_a ['a', 'b', 'c', 'd'], tokens_b ['e']", (["a", "b", "c", "d"], ["e"])),
    ("tokens_a ['hello'], tokens_b [] (a pair with an empty B)", (["hello"], [])),
    ("tokens_a [], tokens_b ['x', 'y']", ([], ["x", "y"])),
]

_BERT_INPUT_MISTAKES = [
    _ListMistake("the first [SEP] is in segment 1: it closes sentence A, so it belongs to segment 0",
                 "Segment 0 covers [CLS] A [SEP]; segment 1 covers B [SEP].",
                 partial(_bert_input_wrong, mistake="sep_in_b")),
    _ListMistake("an empty B ([]) is treated like no B (None): [] is still a pair, and gets its closing [SEP]",
                 "Test `if tokens_b is not None`, not `if tokens_b` (an empty list is falsy).",
                 partial(_bert_input_wrong, mistake="empty_is_none")),
    _ListMistake("the final [SEP] is missing: every sentence ends with [SEP], B too",
                 "[CLS] A [SEP], then B [SEP] when there is a B.",
                 partial(_bert_input_wrong, mistake="no_final_sep"),
                 partial(_bert_input_wrong, mistake="no_final_sep_pair")),
    _ListMistake("[CLS] is missing at the start: its final vector is what classification and NSP read",
                 "Start with '[CLS]' (segment 0).",
                 partial(_bert_input_wrong, mistake="no_cls")),
    _ListMistake("the segments are numbered 1 and 2: BERT numbers them 0 (A) and 1 (B), the rows of its segment "
                 "embedding table",
                 "Use 0 for [CLS] A [SEP] and 1 for B [SEP].",
                 partial(_bert_input_wrong, mistake="one_two")),
]

_BERT_INPUT_SOLUTION = '''\
def bert_input(tokens_a, tokens_b):
    tokens = ["[CLS]"] + list(tokens_a) + ["[SEP]"]      # segment 0: [CLS] A [SEP]
    segment_ids = [0] * len(tokens)
    if tokens_b is not None:                               # [] is a pair with an empty B
        tokens += list(tokens_b) + ["[SEP]"]               # segment 1: B [SEP]
        segment_ids += [1] * (len(tokens_b) + 1)
    return tokens, segment_ids
'''

register(
    Exercise(
        name="bert_input",
        signature="bert_input(tokens_a: list[str], tokens_b: list[str] | None) -> (tokens: list[str], "
                  "segment_ids: list[int])",
        checker=_list_checker(_BERT_INPUT_CASES, _bert_input_reference, _bert_input_validate,
                              _BERT_INPUT_MISTAKES,
                              "bert_input(tokens_a, tokens_b) -> (tokens, segment_ids), two lists",
                              normalise=lambda result: (list(result[0]), list(result[1]))),
        hints=(
            "The layout is [CLS] A [SEP] for one sentence and [CLS] A [SEP] B [SEP] for a pair; segment_ids has "
            "one number per token.",
            "Segment 0 runs up to and including the first [SEP]; everything after it (B and the last [SEP]) is "
            "segment 1.",
            "tokens = ['[CLS]'] + tokens_a + ['[SEP]'] and segment_ids = [0] * len(tokens); then, only if "
            "tokens_b is not None (an empty list is still a pair), add tokens_b + ['[SEP]'] with 1s.",
        ),
        solution=_BERT_INPUT_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# wordpiece (notebook 04): greedy longest-match-first
# ---------------------------------------------------------------------------

_MAX_WORD = 100   # BERT's rule: a longer word is [UNK] at once


def _wordpiece_reference(word, vocab, unk="[UNK]", *, shortest=False, no_hashes=False, hashes_first=False,
                         partial_unk=False, skip_unk=False, long_rule=True, fixed_unk=False):
    if fixed_unk:
        unk = "[UNK]"
    if long_rule and len(word) > _MAX_WORD:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        ends = range(start + 1, len(word) + 1) if shortest else range(len(word), start, -1)
        piece = None
        for end in ends:
            candidate = word[start:end]
            if (start > 0 or hashes_first) and not no_hashes:
                candidate = "##" + candidate
            if candidate in vocab:
                piece = candidate
                break
        if piece is None:
            if partial_unk:
                return pieces + [unk]
            if skip_unk:
                pieces.append(unk)
                start += 1
                continue
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


_WP_VOCAB = {"flight", "##flight", "fl", "f", "##l", "##g", "##h", "##t", "##e", "##ight", "##i", "##less", "##le",
             "##ss", "##s", "less", "un", "u",
             "##aff", "##able", "##a", "##ab", "play", "##ing", "ing", "bird", "birds", "##bird", "a", "[UNK]"}

_WP_CASES = [
    ("word 'flightless'", ("flightless", set(_WP_VOCAB), "[UNK]")),
    ("word 'unaffable'", ("unaffable", set(_WP_VOCAB), "[UNK]")),
    ("word 'flightx' (no piece covers the 'x')", ("flightx", set(_WP_VOCAB), "[UNK]")),
    ("word 'playing'", ("playing", set(_WP_VOCAB), "[UNK]")),
    ("word 'less'", ("less", set(_WP_VOCAB), "[UNK]")),
    ("word 'birds'", ("birds", set(_WP_VOCAB), "[UNK]")),
    ("word 'zebra', unk '<unk>'", ("zebra", set(_WP_VOCAB), "<unk>")),
    ("the empty word ''", ("", set(_WP_VOCAB), "[UNK]")),
    ("a word of 101 letters 'aaa…a'", ("a" * 101, set(_WP_VOCAB), "[UNK]")),
]

_WP_MISTAKES = [
    _ListMistake("shortest match first: WordPiece takes the LONGEST vocabulary entry at each step",
                 "At each start, try end = len(word), len(word) - 1, ... and keep the first entry found.",
                 partial(_wordpiece_reference, shortest=True)),
    _ListMistake("the continuation pieces lack the '##' prefix: inside a word the vocabulary's entries are '##...'",
                 "Look up '##' + word[start:end] for every piece after the first.",
                 partial(_wordpiece_reference, no_hashes=True)),
    _ListMistake("the first piece got '##': '##' marks a piece that CONTINUES a word, the first piece has none",
                 "Add '##' only when start > 0.",
                 partial(_wordpiece_reference, hashes_first=True)),
    _ListMistake("a partial result: when one part cannot be matched, the WHOLE word becomes [unk]",
                 "As soon as no entry matches at some start, return [unk] (not the pieces found so far).",
                 partial(_wordpiece_reference, partial_unk=True),
                 partial(_wordpiece_reference, skip_unk=True)),
    _ListMistake("a word longer than 100 characters must become [unk] at once (BERT's rule)",
                 "Start with: if len(word) > 100: return [unk].",
                 partial(_wordpiece_reference, long_rule=False)),
    _ListMistake("the unk argument is ignored: an unknown word must become [unk], the string the caller passed",
                 "Return [unk], not ['[UNK]'].",
                 partial(_wordpiece_reference, fixed_unk=True)),
]


def _wordpiece_validate(result):
    if result is None:
        return ("your function returned None — did you forget `return pieces`?", "Return the list of pieces.")
    if isinstance(result, str):
        return ("return a list of str, not one str", "e.g. ['flight', '##less'], or [unk] for an unknown word")
    if not isinstance(result, list) or not all(isinstance(p, str) for p in result):
        return ("return a list of str", "e.g. ['flight', '##less'], or [unk] for an unknown word")
    return None


_WORDPIECE_SOLUTION = '''\
def wordpiece(word, vocab, unk="[UNK]"):
    if len(word) > 100:                        # BERT's rule for very long words
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:                     # the longest entry that matches here
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:                       # nothing matches: the whole word is unknown
            return [unk]
        pieces.append(piece)
        start = end
    return pieces
'''

register(
    Exercise(
        name="wordpiece",
        signature='wordpiece(word: str, vocab: set[str], unk="[UNK]") -> list[str]',
        checker=_list_checker(_WP_CASES, _wordpiece_reference, _wordpiece_validate, _WP_MISTAKES,
                              'wordpiece(word, vocab, unk="[UNK]") -> list of pieces'),
        hints=(
            "Greedy longest-match-first: from the start of the word, take the LONGEST prefix that is in vocab; "
            "then continue from where it ended, and so on until the word is used up.",
            "A piece that continues the word is looked up with '##' in front ('flightless' -> 'flight', '##less'); "
            "the first piece has no '##'. If at some point no piece matches, the whole word is [unk].",
            "Two loops: `while start < len(word)`, and inside it try end = len(word), len(word) - 1, ..., start + 1 "
            "until the piece is in vocab. Also: '' gives [] and a word over 100 characters gives [unk].",
        ),
        solution=_WORDPIECE_SOLUTION,
    )
)
