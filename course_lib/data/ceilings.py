"""Ceilings of notebook 04's pretraining tasks, computed exactly from the story grammar.

The story world (:mod:`course_lib.data.stories`) is a finite grammar with known probabilities,
so the best accuracy *any* model can reach on MLM and NSP can be computed rather than guessed:

- :func:`story_documents`: every story the generator can write, as (sentences, probability):
  82,944 stories whose probabilities sum to 1.
- :func:`pair_world`: the distribution of the (A, B, is_next) pairs that
  :func:`course_lib.bert.make_nsp_pairs` draws from a large corpus of such stories: IsNext takes
  two consecutive sentences of a story; NotNext keeps A and takes B uniformly among the
  sentences of another story (in the limit of a large corpus, a fresh draw from the generator).
- :func:`nsp_ceiling`: the Bayes-optimal NSP accuracy, sum over (A, B) of
  max(P(A, B, IsNext), P(A, B, NotNext)).  :func:`nsp_accuracy_of` scores any decision rule
  exactly; :func:`surface_rule` is the trivial rule "B's pronoun agrees with A's and B's kind of
  sentence can follow A's".
- :func:`nsp_loss_floor`, :func:`mlm_loss_floor`: the lowest expected losses (cross-entropy), the
  conditional entropies of the label and of the masked word.
- :func:`mlm_ceiling`: the Bayes-optimal accuracy of predicting ONE masked word of a pair from
  all the other words (single-mask); :func:`blank_distribution`: the exact distribution of the
  word in a blank, from both sides or (``left_only``) from the words before it, as a
  left-to-right model reads.

Every function that takes ``documents`` accepts any finite distribution of documents, a list of
(sentences, probability) with sentences a tuple of str (words separated by spaces), so a tiny
case can be checked by hand; by default it is the story world's :func:`story_documents`.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections import defaultdict
from dataclasses import dataclass

from . import stories as _stories

__all__ = [
    "SLOTS",
    "PairWorld",
    "story_documents",
    "sentence_slot",
    "sentence_pronoun",
    "pair_world",
    "nsp_ceiling",
    "nsp_loss_floor",
    "nsp_posterior",
    "nsp_bayes_rule",
    "nsp_accuracy_of",
    "surface_rule",
    "mlm_ceiling",
    "mlm_loss_floor",
    "mlm_majority_baseline",
    "blank_distribution",
]

# the kinds of sentence of a story, in the order they come
SLOTS = ("arrival", "activity", "event", "feeling", "reaction", "home")
MASK = "[MASK]"


def _sentence(text: str) -> str:
    """The generator's spelling: "." always its own word (as generate_story writes it)."""
    return text.replace(" .", ".").replace(".", " .")


@functools.lru_cache(maxsize=1)
def _story_world():
    """(documents, slot of each sentence, pronoun of each sentence), enumerated once."""
    g = _stories
    documents = []
    slot: dict[str, int] = {}
    pronoun: dict[str, str] = {}
    n_int, p_home = len(g.INTENSITY), g.GO_HOME
    for (subject, pron), place in itertools.product(g.PEOPLE, g.ACTIVITIES):
        p_person = 1 / len(g.PEOPLE) / len(g.ACTIVITIES)
        for activity in g.ACTIVITIES[place]:
            p_act = p_person / len(g.ACTIVITIES[place])
            for mood in g.MOODS:
                for event, intensity, feeling, reaction in itertools.product(
                        g.EVENTS[mood], g.INTENSITY, g.FEELINGS[mood], g.REACTIONS[mood]):
                    p = p_act / len(g.MOODS) / len(g.EVENTS[mood]) / n_int / len(g.FEELINGS[mood]) \
                        / len(g.REACTIONS[mood])
                    body = [f"{subject} went to the {place} .", f"{pron} {activity} .", f"{pron} {event} .",
                            f"{pron} felt {intensity}{feeling} .", f"{pron} {reaction} ."]
                    body = [_sentence(s) for s in body]
                    home = _sentence(f"then {pron} went home .")
                    documents.append((tuple(body), p * (1 - p_home)))
                    documents.append((tuple(body) + (home,), p * p_home))
                    for k, s in enumerate(body + [home]):
                        slot[s], pronoun[s] = k, pron
    return tuple(documents), slot, pronoun


def story_documents() -> tuple[tuple[tuple[str, ...], float], ...]:
    """Every story the generator can write: a tuple of (sentences, probability), probabilities summing to 1.

    sentences is the story's ``Story.sentences`` (5 or 6 strings); probability is
    exp(``Story.log_prob``). Enumerated once (82,944 stories) and cached.
    """
    return _story_world()[0]


def _check_sentence(name: str, sentence) -> str:
    if not isinstance(sentence, str):
        raise TypeError(f"{name} must be a sentence of the story world (str), got {type(sentence).__name__}")
    if sentence not in _story_world()[1]:
        raise ValueError(f"{name} must be a sentence the story grammar writes, e.g. 'he smiled .', "
                         f"got {sentence!r:.60}")
    return sentence


def sentence_slot(sentence: str) -> str:
    """Which kind of sentence of a story ``sentence`` is: one of SLOTS ("arrival", ..., "home").
    Refused: a str the story grammar never writes."""
    return SLOTS[_story_world()[1][_check_sentence("sentence", sentence)]]


def sentence_pronoun(sentence: str) -> str:
    """The pronoun ("he" or "she") of the person ``sentence`` is about ("the man went ..." -> "he").
    Refused: a str the story grammar never writes."""
    return _story_world()[2][_check_sentence("sentence", sentence)]


@dataclass(frozen=True)
class PairWorld:
    """The distribution of NSP pairs, as make_nsp_pairs draws them from a large corpus.

    consecutive: {(A, B): P(A, B | IsNext)}, a pair of consecutive sentences of a story (a story
                 with n sentences gives n - 1 pairs, so longer stories give more pairs)
    first:       {A: P(A)}, the first sentence of a pair (the same for IsNext and NotNext)
    other:       {B: q(B)}, NotNext's B: a uniform sentence of another story
    P(A, B, IsNext) = 0.5 * consecutive[A, B];  P(A, B, NotNext) = 0.5 * first[A] * other[B].
    """

    consecutive: dict
    first: dict
    other: dict

    def joint(self, a: str, b: str) -> tuple[float, float]:
        """(P(A=a, B=b, IsNext), P(A=a, B=b, NotNext))."""
        return 0.5 * self.consecutive.get((a, b), 0.0), 0.5 * self.first.get(a, 0.0) * self.other.get(b, 0.0)

    def pairs(self):
        """Every (A, B) of positive probability with P(A, B) (IsNext and NotNext together)."""
        for a, p_a in self.first.items():
            for b, q_b in self.other.items():
                yield a, b, 0.5 * self.consecutive.get((a, b), 0.0) + 0.5 * p_a * q_b


def _check_documents(documents):
    """``documents``: None (the story world) or a non-empty list of (sentences, probability) summing to 1."""
    if documents is None:
        return story_documents()
    if isinstance(documents, (str, bytes)) or not hasattr(documents, "__iter__"):
        raise TypeError(f"documents must be a list of (sentences, probability), e.g. [(('a .', 'b .'), 1.0)], "
                        f"got {type(documents).__name__}")
    documents = tuple(documents)
    if len(documents) < 1:
        raise ValueError("documents must hold at least one (sentences, probability), got none")
    for i, doc in enumerate(documents):
        if not (isinstance(doc, tuple) and len(doc) == 2 and isinstance(doc[0], tuple)
                and all(isinstance(s, str) and s.split() for s in doc[0])):
            raise TypeError(f"documents[{i}] must be (sentences, probability) with sentences a tuple of non-empty "
                            f"str, got {doc!r:.80}")
        p = doc[1]
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"documents[{i}] probability must be a number in [0, 1], got {p!r}")
    total = math.fsum(p for _, p in documents)
    if abs(total - 1) > 1e-9:
        raise ValueError(f"documents' probabilities must sum to 1, got {total!r}")
    if not any(len(s) >= 2 and p > 0 for s, p in documents):
        raise ValueError("documents must include a document of two or more sentences with probability > 0: "
                         "a pair is two consecutive sentences")
    return documents


@functools.lru_cache(maxsize=4)
def _pair_world(documents: tuple) -> PairWorld:
    pair_mass = defaultdict(float)
    other = defaultdict(float)
    for sentences, p in documents:
        for a, b in zip(sentences, sentences[1:]):
            pair_mass[a, b] += p
        for s in sentences:
            other[s] += p / len(sentences)
    total = math.fsum(pair_mass.values())  # the expected number of pairs per story
    consecutive = {k: v / total for k, v in pair_mass.items()}
    first = defaultdict(float)
    for (a, _), v in consecutive.items():
        first[a] += v
    return PairWorld(consecutive, dict(first), dict(other))


def pair_world(documents=None) -> PairWorld:
    """The NSP pair distribution of ``documents`` (default: the story world), see :class:`PairWorld`.

    Idealised in one way: NotNext's other story is a fresh draw from the same distribution
    (make_nsp_pairs draws it from the corpus, any story but A's own: the same in the limit of a
    large corpus). Refused: documents not a list of (sentences, probability) summing to 1.
    """
    if documents is None:
        return _story_pair_world()
    return _pair_world(_check_documents(documents))


@functools.lru_cache(maxsize=1)
def _story_pair_world() -> PairWorld:
    return _pair_world(story_documents())


def nsp_ceiling(documents=None) -> float:
    """The Bayes-optimal NSP accuracy: sum over (A, B) of max(P(A, B, IsNext), P(A, B, NotNext)).

    No classifier that reads the pair (A, B) can be right more often on pairs drawn as
    make_nsp_pairs draws them; one that reads a masked pair can only do worse.
    """
    world = pair_world(documents)
    total = 0.0
    for a, b, _ in world.pairs():
        total += max(world.joint(a, b))
    return total


def nsp_loss_floor(documents=None) -> float:
    """The lowest expected NSP loss (cross-entropy, nats) of any model reading (A, B): the
    conditional entropy H(label | A, B) = - sum over (A, B, label) of P(A, B, label) log P(label | A, B).
    A coin flip scores log 2; a model reading masked pairs can only score higher than this."""
    world = pair_world(documents)
    total = 0.0
    for a, b, _ in world.pairs():
        is_next, not_next = world.joint(a, b)
        for p in (is_next, not_next):
            if p > 0:
                total -= p * math.log(p / (is_next + not_next))
    return total


def nsp_posterior(a: str, b: str, documents=None) -> float:
    """P(IsNext | A=a, B=b), exactly. Refused: a pair that never occurs (probability 0)."""
    for name, s in (("a", a), ("b", b)):
        if not isinstance(s, str):
            raise TypeError(f"{name} must be a sentence (str), got {type(s).__name__}")
    is_next, not_next = pair_world(documents).joint(a, b)
    if is_next + not_next == 0:
        raise ValueError(f"the pair (a={a!r:.40}, b={b!r:.40}) never occurs: pass sentences of the documents")
    return is_next / (is_next + not_next)


def nsp_bayes_rule(a: str, b: str, documents=None) -> bool:
    """The Bayes-optimal decision: True (IsNext) when P(A, B, IsNext) > P(A, B, NotNext)."""
    return nsp_posterior(a, b, documents) > 0.5


def nsp_accuracy_of(rule, documents=None) -> float:
    """The exact accuracy of ``rule(a, b) -> bool`` (True: IsNext) on NSP pairs of ``documents``.

    Sum over (A, B) of P(A, B, IsNext) * [rule says IsNext] + P(A, B, NotNext) * [rule says NotNext].
    E.g. ``nsp_accuracy_of(lambda a, b: True)`` is 0.5 and ``nsp_accuracy_of(nsp_bayes_rule)`` is
    :func:`nsp_ceiling`. Refused: a rule that is not callable or returns something other than a bool.
    """
    if not callable(rule):
        raise TypeError(f"rule must be a function rule(a, b) -> bool (True: IsNext), got {type(rule).__name__}")
    world = pair_world(documents)
    total = 0.0
    for a, b, _ in world.pairs():
        says = rule(a, b)
        if not isinstance(says, bool):
            raise TypeError(f"rule must return a bool (True: IsNext), returned {says!r:.40} for ({a!r:.30}, {b!r:.30})")
        is_next, not_next = world.joint(a, b)
        total += is_next if says else not_next
    return total


def surface_rule(a: str, b: str, cues=("pronoun", "order")) -> bool:
    """A trivial NSP rule on the story world: IsNext unless a surface cue says otherwise.

    cues: "pronoun": B's person has a different pronoun than A's ("she ..." after "he ...");
          "order":   B's kind of sentence cannot come right after A's (a feeling after an arrival,
                     anything after ..., an arrival as B): :func:`sentence_slot` of B is not the
                     slot after A's.
    It reads no content: not the place, not the mood. Refused: sentences the grammar never
    writes; cues not a non-empty subset of ("pronoun", "order").
    """
    if isinstance(cues, str) or not hasattr(cues, "__iter__") or not cues \
            or not set(cues) <= {"pronoun", "order"}:
        raise ValueError(f"cues must be a non-empty tuple of 'pronoun' and 'order', got {cues!r}")
    _, slot, pronoun = _story_world()
    _check_sentence("a", a)
    _check_sentence("b", b)
    if "pronoun" in cues and pronoun[a] != pronoun[b]:
        return False
    if "order" in cues and slot[b] != slot[a] + 1:
        return False
    return True


def _positions(world: PairWorld):
    """(P(A, B), words of A, words of B) for every pair."""
    for a, b, p in world.pairs():
        yield p, tuple(a.split()), tuple(b.split())


def mlm_ceiling(documents=None) -> float:
    """The Bayes-optimal single-mask MLM accuracy on NSP pairs of ``documents`` (default: the story world).

    One word of a pair [CLS] A [SEP] B [SEP] is chosen uniformly among its words (as each word is
    selected for MLM with the same probability) and replaced by [MASK]; every other word is
    seen. The best prediction is the most probable word given the rest, and the ceiling is

        sum over contexts c of max_w P(c, w)   /   E[number of words of a pair].

    With 15% of the words selected at once (several blanks in one pair) the best possible accuracy
    is lower on [MASK]ed words; the 10% of selected words left unchanged can be copied.
    """
    return _mlm_bounds(documents)[0]


def mlm_loss_floor(documents=None) -> float:
    """The lowest expected single-mask MLM loss (cross-entropy, nats): the conditional entropy
    H(word | the rest of the pair) = - sum over (c, w) of P(c, w) log P(w | c), per word,
    for one blank at a time as in :func:`mlm_ceiling`. With 15% masked at once, the loss on the
    [MASK]ed and randomised words (90% of the selected) is at least this, so
    0.9 * mlm_loss_floor() bounds the expected training-style MLM loss from below."""
    return _mlm_bounds(documents)[1]


def _mlm_bounds(documents) -> tuple[float, float]:
    if documents is None:
        return _story_mlm_bounds()
    return _mlm_bounds_of(pair_world(documents))


@functools.lru_cache(maxsize=1)
def _story_mlm_bounds() -> tuple[float, float]:
    return _mlm_bounds_of(pair_world())


def _mlm_bounds_of(world: PairWorld) -> tuple[float, float]:
    """(single-mask ceiling, single-mask loss floor) of the pair distribution ``world``."""
    joint = defaultdict(float)  # (context, word) -> probability
    words_total = 0.0
    for p, wa, wb in _positions(world):
        words_total += p * (len(wa) + len(wb))
        for j, w in enumerate(wa):
            joint[(wa[:j] + (MASK,) + wa[j + 1:], wb), w] += p
        for j, w in enumerate(wb):
            joint[(wa, wb[:j] + (MASK,) + wb[j + 1:]), w] += p
    best = defaultdict(float)
    context_mass = defaultdict(float)
    for (context, _), p in joint.items():
        best[context] = max(best[context], p)
        context_mass[context] += p
    entropy = -math.fsum(p * math.log(p / context_mass[c]) for (c, _), p in joint.items() if p > 0)
    return math.fsum(best.values()) / words_total, entropy / words_total


def mlm_majority_baseline(documents=None) -> tuple[str, float]:
    """(word, share): the most frequent word of the pairs and how often it is right when always
    guessed for a masked word, the chance level of MLM (a model that ignores the context)."""
    world = pair_world(documents)
    counts = defaultdict(float)
    total = 0.0
    for p, wa, wb in _positions(world):
        for w in wa + wb:
            counts[w] += p
        total += p * (len(wa) + len(wb))
    word = max(counts, key=counts.get)
    return word, counts[word] / total


def blank_distribution(a: str, b: str, *, left_only: bool = False, documents=None) -> dict[str, float]:
    """The exact distribution of the word at the one [MASK] of the pair (a, b): {word: probability}, sorted.

    a, b: sentence A and sentence B, words separated by spaces, exactly one [MASK] in the two.
    left_only False: P(word | every other word of the pair), what a bidirectional model can know;
    left_only True: P(word | the words before the blank), what a left-to-right (causal) model
    reading "A [SEP] B" can know: the words after the blank are not read.
    Refused: a or b not a str; not exactly one [MASK]; a context that never occurs.
    """
    for name, s in (("a", a), ("b", b)):
        if not isinstance(s, str):
            raise TypeError(f"{name} must be a sentence (str), got {type(s).__name__}")
    if not isinstance(left_only, bool):
        raise TypeError(f"left_only must be a bool, got {type(left_only).__name__}")
    query = tuple(a.split()) + ("[SEP]",) + tuple(b.split())
    if query.count(MASK) != 1:
        raise ValueError(f"a and b must hold exactly one {MASK} between them, got {query.count(MASK)}")
    j = query.index(MASK)
    left, right = query[:j], query[j + 1:]
    dist = defaultdict(float)
    for p, wa, wb in _positions(pair_world(documents)):
        seq = wa + ("[SEP]",) + wb
        if len(seq) <= j or seq[:j] != left or seq[j] == "[SEP]":
            continue
        if not left_only and seq[j + 1:] != right:
            continue
        dist[seq[j]] += p
    total = math.fsum(dist.values())
    if total == 0:
        raise ValueError(f"the context of the blank in (a={a!r:.50}, b={b!r:.50}) never occurs in the documents")
    return dict(sorted(((w, v / total) for w, v in dist.items()), key=lambda kv: -kv[1]))
