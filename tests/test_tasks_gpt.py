"""Tests of course_lib.tasks.gpt (notebook 03): story batches, the LM loss, pretraining, fine-tuning."""

import pytest
import torch

from course_lib.batching import IGNORE_INDEX
from course_lib.data.stories import make_mood_task, make_story_corpus
from course_lib.gpt import GPT, GPTConfig
from course_lib.tasks import gpt as P
from course_lib.tokenizers import WordVocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    corpus = make_story_corpus(600, seed=0)
    vocab = WordVocab(corpus.words)
    config = GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=1, n_head=2, n_embd=32)
    return corpus, vocab, config


def test_encode_stories_predicts_every_word_and_eos(world):
    corpus, vocab, _ = world
    texts = [s.words for s in corpus.train[:3]]
    inputs, targets = P.encode_stories(texts, vocab, block_size=48)
    for i, words in enumerate(texts):
        n = len(words)
        assert inputs[i, 0] == vocab.bos_id and targets[i, n] == vocab.eos_id
        assert targets[i, :n].tolist() == vocab.encode(words)
        assert inputs[i, 1:n + 1].tolist() == vocab.encode(words)
        assert (targets[i, n + 1:] == IGNORE_INDEX).all() and (inputs[i, n + 1:] == vocab.pad_id).all()
    assert int((targets != IGNORE_INDEX).sum()) == sum(len(w) + 1 for w in texts)
    with pytest.raises(ValueError, match="more than block_size=5"):
        P.encode_stories(texts, vocab, block_size=5)


def test_evaluate_lm_is_the_mean_loss_per_token(world):
    corpus, vocab, config = world
    torch.manual_seed(0)
    model = GPT(config)
    texts = [s.words for s in corpus.validation[:20]]
    inputs, targets = P.encode_stories(texts, vocab, 48)
    with torch.no_grad():
        expected = model.eval()(inputs, targets)[1].item()
    model.train()
    assert P.evaluate_lm(model, texts, vocab, batch_size=7) == pytest.approx(expected, rel=1e-5)
    assert model.training  # the mode is given back


def test_pretraining_learns_and_is_deterministic(world):
    corpus, vocab, config = world
    train, val = [s.words for s in corpus.train], [s.words for s in corpus.validation]
    kwargs = dict(steps=60, batch_size=16, lr=1e-2, progress=False, live_plot=False)
    m1, h1 = P.pretrain_gpt(train, val, vocab, config, **kwargs)
    m2, h2 = P.pretrain_gpt(train, val, vocab, config, **kwargs)
    assert h1.losses == h2.losses
    assert h1.evals[-1]["val_loss"] < 0.6 * h1.losses[0]


def test_finetuning_from_scratch_or_pretrained(world):
    _, vocab, config = world
    task = make_mood_task(num_train=16, num_validation=8, num_test=40, seed=0)
    torch.manual_seed(0)
    pretrained = GPT(config)
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    model = P.finetune_classifier(task.train, vocab, pretrained=pretrained, lm_weight=0.5, steps=40, lr=3e-3)
    assert all(torch.equal(v, pretrained.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert P.classifier_accuracy(model, task.train, vocab) == 1.0  # it can at least fit its 16 examples
    model.train()
    assert 0.0 <= P.classifier_accuracy(model, task.test, vocab) <= 1.0
    assert model.training  # the mode is given back
    scratch = P.finetune_classifier(task.train, vocab, config=config, steps=5)
    assert scratch.gpt is not pretrained
    with pytest.raises(ValueError, match="exactly one of pretrained"):
        P.finetune_classifier(task.train, vocab, pretrained=pretrained, config=config)


def test_encode_examples_pads_after_bos_and_gives_lengths(world):
    _, vocab, _ = world
    ids, lengths = P.encode_examples([["he", "smiled", "."], ["."]], vocab)
    assert ids.tolist() == [[vocab.bos_id] + vocab.encode(["he", "smiled", "."]),
                            [vocab.bos_id, vocab.stoi["."], vocab.pad_id, vocab.pad_id]]
    assert lengths.tolist() == [4, 2]


def test_text_windows_are_shifted_slices():
    ids = torch.arange(100)
    inputs, targets = P.text_windows(ids, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (4, 8)
    assert torch.equal(targets, inputs + 1)  # the next token of an arange is the id plus one
    with pytest.raises(ValueError, match="longer than block_size=8"):
        P.text_windows(torch.arange(8), 8, 2, torch.Generator())
