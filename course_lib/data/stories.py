"""The story world: short English stories the course generates, with their exact probabilities.

A story is a handful of sentences about one person: they go somewhere, do something there,
something good or bad happens, they feel a certain way, and they react::

    the man went to the store . he bought a gallon of milk . he found a coin .
    he felt very cheerful . he smiled . then he went home .

Everything is drawn from a small generative grammar (people, places, activities, events,
feelings), so the text is learnable, offline and deterministic from a seed. Pronouns agree
with their antecedent; what can happen depends on the place; the feeling and the reaction agree
with the event's mood (happy or sad); a book about an animal is followed by a fact about it
("penguins are flightless birds"). The notes' examples appear in their natural setting.

Because the grammar is known, so is the probability p(x) with which it produced each story x, and
every story has exactly one derivation (each choice leaves its own words in the text). The average
-log p(x) per predicted token is then the **entropy floor**, a bound that holds *in expectation*:
by Gibbs' inequality, for any model q, E_{x~p}[-log q(x)] >= E_{x~p}[-log p(x)], so no model's
expected loss on fresh stories from the generator is below it. On one fixed sample a model can
land below it, and a held-out split is not a fresh sample from p: its texts were chosen to be
absent from training, so it is drawn from p conditioned on "not a training text", whose floor is
lower. See :func:`entropy_floor`, :func:`probability_mass` and :func:`held_out_entropy_floor`.

The downstream task (:func:`make_mood_task`): is a short story happy or sad, when its only clue
is the feeling word (glad, cheerful, gloomy, ...)? A few labelled examples cover only some of the
16 feeling words; the meaning of the others can be learned from unlabeled stories, in which
each feeling word follows events of its mood and precedes reactions of its mood.
"""

from __future__ import annotations

import math
import numbers
import random
from dataclasses import dataclass, field

from .. import _checks

__all__ = [
    "Story",
    "StoryCorpus",
    "MoodExample",
    "MoodTask",
    "MOODS",
    "FEELINGS",
    "EVENTS",
    "NOTES_STORY",
    "generate_story",
    "make_story_corpus",
    "entropy_floor",
    "probability_mass",
    "held_out_entropy_floor",
    "make_mood_task",
    "MOOD_TEXTS_PER_MOOD",
    "load_text",
]

# (subject, pronoun)
PEOPLE = (("the man", "he"), ("the woman", "she"), ("tom", "he"), ("anna", "she"), ("the boy", "he"),
          ("the girl", "she"))

# place -> what one can do there (each a distinct word sequence after the pronoun)
ACTIVITIES = {
    "store": ("bought a gallon of milk", "bought a loaf of bread", "bought a bag of apples",
              "bought a cup of coffee", "bought a box of eggs"),
    "park": ("saw a dog", "fed the ducks", "played football", "climbed a tree", "flew a kite"),
    "library": ("read a book about penguins . penguins are flightless birds",
                "read a book about owls . owls hunt at night",
                "read a book about bees . bees make honey",
                "read a book about whales . whales live in the sea"),
    "school": ("wrote a letter", "drew a picture", "sang a song", "learned about numbers"),
}

MOODS = ("happy", "sad")
EVENTS = {
    "happy": ("found a coin", "met an old friend", "won a prize", "got a present"),
    "sad": ("lost the keys", "missed the bus", "broke a cup", "hurt a knee"),
}
FEELINGS = {
    "happy": ("glad", "happy", "cheerful", "joyful", "delighted", "pleased", "proud", "excited"),
    "sad": ("sad", "unhappy", "gloomy", "upset", "miserable", "lonely", "worried", "grumpy"),
}
INTENSITY = ("", "very ", "so ")
REACTIONS = {"happy": ("smiled", "laughed"), "sad": ("cried", "sighed")}
GO_HOME = 0.5  # probability of a last sentence "then <pronoun> went home ."

NOTES_STORY = "the man went to the store . he bought a gallon of milk ."

# How many distinct texts of each mood the mood task can draw: a subject, one of the activities
# of any place, an intensity and a feeling word of that mood (each choice leaves its own words,
# so every derivation is a different text). make_mood_task refuses a request for more at once.
MOOD_TEXTS_PER_MOOD = (len(PEOPLE) * sum(len(acts) for acts in ACTIVITIES.values()) * len(INTENSITY)
                       * min(len(FEELINGS[mood]) for mood in MOODS))


@dataclass(frozen=True)
class Story:
    """One generated story.

    text: words and "." separated by single spaces;  sentences: the same, one string per sentence;
    mood: "happy" or "sad";  log_prob: natural log of the probability that the generator produced
    exactly this text (its end included).
    """

    text: str
    sentences: tuple[str, ...]
    mood: str
    log_prob: float

    @property
    def words(self) -> list[str]:
        return self.text.split()


def _choose(rng: random.Random, options, log_p: list[float]):
    """Pick uniformly and record the log-probability of the pick."""
    log_p.append(-math.log(len(options)))
    return rng.choice(options)


def generate_story(rng: random.Random, *, with_event: bool = True, with_reaction: bool = True) -> Story:
    """Draw one story. ``with_event`` / ``with_reaction`` False leave out the sentences that
    reveal the mood other than the feeling word (the downstream task's texts).
    ``rng`` must be a random.Random, e.g. random.Random(0)."""
    _check_rng(rng)
    _checks.check_bool("with_event", with_event)
    _checks.check_bool("with_reaction", with_reaction)
    log_p: list[float] = []
    subject, pronoun = _choose(rng, PEOPLE, log_p)
    place = _choose(rng, tuple(ACTIVITIES), log_p)
    sentences = [f"{subject} went to the {place} .", f"{pronoun} {_choose(rng, ACTIVITIES[place], log_p)} ."]
    mood = _choose(rng, MOODS, log_p)
    if with_event:
        sentences.append(f"{pronoun} {_choose(rng, EVENTS[mood], log_p)} .")
    intensity = _choose(rng, INTENSITY, log_p)
    sentences.append(f"{pronoun} felt {intensity}{_choose(rng, FEELINGS[mood], log_p)} .")
    if with_reaction:
        sentences.append(f"{pronoun} {_choose(rng, REACTIONS[mood], log_p)} .")
        go_home = rng.random() < GO_HOME
        log_p.append(math.log(GO_HOME if go_home else 1 - GO_HOME))
        if go_home:
            sentences.append(f"then {pronoun} went home .")
    sentences = [s.replace(" .", ".").replace(".", " .") for s in sentences]  # "." always its own word
    return Story(" ".join(sentences), tuple(sentences), mood, sum(log_p))


@dataclass
class StoryCorpus:
    """Unlabeled stories for pretraining: train / validation / test, no story text in two splits."""

    train: list[Story]
    validation: list[Story]
    test: list[Story]
    words: list[str] = field(default_factory=list)
    seed: int = 0

    def __repr__(self) -> str:
        return (f"StoryCorpus(train={len(self.train)}, validation={len(self.validation)}, test={len(self.test)}, "
                f"words={len(self.words)}, seed={self.seed})")


def _vocabulary() -> list[str]:
    """Every word the grammar can write, in a fixed order."""
    words: list[str] = []
    texts = [s for s, _ in PEOPLE] + [p for _, p in PEOPLE] + ["went to the then home felt ."]
    texts += [f"the {place}" for place in ACTIVITIES] + [a for acts in ACTIVITIES.values() for a in acts]
    texts += [e for m in MOODS for e in EVENTS[m] + FEELINGS[m] + REACTIONS[m]] + list(INTENSITY)
    for text in texts:
        for w in text.split():
            if w not in words:
                words.append(w)
    return words


def make_story_corpus(num_stories: int = 20000, seed: int = 0, split: tuple[float, float] = (0.8, 0.1)) -> StoryCorpus:
    """Draw ``num_stories`` stories and split them train / validation / test.

    Stories are drawn with repetition allowed (common stories are common, as in real text), then
    each distinct text is put in exactly one split, so a validation story was never trained on.
    The splits keep the generator's frequencies within each split. Because the split is by distinct
    text, the validation and test stories are (very nearly) samples of p(x | x not a training text),
    not of p(x): compare a model's loss on them with :func:`held_out_entropy_floor`.

    Refused: a num_stories that is not an int >= 10, a seed that is not an int, a split that is not
    two fractions > 0 (train, validation) summing below 1 (the test split takes the rest) or that
    leaves a split without a story.
    """
    _checks.check_positive_int("num_stories", num_stories)
    if num_stories < 10:
        raise ValueError(f"num_stories must be at least 10, got {num_stories}")
    _checks.check_int("seed", seed)
    _check_split(split, 2, "(train, validation) > 0 with a sum below 1 (the test split takes the rest)")
    if sum(split) >= 1:
        raise ValueError(f"split must be two fractions (train, validation) summing below 1 (the test split takes the "
                         f"rest), got {split!r}")
    rng = random.Random(seed)
    stories = [generate_story(rng) for _ in range(num_stories)]
    texts = sorted({s.text for s in stories})
    random.Random(seed + 1).shuffle(texts)
    n_train, n_val = int(split[0] * len(texts)), int(split[1] * len(texts))
    for part, size in (("train", n_train), ("validation", n_val), ("test", len(texts) - n_train - n_val)):
        if size == 0:
            raise ValueError(f"split {split!r} leaves the {part} split empty: num_stories={num_stories} gave "
                             f"{len(texts)} distinct stories; ask for more stories or a larger {part} fraction")
    where = {t: 0 for t in texts[:n_train]}
    where.update({t: 1 for t in texts[n_train:n_train + n_val]})
    where.update({t: 2 for t in texts[n_train + n_val:]})
    parts: list[list[Story]] = [[], [], []]
    for s in stories:
        parts[where[s.text]].append(s)
    return StoryCorpus(*parts, words=_vocabulary(), seed=seed)


def entropy_floor(stories: list[Story]) -> float:
    """The generator's cross-entropy on ``stories``, in nats per predicted token: the floor, in
    expectation, of any model's loss on stories drawn fresh from the generator.

    A language model reads ``<bos> w_1 ... w_n`` and predicts ``w_1 ... w_n <eos>``: n + 1 tokens
    per story. This returns (sum of -log p(story)) / (sum of (n + 1)). Gibbs' inequality,
    E_{x~p}[-log q(x)] >= E_{x~p}[-log p(x)] for every model q, makes it a lower bound on the
    *expected* loss of any model on fresh samples of p (estimated here on the sample given). It
    does not bound a model's loss on one fixed set of stories, and a held-out split made by
    excluding the training texts is not a sample of p: for that, see :func:`held_out_entropy_floor`.
    """
    stories = _check_stories("stories", stories)
    return -sum(s.log_prob for s in stories) / _num_predicted_tokens(stories)


def probability_mass(stories: list[Story]) -> float:
    """P(S) = sum over the *distinct* texts x in ``stories`` of p(x): the probability that one fresh
    story from the generator is one of these texts (a text that occurs twice counts once).

    E.g. probability_mass(corpus.train) is the share of the generator's probability that the
    training texts hold, which the validation and test splits can never contain.
    """
    stories = _check_stories("stories", stories)
    return math.fsum(math.exp(log_p) for log_p in {s.text: s.log_prob for s in stories}.values())


def held_out_entropy_floor(stories: list[Story], seen: list[Story]) -> float:
    """The entropy floor of ``stories`` under the distribution they were drawn from when every text
    in ``seen`` (e.g. the training split) was excluded, in nats per predicted token.

    make_story_corpus puts each distinct text in one split, so a validation story x is a draw from
    the generator conditioned on not being a training text:

        p(x | x not in S) = p(x) / (1 - P(S))  for x not in S,    P(S) = probability_mass(seen),

    so per story -log p(x | not S) = -log p(x) + log(1 - P(S)), and over N stories with T
    predicted tokens in all (n + 1 per story, as in :func:`entropy_floor`):

        held_out_entropy_floor = entropy_floor(stories) + N * log(1 - P(S)) / T,

    lower than the plain floor by N * log(1 / (1 - P(S))) / T. By Gibbs' inequality applied to
    p(. | not S), no model's *expected* loss on fresh held-out stories is below it.

    Refused: ``stories`` or ``seen`` not a non-empty list of Story, a story of ``stories`` whose text
    is in ``seen`` (it could not have been held out), and a ``seen`` holding all of the generator's
    probability (nothing is left to condition on).
    """
    stories = _check_stories("stories", stories)
    seen = _check_stories("seen", seen)
    seen_texts = {s.text for s in seen}
    for i, story in enumerate(stories):
        if story.text in seen_texts:
            raise ValueError(f"stories[{i}] is a text of seen ({story.text!r}): held-out stories must not "
                             "appear in seen (e.g. pass corpus.validation and corpus.train)")
    mass = probability_mass(seen)
    if not mass < 1:
        raise ValueError(f"seen holds all of the generator's probability (P = {mass!r}): nothing is left to hold out")
    return entropy_floor(stories) + len(stories) * math.log1p(-mass) / _num_predicted_tokens(stories)


def _num_predicted_tokens(stories: list[Story]) -> int:
    return sum(len(s.words) + 1 for s in stories)


def _check_stories(name: str, stories) -> list[Story]:
    """``stories`` must be a non-empty iterable of Story; returns it as a list."""
    if isinstance(stories, (str, bytes)) or not hasattr(stories, "__iter__"):
        raise TypeError(f"{name} must be a list of Story (e.g. corpus.test), got {type(stories).__name__}")
    stories = list(stories)
    if not stories:
        raise ValueError(f"{name} must not be empty")
    for i, story in enumerate(stories):
        if not isinstance(story, Story):
            raise TypeError(f"{name}[{i}] must be a Story (e.g. from corpus.test), got {type(story).__name__}")
    return stories


@dataclass(frozen=True)
class MoodExample:
    """A short story without its event and reaction: the feeling word is the only clue to ``label``."""

    text: str
    label: int  # index into MOODS: 0 happy, 1 sad
    feeling: str

    @property
    def words(self) -> list[str]:
        return self.text.split()


@dataclass
class MoodTask:
    """The labelled downstream task: train (small), validation, test; no text in two splits."""

    train: list[MoodExample]
    validation: list[MoodExample]
    test: list[MoodExample]
    labels: tuple[str, ...] = MOODS

    def __repr__(self) -> str:
        seen = {e.feeling for e in self.train}
        return (f"MoodTask(train={len(self.train)}, validation={len(self.validation)}, test={len(self.test)}, "
                f"feeling words in train: {len(seen)} of {sum(len(v) for v in FEELINGS.values())})")


def make_mood_task(num_train: int = 64, num_validation: int = 200, num_test: int = 1000, seed: int = 0) -> MoodTask:
    """Distinct labelled texts, e.g. ``anna went to the park . she fed the ducks . she felt so gloomy .`` -> sad.

    The training split is the small labelled set; take its first k examples for a smaller one
    (it is shuffled, and balanced between the moods at every even size).

    Refused at once: a num_train that is not an int >= 1, a num_validation or num_test that is not
    an int >= 0, a seed that is not an int, and more texts than the grammar can make
    (2 * MOOD_TEXTS_PER_MOOD, half of each mood).
    """
    _checks.check_positive_int("num_train", num_train)
    for name, value in (("num_validation", num_validation), ("num_test", num_test)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    _checks.check_int("seed", seed)
    total = num_train + num_validation + num_test
    if (total + 1) // 2 > MOOD_TEXTS_PER_MOOD:
        raise ValueError(f"make_mood_task can make at most {2 * MOOD_TEXTS_PER_MOOD} distinct texts "
                         f"({MOOD_TEXTS_PER_MOOD} per mood), asked for num_train + num_validation + num_test = "
                         f"{num_train} + {num_validation} + {num_test} = {total}")
    rng = random.Random(seed)
    by_mood: dict[int, list[MoodExample]] = {0: [], 1: []}
    seen: set[str] = set()
    attempts = 0
    while min(len(v) for v in by_mood.values()) < (total + 1) // 2:
        attempts += 1
        if attempts > 50 * total:
            raise ValueError(f"cannot draw {total} distinct labelled texts from the grammar")
        story = generate_story(rng, with_event=False, with_reaction=False)
        if story.text in seen:
            continue
        seen.add(story.text)
        label = MOODS.index(story.mood)
        by_mood[label].append(MoodExample(story.text, label, story.words[-2]))
    # interleave the moods so any even-sized prefix of the training split is balanced
    pool = [e for pair in zip(by_mood[0], by_mood[1]) for e in pair][:total]
    train = pool[:num_train]
    return MoodTask(train, pool[num_train:num_train + num_validation], pool[num_train + num_validation:])


def load_text(path) -> str:
    """Read a UTF-8 text file (your own corpus) for character-level language modelling.

    Refused: a path that is not a str or pathlib.Path, a missing file, a folder, a file that is
    not UTF-8 text (e.g. an image or a zip), a file with nothing but white space.
    """
    path = _checks.check_path("path", path)
    if path.is_dir():
        raise ValueError(f"path {path} is a folder: name a text file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"path {path} is not a UTF-8 text file ({e.reason} at byte {e.start}): "
                         "pass a plain text file") from None
    if not text.strip():
        raise ValueError(f"{path} is empty")
    return text


def _check_rng(rng) -> None:
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, e.g. random.Random(0), got {type(rng).__name__}")


def _check_split(split, n: int, what: str) -> None:
    """``split`` must be a tuple (or list) of ``n`` finite fractions in (0, 1) (``what`` completes the message)."""
    if not isinstance(split, (tuple, list)) or not all(
            isinstance(p, numbers.Real) and not isinstance(p, bool) for p in split):
        raise TypeError(f"split must be a tuple of {n} fractions {what}, got {split!r}")
    if len(split) != n or not all(0 < p < 1 for p in split):
        raise ValueError(f"split must be {n} fractions {what}, got {split!r}")
