"""Tests of the few-label transfer experiment (notebooks 03-04): course_lib.tasks.transfer and the GPT arms."""

import math
from collections import Counter

import pytest
import torch

from course_lib.data.stories import EVENTS, FEELINGS, MOODS, MoodExample, make_mood_task, make_story_corpus
from course_lib.gpt import GPT, GPTConfig
from course_lib.tasks import gpt as G
from course_lib.tasks import transfer as T
from course_lib.tokenizers import WordVocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task():
    return make_mood_task(num_train=240, num_validation=400, num_test=300, seed=0)


@pytest.fixture(scope="module")
def world():
    corpus = make_story_corpus(300, seed=0)
    vocab = WordVocab(corpus.words)
    config = GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=1, n_head=2, n_embd=16)
    return vocab, config


# --- the split ------------------------------------------------------------------------------


@pytest.mark.parametrize("num_labels", [8, 16, 24])
def test_split_uses_each_labelled_word_equally_and_splits_the_test_by_word(task, num_labels):
    split = T.few_label_split(task, num_labels, seed=3)
    words = {w for ws in split.labelled_words.values() for w in ws}
    assert all(len(ws) == 4 and set(ws) <= set(FEELINGS[m]) for m, ws in split.labelled_words.items())
    counts = Counter(e.feeling for e in split.train)
    assert set(counts) == words and set(counts.values()) == {num_labels // 8}
    assert [e.label for e in split.train] == [0, 1] * (num_labels // 2)          # balanced, interleaved
    assert all(e.label == MOODS.index(m) for m, ws in split.labelled_words.items()
               for e in split.train if e.feeling in ws)
    assert {e.feeling for e in split.validation} == words and len(split.validation) == 64
    assert {e.feeling for e in split.test_seen} == words
    assert not {e.feeling for e in split.test_unseen} & words
    assert sorted(e.text for e in split.test_seen + split.test_unseen) == sorted(e.text for e in task.test)
    assert not {e.text for e in split.train} & {e.text for e in split.validation}


def test_seeds_draw_different_words_and_stories_and_a_seed_repeats(task):
    a, b, a2 = (T.few_label_split(task, 8, seed) for seed in (0, 1, 0))
    assert a == a2
    assert a.labelled_words != b.labelled_words or [e.text for e in a.train] != [e.text for e in b.train]


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_labels=6), "multiple of 2 \\* words_per_mood = 8"),
    (dict(num_labels=8, words_per_mood=8), "words_per_mood must be in \\[1, 7\\]"),
    (dict(num_labels=8, num_validation=10), "num_validation must be a multiple"),
    (dict(num_labels=8000), "num_labels=8000 needs 1000 stories"),
])
def test_split_refuses_bad_requests(task, kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.few_label_split(task, seed=0, **kwargs)


def test_split_refuses_a_task_of_another_kind():
    with pytest.raises(TypeError, match="task must be a MoodTask"):
        T.few_label_split([], 8, 0)


# --- the baselines --------------------------------------------------------------------------


def test_logistic_regression_separates_separable_data_and_chooses_on_validation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = (x[:, 0] > 0).long()
    linear = T.logistic_regression(x[:20], y[:20], x[20:], y[20:], weight_decays=(1e-3,))
    assert (linear(x).argmax(-1) == y).float().mean() >= 0.95
    # labels that contradict the training data on validation: the strongest penalty (flattest) wins
    strong = T.logistic_regression(x[:20], y[:20], x[20:], 1 - y[20:], weight_decays=(1e-4, 10.0))
    assert strong(x).abs().max() < 0.5
    with pytest.raises(ValueError, match="val_x must have 3 features"):
        T.logistic_regression(x, y, x[:, :2], y)


def test_bag_of_words_cannot_tell_unseen_words_apart(task, world):
    vocab, _ = world
    split = T.few_label_split(task, 16, seed=0)
    predict = T.bag_of_words(vocab)(split.train, split.validation, 0)
    assert (predict(split.train) == torch.tensor([e.label for e in split.train])).float().mean() == 1.0
    # swap an unseen word for an unseen word of the other mood: the prediction cannot change
    unseen = {m: [w for w in FEELINGS[m] if w not in split.labelled_words[m]] for m in MOODS}
    stories = split.test_unseen[:20]
    swapped = []
    for e in stories:
        other = MOODS[1 - e.label]
        word = unseen[other][0]
        swapped.append(MoodExample(e.text.replace(f" {e.feeling} .", f" {word} ."), 1 - e.label, word))
    assert torch.equal(predict(stories), predict(swapped))


# --- the experiment -------------------------------------------------------------------------


def test_run_experiment_gives_every_arm_the_same_split_and_measures_it(task):
    seen_by = {}

    def oracle(train, validation, seed):
        seen_by.setdefault("oracle", []).append([e.text for e in train])
        return lambda examples: torch.tensor([e.label for e in examples])

    def memoriser(train, validation, seed):   # knows the labelled words, says "happy" for the rest
        seen_by.setdefault("memoriser", []).append([e.text for e in train])
        known = {e.feeling: e.label for e in train}
        return lambda examples: torch.tensor([known.get(e.feeling, 0) for e in examples])

    results = T.run_experiment({"oracle": oracle, "memoriser": memoriser}, task, [8, 16], [0, 1], progress=False)
    assert seen_by["oracle"] == seen_by["memoriser"] and len(seen_by["oracle"]) == 4
    assert results.arms == ["oracle", "memoriser"] and results.sizes == [8, 16]
    assert all(v == 1.0 for m in T.METRICS for v in results.values("oracle", 8, m))
    assert results.values("memoriser", 16, "seen") == [1.0, 1.0]
    for seed, value in zip([0, 1], results.values("memoriser", 8, "unseen")):
        split = T.few_label_split(task, 8, seed)
        happy = sum(e.label == 0 for e in split.test_unseen) / len(split.test_unseen)
        assert value == pytest.approx(happy)
    mean, sd = results.mean_sd("memoriser", 8, "unseen")
    assert 0.3 < mean < 0.7 and sd >= 0
    assert "| memoriser | 100.0% ± 0.0% | 100.0% ± 0.0% |" in results.table("seen")
    with pytest.raises(ValueError, match="no runs of arm 'nobody'"):
        results.values("nobody", 8, "seen")
    with pytest.raises(ValueError, match="metric must be one of"):
        results.values("oracle", 8, "accuracy")


def test_run_experiment_names_an_arm_that_returns_the_wrong_thing(task):
    with pytest.raises(ValueError, match="must return a tensor"):
        T.run_experiment({"bad": lambda tr, va, s: (lambda ex: [0] * len(ex))}, task, [8], [0], progress=False)
    with pytest.raises(TypeError, match="arms must be a non-empty dict"):
        T.run_experiment({}, task, [8], [0])


# --- the GPT arms ---------------------------------------------------------------------------


def test_finetuning_keeps_the_step_with_the_lowest_validation_loss(task, world):
    vocab, config = world
    split = T.few_label_split(task, 8, seed=0)
    model = G.finetune_classifier(split.train, vocab, config=config, steps=50, lr=3e-3, seed=0,
                                  validation=split.validation, eval_every=20)
    assert model.selected_step in (20, 40, 50)
    assert G.classifier_loss(model, split.validation, vocab) == pytest.approx(model.validation_loss, rel=1e-5)
    longest = G.finetune_classifier(split.train, vocab, config=config, steps=model.selected_step, lr=3e-3, seed=0)
    assert G.classifier_loss(longest, split.validation, vocab) == pytest.approx(model.validation_loss, rel=1e-4)
    with pytest.raises(ValueError, match="give validation and eval_every together"):
        G.finetune_classifier(split.train, vocab, config=config, steps=5, validation=split.validation)


def test_zero_shot_scores_are_the_language_model_s_probabilities(world):
    vocab, config = world
    torch.manual_seed(0)
    model = GPT(config).eval()
    story = MoodExample("anna went to the park . she fed the ducks . she felt so gloomy .", 1, "gloomy")
    scores = G.zero_shot_scores(model, [story], vocab)
    assert scores.shape == (1, 2)
    for m, mood in enumerate(MOODS):   # by hand: insert each event, score "felt so gloomy ."
        logs = []
        for event in EVENTS[mood]:
            prefix = "anna went to the park . she fed the ducks . she " + event + " . she"
            ids = torch.tensor([vocab.encode((prefix + " felt so gloomy .").split(), add_bos=True)])
            log_p = model(ids)[0][0].log_softmax(-1)
            start = len(prefix.split()) + 1
            logs.append(sum(log_p[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1])))
        expected = math.log(sum(math.exp(v) for v in logs) / len(logs))
        assert scores[0, m].item() == pytest.approx(expected, abs=1e-4)
    predict = G.zero_shot_arm(model, vocab)([], [], 0)
    assert predict([story, story]).tolist() == [int(scores.argmax())] * 2
    with pytest.raises(ValueError, match="no '<pronoun> felt ...' sentence"):
        G.zero_shot_scores(model, [MoodExample("tom went to the park .", 0, "park")], vocab)


def test_linear_probe_reads_the_chosen_position(task, world):
    vocab, config = world
    torch.manual_seed(0)
    model = GPT(config)
    split = T.few_label_split(task, 8, seed=0)
    for from_end in (1, 2):
        predict = G.linear_probe_arm(model, vocab, from_end=from_end)(split.train, split.validation, 0)
        assert predict(split.test_seen).shape == (len(split.test_seen),)
    with pytest.raises(ValueError, match="from_end=40 reaches past the start"):
        G.linear_probe_arm(model, vocab, from_end=40)(split.train, split.validation, 0)


def test_feeling_similarity_sees_a_mood_direction_and_nothing_in_noise():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(16, 32, generator=g)
    assert abs(T.within_minus_across(T.feeling_similarity(noise, range(16)))) < 0.1
    mood = torch.zeros(16, 32)
    mood[:8, 0], mood[8:, 0] = 8.0, -8.0                        # one direction says the mood
    grouped = T.within_minus_across(T.feeling_similarity(noise + mood, range(16)))
    assert grouped > 1.0
    with pytest.raises(ValueError, match="ids must hold the 16 feeling words"):
        T.feeling_similarity(noise, range(5))
    with pytest.raises(ValueError, match="similarity must be a \\(16, 16\\) tensor"):
        T.within_minus_across(torch.zeros(4, 4))
