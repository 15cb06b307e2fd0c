"""The story world: grammar, exact probabilities, entropy floor, the mood task, load_text."""

import math
import random

import pytest

from course_lib.data import stories
from course_lib.data.stories import (FEELINGS, MOODS, NOTES_STORY, entropy_floor, generate_story, load_text,
                                     make_mood_task, make_story_corpus)


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
