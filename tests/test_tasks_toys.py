"""Tests of course_lib.tasks.toys (notebook 01): the neighbour task and the tense tagger."""

import pytest
import torch

from course_lib.data import NOTES_EXAMPLES, make_translation_corpus
from course_lib.tasks import toys
from course_lib.tokenizers import WordVocab
from course_lib.training import train


def test_neighbour_targets():
    tokens, targets = toys.neighbour_batch(4, 6, 10, torch.Generator().manual_seed(0))
    assert targets.shape == (4, 6, 2)
    assert torch.equal(targets[:, 2, 0], tokens[:, 1]) and torch.equal(targets[:, 2, 1], tokens[:, 3])
    assert torch.equal(targets[:, 0, 0], tokens[:, -1])  # wraps around


def test_head_offsets_reads_the_pattern():
    T = 6
    w = torch.zeros(1, 2, T, T)
    for i in range(T):
        w[0, 0, i, (i - 1) % T] = 1.0
        w[0, 1, i, (i + 2) % T] = 1.0
    assert toys.head_offsets(w) == [(-1, 1.0), (2, 1.0)]


def test_model_shapes():
    model = toys.NeighbourModel(10, 6, d_model=8, num_heads=2)
    logits, w = model(torch.zeros(3, 6, dtype=torch.long))
    assert logits.shape == (3, 6, 2, 10) and w.shape == (3, 2, 6, 6)


def test_tense_labels_follow_the_grammar():
    assert [toys.TENSES[toys.tense_of(p)] for p in NOTES_EXAMPLES] == ["present", "past", "past"]
    corpus = make_translation_corpus(num_sentences=300, seed=1)
    future = [p for p in corpus.train if toys.tense_of(p) == toys.TENSES.index("future")]
    assert future and all("会" in p.zh for p in future)


def test_tense_tagger_learns_to_look_at_the_markers():
    corpus = make_translation_corpus(num_sentences=600, seed=2)
    vocab = WordVocab(corpus.zh_words)
    g = torch.Generator().manual_seed(0)
    ids, tense = toys.tense_batch(corpus.train, vocab, 16, g)
    assert ids.shape[0] == tense.shape[0] == 16 and ids.dtype == torch.long
    model = toys.TenseTagger(len(vocab))
    train(model, lambda step: toys.tense_batch(corpus.train, vocab, 64, g), toys.tense_loss,
          steps=200, lr=0.01, schedule="cosine", progress=False, live_plot=False)
    past = [p for p in corpus.test if toys.tense_of(p) == 1][:10]
    x, _ = vocab.encode_batch([p.zh for p in past])
    with torch.no_grad():
        logits, w = model(x)
    assert w.shape == (10, 1, x.shape[1], x.shape[1])
    assert (logits.argmax(-1)[x != 0] == 1).float().mean() > 0.95
    le = x == vocab.stoi["了"]
    assert (w[:, 0] * le[:, None, :]).sum(-1)[x != 0].mean() > 0.5  # words look at 了


def test_one_head_names_one_neighbour_two_heads_name_both():
    tokens, targets = toys.neighbour_batch(256, 8, 16, torch.Generator().manual_seed(99))
    two, history = toys.train_neighbour_model(2, seed=3, steps=300, progress=False)
    one, _ = toys.train_neighbour_model(1, seed=3, steps=300, progress=False)
    assert history.losses[-1] < history.losses[0]
    acc2, acc1 = toys.neighbour_accuracy(two, tokens, targets), toys.neighbour_accuracy(one, tokens, targets)
    assert acc2["both"] > 0.95
    # one weighted average cannot hold both neighbours apart: it names one and guesses the other
    # (chance: 1/16), or splits its weight and mixes the two up; either way about half is right
    assert acc1["both"] < 0.65
    assert acc1["both"] == (acc1["before"] + acc1["after"]) / 2
    assert two.training  # the model's mode is restored


def test_neighbour_recipe_is_seeded_and_accuracy_is_checked():
    a, ha = toys.train_neighbour_model(1, seed=4, steps=5, progress=False)
    b, hb = toys.train_neighbour_model(1, seed=4, steps=5, progress=False)
    assert ha.losses == hb.losses and a.attn.num_heads == 1
    tokens, targets = toys.neighbour_batch(4, 8, 16, torch.Generator().manual_seed(0))
    for bad in (targets[..., 0], targets[:2]):
        with pytest.raises(ValueError, match="targets"):
            toys.neighbour_accuracy(a, tokens, bad)
    with pytest.raises(TypeError, match="NeighbourModel"):
        toys.neighbour_accuracy(torch.nn.Linear(2, 2), tokens, targets)
    with pytest.raises(ValueError, match="num_heads"):
        toys.train_neighbour_model(0, steps=1, progress=False)
