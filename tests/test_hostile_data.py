"""Hostile input to the generated data (course_lib.data): sizes, splits, seeds, paths, files.

Impossible requests are refused at once, with the most the generator can make: the bounds are
counted here by walking every derivation of the grammar (a stand-in random.Random that takes
each branch in turn). One parametrized case per hostile argument: the exception type and the
argument's name in the message.
"""

import os
import random
import time

import pytest
import torch

from course_lib.data import (MAX_SENTENCES, MOOD_TEXTS_PER_MOOD, MOODS, SentencePair, entropy_floor, generate_pair,
                             generate_story, load_text, make_mood_task, make_story_corpus, make_translation_corpus)
from course_lib.data.folders import FolderTextDataset, make_story_folder, pad_collate


class EveryBranch(random.Random):
    """A random.Random that follows ``path`` (one branch index per random call), then branch 0,
    and records how many branches each call had: with it, a generator's derivations can be walked
    one after the other (``derivations``)."""

    def __init__(self, path):
        super().__init__(0)
        self.path, self.arity = path, []

    def _branch(self, n: int) -> int:
        k = self.path[len(self.arity)] if len(self.arity) < len(self.path) else 0
        self.arity.append(n)
        return k

    def choice(self, seq):
        return seq[self._branch(len(seq))]

    def random(self):  # two branches: below any threshold the generator uses, and above it
        return (0.0, 0.999999)[self._branch(2)]

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        return [population[self._branch(len(population))]]


def derivations(generate, prefix=()):
    """Every output of ``generate(rng)`` whose first branches are ``prefix``, one per derivation."""
    path = list(prefix)
    while True:
        rng = EveryBranch(path)
        yield generate(rng)
        path += [0] * (len(rng.arity) - len(path))
        j = len(path) - 1
        while j >= len(prefix) and path[j] + 1 >= rng.arity[j]:
            j -= 1
        if j < len(prefix):
            return
        path = path[:j] + [path[j] + 1]


# ---------------------------------------------------------------------------
# The bounds, counted
# ---------------------------------------------------------------------------

def test_mood_texts_per_mood_is_the_number_of_distinct_mood_texts():
    stories = list(derivations(lambda rng: generate_story(rng, with_event=False, with_reaction=False)))
    assert len({s.text for s in stories}) == len(stories)  # one text, one derivation
    for mood in MOODS:
        assert len({s.text for s in stories if s.mood == mood}) == MOOD_TEXTS_PER_MOOD


def test_the_largest_mood_task_is_made_and_one_more_is_refused_at_once():
    task = make_mood_task(num_train=2 * MOOD_TEXTS_PER_MOOD - 1200, num_validation=200, num_test=1000)
    texts = [e.text for e in task.train + task.validation + task.test]
    assert len(set(texts)) == len(texts) == 2 * MOOD_TEXTS_PER_MOOD
    with pytest.raises(ValueError, match=rf"at most {2 * MOOD_TEXTS_PER_MOOD} distinct texts.*= 5185"):
        make_mood_task(num_train=2 * MOOD_TEXTS_PER_MOOD - 1199, num_validation=200, num_test=1000)


def test_max_sentences_guard_one_corner_of_the_grammar():
    """Cheap check that the grammar is the one MAX_SENTENCES was counted on: the sentences with
    the first subject (我) and no time word. If the grammar changed, recount MAX_SENTENCES with
    COURSE_SLOW_TESTS=1 (the next test) and update both numbers."""
    assert len({p.en for p in derivations(generate_pair, prefix=(0, 1))}) == 34_518


@pytest.mark.skipif(os.environ.get("COURSE_SLOW_TESTS") != "1", reason="walks 1.6 million derivations (~30 s)")
def test_max_sentences_is_the_number_of_distinct_english_sentences():
    pairs = {(p.zh, p.en) for p in derivations(generate_pair)}
    assert len({zh for zh, _ in pairs}) == len(pairs)  # every Chinese sentence has one translation
    assert len({en for _, en in pairs}) == MAX_SENTENCES


# ---------------------------------------------------------------------------
# Work that never ended: refused at once
# ---------------------------------------------------------------------------

IMPOSSIBLE = {
    "make_translation_corpus(10**6)": (lambda: make_translation_corpus(10**6), rf"at most {MAX_SENTENCES} distinct"),
    "make_translation_corpus(MAX + 1)": (lambda: make_translation_corpus(MAX_SENTENCES + 1), "num_sentences"),
    "make_mood_task(100_000)": (lambda: make_mood_task(100_000), "make_mood_task can make at most 5184"),
    "make_story_folder(per_class=10**6)": (lambda: make_story_folder("/nonexistent/never/written", 10**6),
                                           "per_class"),
}


@pytest.mark.parametrize("call, message", IMPOSSIBLE.values(), ids=IMPOSSIBLE.keys())
def test_an_impossible_request_is_refused_within_a_second(call, message):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        call()
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------
# One case per hostile argument
# ---------------------------------------------------------------------------

CASES = {
    # make_story_corpus
    "stories num_stories=-1": (lambda: make_story_corpus(-1), ValueError, "num_stories"),
    "stories num_stories=0": (lambda: make_story_corpus(0), ValueError, "num_stories"),
    "stories num_stories=9": (lambda: make_story_corpus(9), ValueError, "num_stories"),
    "stories num_stories=True": (lambda: make_story_corpus(True), ValueError, "num_stories"),
    "stories num_stories=10.5": (lambda: make_story_corpus(10.5), ValueError, "num_stories"),
    "stories num_stories='100'": (lambda: make_story_corpus("100"), ValueError, "num_stories"),
    "stories seed=None": (lambda: make_story_corpus(100, seed=None), TypeError, "seed"),
    "stories seed='a'": (lambda: make_story_corpus(100, seed="a"), TypeError, "seed"),
    "stories split (1, 0)": (lambda: make_story_corpus(100, split=(1.0, 0.0)), ValueError, "split"),
    "stories split sum 1.1": (lambda: make_story_corpus(100, split=(0.8, 0.3)), ValueError, "split"),
    "stories split sum 1": (lambda: make_story_corpus(100, split=(0.9, 0.1)), ValueError, "split"),
    "stories split 1 entry": (lambda: make_story_corpus(100, split=(0.8,)), ValueError, "split"),
    "stories split 3 entries": (lambda: make_story_corpus(100, split=(0.8, 0.1, 0.1)), ValueError, "split"),
    "stories split negative": (lambda: make_story_corpus(100, split=(-0.1, 0.5)), ValueError, "split"),
    "stories split nan": (lambda: make_story_corpus(100, split=(float("nan"), 0.1)), ValueError, "split"),
    "stories split str": (lambda: make_story_corpus(100, split="ab"), TypeError, "split"),
    "stories split bools": (lambda: make_story_corpus(100, split=(True, False)), TypeError, "split"),
    "stories split empty validation": (lambda: make_story_corpus(10, split=(0.8, 0.05)), ValueError, "split"),
    "stories split empty train": (lambda: make_story_corpus(10, split=(0.05, 0.5)), ValueError, "split"),
    "generate_story(0)": (lambda: generate_story(0), TypeError, "rng"),
    "generate_story(None)": (lambda: generate_story(None), TypeError, "rng"),
    "generate_story(with_event='no')": (lambda: generate_story(random.Random(0), with_event="no"), TypeError,
                                        "with_event"),
    "generate_story(with_reaction=0)": (lambda: generate_story(random.Random(0), with_reaction=0), TypeError,
                                        "with_reaction"),
    "entropy_floor([])": (lambda: entropy_floor([]), ValueError, "stories"),
    "entropy_floor(None)": (lambda: entropy_floor(None), TypeError, "stories"),
    "entropy_floor(str)": (lambda: entropy_floor("abc"), TypeError, "stories"),
    "entropy_floor([1])": (lambda: entropy_floor([1]), TypeError, r"stories\[0\]"),
    # make_mood_task
    "mood num_train=0": (lambda: make_mood_task(0, 0, 0), ValueError, "num_train"),
    "mood num_train=-1": (lambda: make_mood_task(-1), ValueError, "num_train"),
    "mood num_train=True": (lambda: make_mood_task(True), ValueError, "num_train"),
    "mood num_train=1.5": (lambda: make_mood_task(1.5), ValueError, "num_train"),
    "mood num_validation=-1": (lambda: make_mood_task(8, -1), ValueError, "num_validation"),
    "mood num_validation=False": (lambda: make_mood_task(8, False), ValueError, "num_validation"),
    "mood num_test=-5": (lambda: make_mood_task(8, 8, -5), ValueError, "num_test"),
    "mood num_test=2.0": (lambda: make_mood_task(8, 8, 2.0), ValueError, "num_test"),
    "mood seed='x'": (lambda: make_mood_task(8, seed="x"), TypeError, "seed"),
    "mood seed=None": (lambda: make_mood_task(8, seed=None), TypeError, "seed"),
    # make_translation_corpus, generate_pair, SentencePair
    "translation num_sentences=-1": (lambda: make_translation_corpus(-1), ValueError, "num_sentences"),
    "translation num_sentences=0": (lambda: make_translation_corpus(0), ValueError, "num_sentences"),
    "translation num_sentences=True": (lambda: make_translation_corpus(True), ValueError, "num_sentences"),
    "translation num_sentences=500.0": (lambda: make_translation_corpus(500.0), ValueError, "num_sentences"),
    "translation seed=None": (lambda: make_translation_corpus(100, seed=None), TypeError, "seed"),
    "translation seed='x'": (lambda: make_translation_corpus(100, seed="x"), TypeError, "seed"),
    "translation split str": (lambda: make_translation_corpus(100, split="abc"), TypeError, "split"),
    "translation split None": (lambda: make_translation_corpus(100, split=None), TypeError, "split"),
    "translation split strs": (lambda: make_translation_corpus(100, split=("a", "b", "c")), TypeError, "split"),
    "translation split nan": (lambda: make_translation_corpus(100, split=(float("nan"), 0.5, 0.5)), ValueError,
                              "split"),
    "translation split sum 1.1": (lambda: make_translation_corpus(100, split=(0.8, 0.1, 0.2)), ValueError, "split"),
    "translation split empty validation": (lambda: make_translation_corpus(100, split=(0.5, 0.004, 0.496)),
                                           ValueError, "split"),
    "translation split empty train": (lambda: make_translation_corpus(100, split=(0.004, 0.5, 0.496)),
                                      ValueError, "split"),
    "translation split too small a test": (lambda: make_translation_corpus(100, split=(0.9, 0.08, 0.02)),
                                           ValueError, "split"),
    "generate_pair(None)": (lambda: generate_pair(None), TypeError, "rng"),
    "generate_pair(0)": (lambda: generate_pair(0), TypeError, "rng"),
    "SentencePair(zh=str)": (lambda: SentencePair("我爱", ("I",), (0,), (False,)), TypeError, "zh"),
    "SentencePair(en=list)": (lambda: SentencePair(("我",), ["I"], (0,), (False,)), TypeError, "en"),
    "SentencePair(alignment out of range)": (lambda: SentencePair(("我",), ("I",), (5,), (False,)), ValueError,
                                             "alignment"),
    "SentencePair(alignment short)": (lambda: SentencePair(("我",), ("I", "am"), (0,), (False,)), ValueError,
                                      "alignment"),
    # load_text
    "load_text(None)": (lambda: load_text(None), TypeError, "path"),
    "load_text(5)": (lambda: load_text(5), TypeError, "path"),
    "load_text('')": (lambda: load_text(""), ValueError, "path"),
    "load_text(missing)": (lambda: load_text("/nonexistent/corpus.txt"), FileNotFoundError, "text file"),
    "load_text(folder)": (lambda: load_text(os.path.dirname(__file__)), ValueError, "path"),
    # make_story_folder, FolderTextDataset, pad_collate
    "story folder root=None": (lambda: make_story_folder(None), TypeError, "root"),
    "story folder root is a file": (lambda: make_story_folder(__file__, 2), ValueError, "root"),
    "story folder per_class=0": (lambda: make_story_folder("/nonexistent/x", 0), ValueError, "per_class"),
    "story folder per_class=-1": (lambda: make_story_folder("/nonexistent/x", -1), ValueError, "per_class"),
    "story folder per_class=True": (lambda: make_story_folder("/nonexistent/x", True), ValueError, "per_class"),
    "story folder per_class=2.5": (lambda: make_story_folder("/nonexistent/x", 2.5), ValueError, "per_class"),
    "story folder seed=None": (lambda: make_story_folder("/nonexistent/x", 2, seed=None), TypeError, "seed"),
    "dataset root=None": (lambda: FolderTextDataset(None), TypeError, "root"),
    "dataset root missing": (lambda: FolderTextDataset("/nonexistent/x"), FileNotFoundError, "folder"),
    "pad_collate(str)": (lambda: pad_collate("ab"), TypeError, "batch"),
    "pad_collate(None)": (lambda: pad_collate(None), TypeError, "batch"),
    "pad_collate([])": (lambda: pad_collate([]), ValueError, "batch"),
    "pad_collate(not a pair)": (lambda: pad_collate([([1, 2], 0), 5]), TypeError, r"batch\[1\]"),
    "pad_collate(label str)": (lambda: pad_collate([([1, 2], "a")]), TypeError, r"batch\[0\]"),
    "pad_collate(label float)": (lambda: pad_collate([([1, 2], 0.5)]), TypeError, r"batch\[0\]"),
    "pad_collate(float ids)": (lambda: pad_collate([([1.5, 2], 0)]), TypeError, "batch"),
    "pad_collate(pad_id='x')": (lambda: pad_collate([([1, 2], 0)], pad_id="x"), TypeError, "pad_id"),
}


@pytest.mark.parametrize("call, error, name", CASES.values(), ids=CASES.keys())
def test_hostile_argument_is_refused_by_name(call, error, name):
    with pytest.raises(error, match=rf"(?<![\w\[]){name}"):
        call()
    assert not os.path.exists("/nonexistent/x")  # refused before anything was written


def test_files_that_are_not_text_are_refused_by_name(tmp_path):
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match=r"path .*image\.txt is not a UTF-8 text file"):
        load_text(tmp_path / "image.txt")
    (tmp_path / "blank.txt").write_text(" \n\t")
    with pytest.raises(ValueError, match="empty"):
        load_text(tmp_path / "blank.txt")
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "000.txt").write_text("he smiled .")
    (tmp_path / "happy" / "001.txt").write_bytes(b"\xff\xfe\x00")
    dataset = FolderTextDataset(tmp_path)
    assert dataset[0] == ("he smiled .", 0) and dataset[-2] == dataset[0]
    with pytest.raises(ValueError, match=r"001\.txt is not a UTF-8 text file"):
        dataset[1]
    with pytest.raises(IndexError, match="index 2 is out of range for 2 samples"):
        dataset[2]
    with pytest.raises(TypeError, match="index"):
        dataset["0"]


def test_valid_requests_beside_the_hostile_ones_still_work(tmp_path):
    assert len(make_story_corpus(10, seed=0).validation) == 1
    assert len(make_mood_task(1, 0, 0).train) == 1
    corpus = make_translation_corpus(100, split=(0.9, 0.07, 0.03))
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (90, 7, 3)
    root = make_story_folder(tmp_path / "stories", per_class=1)
    assert sorted(p.parent.name for p in root.rglob("*.txt")) == ["happy", "sad"]
    ids, lengths, labels = pad_collate([([1, 2], torch.tensor(1)), (torch.tensor([3]), 0)], pad_id=0)
    assert ids.tolist() == [[1, 2], [3, 0]] and lengths.tolist() == [2, 1] and labels.tolist() == [1, 0]
