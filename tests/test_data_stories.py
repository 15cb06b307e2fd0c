"""The story world: grammar, exact probabilities, entropy floor, the mood task, load_text."""

import math
import random

import pytest

from course_lib.data import stories
from course_lib.data.stories import (FEELINGS, MOODS, NOTES_STORY, Story, entropy_floor, generate_story,
                                     held_out_entropy_floor, load_text, make_mood_task, make_story_corpus,
                                     probability_mass)


@pytest.fixture(scope="module")
def corpus():
    return make_story_corpus(4000, seed=0)


def test_corpus_is_deterministic_and_splits_are_disjoint(corpus):
    again = make_story_corpus(4000, seed=0)
    assert [s.text for s in again.train] == [s.text for s in corpus.train]
    texts = [{s.text for s in part} for part in (corpus.train, corpus.validation, corpus.test)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert len(corpus.train) + len(corpus.validation) + len(corpus.test) == 4000
    assert make_story_corpus(4000, seed=1).train[0].text != corpus.train[0].text


def test_every_word_is_in_the_vocabulary_and_punctuation_is_a_word(corpus):
    vocab = set(corpus.words)
    for s in corpus.train + corpus.validation:
        assert set(s.words) <= vocab
        assert s.text.endswith(" .") and ".." not in s.text.replace(" ", "")


def test_the_notes_examples_appear_in_their_setting(corpus):
    texts = [s.text for s in corpus.train]
    assert any(t.startswith(NOTES_STORY) for t in texts)
    assert any("penguins are flightless birds" in t for t in texts)
    # the fact always follows the book about it
    for t in texts:
        if "penguins are flightless birds" in t:
            assert "read a book about penguins . penguins are flightless birds" in t


def test_pronouns_agree_and_mood_is_consistent(corpus):
    for s in corpus.train[:500]:
        subject = s.sentences[0].split(" went to")[0]
        pronoun = dict(stories.PEOPLE)[subject]
        for sentence in s.sentences[1:]:
            first = sentence.split()[0]
            assert first in (pronoun, "then") or sentence.split()[0] in ("penguins", "owls", "bees", "whales")
        feeling = next(w for sentence in s.sentences if " felt " in sentence for w in [sentence.split()[-2]])
        assert feeling in FEELINGS[s.mood]
        other = MOODS[1 - MOODS.index(s.mood)]
        assert not any(w in s.words for w in stories.REACTIONS[other])


def test_log_prob_is_the_product_of_the_choices():
    rng = random.Random(0)
    for _ in range(200):
        s = generate_story(rng)
        place = s.sentences[0].split()[-2]
        expected = (math.log(1 / 6) + math.log(1 / 4) + math.log(1 / len(stories.ACTIVITIES[place])) + math.log(1 / 2)
                    + math.log(1 / 4) + math.log(1 / 3) + math.log(1 / 8) + math.log(1 / 2) + math.log(1 / 2))
        assert s.log_prob == pytest.approx(expected)


def test_one_text_one_derivation():
    """The same text is always produced with the same probability (no two derivations)."""
    rng = random.Random(1)
    seen = {}
    for _ in range(20000):
        s = generate_story(rng)
        assert seen.setdefault(s.text, s.log_prob) == pytest.approx(s.log_prob)
    assert len(seen) < 20000  # some texts repeat, so the check above compared something


def test_entropy_floor_is_the_mean_negative_log_prob_per_predicted_token(corpus):
    part = corpus.validation[:50]
    expected = -sum(s.log_prob for s in part) / sum(len(s.words) + 1 for s in part)
    assert entropy_floor(part) == pytest.approx(expected)
    assert 0.3 < entropy_floor(corpus.validation) < 0.45
    with pytest.raises(ValueError, match="must not be empty"):
        entropy_floor([])


def _story(words: str, p: float) -> Story:
    return Story(words, (words,), "happy", math.log(p))


def test_held_out_floor_by_hand():
    """seen holds one text twice (p = 1/2, counted once); the held-out text has p = 1/4 and 3 words,
    so p(x | not seen) = (1/4) / (1 - 1/2) = 1/2 over 4 predicted tokens."""
    seen = [_story("a b .", 0.5), _story("a b .", 0.5)]
    held_out = [_story("c d .", 0.25)]
    assert probability_mass(seen) == pytest.approx(0.5)
    assert entropy_floor(held_out) == pytest.approx(math.log(4) / 4)
    assert held_out_entropy_floor(held_out, seen) == pytest.approx(math.log(2) / 4)


def test_held_out_floor_is_the_renormalised_generator_on_a_corpus(corpus):
    """Brute force: renormalise p over the texts not in training and score the validation stories with it."""
    distinct = {s.text: math.exp(s.log_prob) for s in corpus.train}
    mass = sum(distinct.values())
    assert probability_mass(corpus.train) == pytest.approx(mass)
    assert mass < sum(math.exp(s.log_prob) for s in corpus.train)  # repeated texts count once
    tokens = sum(len(s.words) + 1 for s in corpus.validation)
    renormalised = -sum(math.log(math.exp(s.log_prob) / (1 - mass)) for s in corpus.validation) / tokens
    floor = held_out_entropy_floor(corpus.validation, corpus.train)
    assert floor == pytest.approx(renormalised)
    # the renormalised generator, a model like any other, scores below the plain floor on this split
    assert floor < entropy_floor(corpus.validation) - 0.001


def test_probability_mass_is_the_chance_a_fresh_story_is_a_training_text(corpus):
    train_texts = {s.text for s in corpus.train}
    rng = random.Random(123)
    n = 20000
    hits = sum(generate_story(rng).text in train_texts for _ in range(n))
    mass = probability_mass(corpus.train)
    assert abs(hits / n - mass) < 4 * math.sqrt(mass * (1 - mass) / n)


def test_held_out_floor_refuses_bad_input(corpus):
    with pytest.raises(ValueError, match=r"stories\[0\] is a text of seen"):
        held_out_entropy_floor(corpus.train[:3], corpus.train)
    with pytest.raises(ValueError, match="all of the generator's probability"):
        held_out_entropy_floor([_story("c d .", 0.25)], [_story("a b .", 1.0)])
    with pytest.raises(ValueError, match="seen must not be empty"):
        held_out_entropy_floor(corpus.validation, [])
    with pytest.raises(TypeError, match=r"seen\[0\] must be a Story"):
        held_out_entropy_floor(corpus.validation, ["a b ."])
    with pytest.raises(TypeError, match="stories must be a list of Story"):
        probability_mass("a b .")


def test_mood_task_only_the_feeling_word_tells_the_mood():
    task = make_mood_task(num_train=32, num_validation=40, num_test=100, seed=0)
    assert (len(task.train), len(task.validation), len(task.test)) == (32, 40, 100)
    texts = [e.text for e in task.train + task.validation + task.test]
    assert len(set(texts)) == len(texts)
    for e in task.train + task.test:
        assert e.feeling in FEELINGS[MOODS[e.label]] and e.words[-2] == e.feeling
        assert not any(w in e.words for m in MOODS for w in stories.EVENTS[m] + stories.REACTIONS[m])
    for k in (2, 8, 16):  # even prefixes are balanced
        assert sum(e.label for e in task.train[:k]) == k // 2
    assert make_mood_task(num_train=32, num_validation=40, num_test=100, seed=0).train == task.train


def test_load_text(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("你好 world\n", encoding="utf-8")
    assert load_text(path) == "你好 world\n"
    with pytest.raises(FileNotFoundError, match="no text file"):
        load_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "empty.txt")
