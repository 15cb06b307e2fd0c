"""Tests of course_lib.data.ceilings: the exact MLM and NSP ceilings of the story world (notebook 04)."""

import math
import random

import pytest

from course_lib.bert import make_nsp_pairs
from course_lib.data import ceilings as C
from course_lib.data.stories import FEELINGS, generate_story

# two one-sentence-pair documents: hand-computed ceilings below
TINY = [(("p", "q"), 0.5), (("r", "s"), 0.5)]
# one document: every NotNext B comes from a copy of the same story
ONE = [(("a b", "c d"), 1.0)]


def test_the_enumeration_is_the_generator():
    docs = C.story_documents()
    assert len(docs) == len({s for s, _ in docs}) == 82944
    assert math.isclose(math.fsum(p for _, p in docs), 1.0, abs_tol=1e-9)
    prob = dict(docs)
    rng = random.Random(5)
    for _ in range(300):
        story = generate_story(rng)
        assert math.isclose(prob[story.sentences], math.exp(story.log_prob), rel_tol=1e-9)


def test_hand_computed_tiny_ceilings():
    # NSP: for A = p, P(p, q, IsNext) = 1/4 beats P(p, q, NotNext) = 1/16; the three other B are NotNext
    # (1/16 each): 1/4 + 3/16 = 7/16 for A = p, the same for A = r.
    assert math.isclose(C.nsp_ceiling(TINY), 14 / 16)
    # MLM: P(p, q) = 5/16, P(p, x) = 1/16 for x in (p, r, s), likewise for r. Masking A: context B = q or s
    # gives 5/16 each, B = p or r 1/16 each; masking B: A = p or r gives 5/16 each. 22/16 over 2 words a pair.
    assert math.isclose(C.mlm_ceiling(TINY), 22 / 32)
    assert math.isclose(C.nsp_ceiling(ONE), 0.75)
    assert math.isclose(C.mlm_ceiling(ONE), 1.0)


def test_loss_floors():
    # TINY, A = p: B = q is IsNext with posterior (1/4) / (1/4 + 1/16) = 0.8; every other B is surely NotNext
    assert math.isclose(C.nsp_loss_floor(TINY), -2 * (0.25 * math.log(0.8) + 0.0625 * math.log(0.2)))
    assert math.isclose(C.mlm_loss_floor(ONE), 0.0, abs_tol=1e-12)   # every blank is decided: no uncertainty left
    # TINY, masking A with B = q: p with 5/16, r with 1/16; B = p: p and r 1/16 each (same for s, r); masking B
    # with A = p: q 5/16, p, r, s 1/16 each (same for A = r)
    h = lambda *ps: -sum(p * math.log(p / sum(ps)) for p in ps)
    expected = (2 * h(5 / 16, 1 / 16) + 2 * h(1 / 16, 1 / 16) + 2 * h(5 / 16, 1 / 16, 1 / 16, 1 / 16)) / 2
    assert math.isclose(C.mlm_loss_floor(TINY), expected)
    assert 0 < C.nsp_loss_floor() < math.log(2) and 0 < C.mlm_loss_floor() < 1


def test_rules_are_scored_exactly():
    assert math.isclose(C.nsp_accuracy_of(lambda a, b: True), 0.5)
    assert math.isclose(C.nsp_accuracy_of(lambda a, b: False), 0.5)
    ceiling = C.nsp_ceiling()
    assert math.isclose(C.nsp_accuracy_of(C.nsp_bayes_rule), ceiling)
    pronoun = C.nsp_accuracy_of(lambda a, b: C.surface_rule(a, b, ("pronoun",)))
    assert math.isclose(pronoun, 0.75)  # as many "he" as "she" people: a NotNext B disagrees half of the time
    both = C.nsp_accuracy_of(C.surface_rule)
    assert pronoun < both < ceiling < 1


def test_ceiling_and_rules_hold_on_pairs_the_code_draws():
    rng = random.Random(0)
    stories = [generate_story(rng) for _ in range(4000)]
    pairs = make_nsp_pairs([s.sentences for s in stories], generator=random.Random(1))
    for rule, exact in ((C.nsp_bayes_rule, C.nsp_ceiling()), (C.surface_rule, C.nsp_accuracy_of(C.surface_rule))):
        measured = sum(rule(a, b) == is_next for a, b, is_next in pairs) / len(pairs)
        assert abs(measured - exact) < 0.01, (rule.__name__, measured, exact)


def test_surface_rule_on_constructed_pairs():
    assert C.surface_rule("the man went to the park .", "he fed the ducks .")
    assert not C.surface_rule("the man went to the park .", "she fed the ducks .")   # pronoun
    assert not C.surface_rule("he found a coin .", "he smiled .")                      # order: event, then reaction
    assert not C.surface_rule("he smiled .", "the man went to the store .")            # an arrival never follows
    # the surface cues cannot see the mood; the Bayes rule can
    assert C.surface_rule("he found a coin .", "he felt so sad .")
    assert not C.nsp_bayes_rule("he found a coin .", "he felt so sad .")
    assert C.nsp_bayes_rule("he found a coin .", "he felt so glad .")
    assert C.sentence_slot("she read a book about owls . owls hunt at night .") == "activity"
    assert C.sentence_pronoun("anna went to the school .") == "she"


def test_mlm_ceiling_between_chance_and_one():
    word, share = C.mlm_majority_baseline()
    assert word == "." and share < C.mlm_ceiling() < 1
    _, tiny_share = C.mlm_majority_baseline(TINY)
    assert tiny_share < C.mlm_ceiling(TINY)


def test_blank_is_decided_by_the_right_context_only_bidirectionally():
    happy = set(FEELINGS["happy"])
    a = "he felt very [MASK] ."
    sad_side = C.blank_distribution(a, "he cried .")
    happy_side = C.blank_distribution(a, "he smiled .")
    for dist in (sad_side, happy_side):
        assert math.isclose(sum(dist.values()), 1.0)
    assert sum(v for w, v in happy_side.items() if w in happy) > 0.9
    assert sum(v for w, v in sad_side.items() if w in happy) < 0.1
    left = C.blank_distribution(a, "he cried .", left_only=True)
    assert left == C.blank_distribution(a, "he smiled .", left_only=True)
    assert math.isclose(sum(v for w, v in left.items() if w in happy), 0.5)
    assert next(iter(C.blank_distribution("he [MASK] a coin .", "he felt so sad ."))) == "found"


@pytest.mark.parametrize("call, error, words", [
    (lambda: C.nsp_ceiling("p q"), TypeError, "documents"),
    (lambda: C.nsp_ceiling([(("p", "q"), 0.4)]), ValueError, "sum to 1"),
    (lambda: C.nsp_ceiling([(("p",), 1.0)]), ValueError, "two or more sentences"),
    (lambda: C.mlm_ceiling([(["p", "q"], 1.0)]), TypeError, "documents[0]"),
    (lambda: C.sentence_slot("he flew to the moon ."), ValueError, "sentence"),
    (lambda: C.surface_rule("he smiled .", "he cried .", cues=("mood",)), ValueError, "cues"),
    (lambda: C.surface_rule("he smiled .", 3), TypeError, "b must be"),
    (lambda: C.nsp_accuracy_of(lambda a, b: 1), TypeError, "bool"),
    (lambda: C.nsp_accuracy_of("surface"), TypeError, "rule"),
    (lambda: C.nsp_posterior("he smiled .", "he flew to the moon ."), ValueError, "never occurs"),
    (lambda: C.blank_distribution("he [MASK] [MASK] .", "he cried ."), ValueError, "exactly one"),
    (lambda: C.blank_distribution("he [MASK] a unicorn .", "he cried ."), ValueError, "never occurs"),
    (lambda: C.blank_distribution("he [MASK] a coin .", "he cried .", left_only=1), TypeError, "left_only"),
])
def test_bad_arguments_are_refused_by_name(call, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[")):
        call()
