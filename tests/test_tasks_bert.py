"""Tests of course_lib.tasks.bert (notebook 04): story tokenizer, NSP pairs, MLM batches, pretraining."""

import pytest
import torch

from course_lib.batching import IGNORE_INDEX
from course_lib.bert import IS_NEXT, NOT_NEXT, BertConfig, BertForPreTraining
from course_lib.data.stories import make_story_corpus
from course_lib.tasks import bert as B
from course_lib.tokenizers import SPECIAL_TOKENS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    corpus = make_story_corpus(300, seed=0)
    tok = B.story_tokenizer(corpus.words)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1)
    return corpus, tok, config


def test_story_tokenizer_keeps_every_story_word_whole(world):
    corpus, tok, _ = world
    assert tok.itos[:5] == list(SPECIAL_TOKENS) and len(tok) == 5 + len(corpus.words)
    text = corpus.train[0].text
    assert tok.tokenize(text) == text.split()


def test_nsp_examples_are_encoded_pairs_half_is_next(world):
    corpus, tok, _ = world
    examples = B.nsp_examples(corpus.train[:60], tok, seed=0)
    assert examples == B.nsp_examples(corpus.train[:60], tok, seed=0)  # seeded
    for ids, types, is_next in examples:
        assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id and ids.count(tok.sep_id) == 2
        first_sep = ids.index(tok.sep_id)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    share = sum(is_next for _, _, is_next in examples) / len(examples)
    assert 0.35 < share < 0.65


def test_bert_batch_pads_and_masks_only_ordinary_tokens(world):
    corpus, tok, _ = world
    examples = B.nsp_examples(corpus.train[:80], tok, seed=0)
    batch = B.bert_batch(examples, tok, torch.Generator().manual_seed(0))
    T = max(len(ids) for ids, _, _ in examples)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        "input_ids": (len(examples), T), "token_type_ids": (len(examples), T), "attention_mask": (len(examples), T),
        "mlm_labels": (len(examples), T), "nsp_labels": (len(examples),)}
    original = torch.full((len(examples), T), tok.pad_id)
    for i, (ids, types, is_next) in enumerate(examples):
        original[i, :len(ids)] = torch.tensor(ids)
        assert batch["attention_mask"][i].tolist() == [1] * len(ids) + [0] * (T - len(ids))
        assert batch["token_type_ids"][i].tolist() == types + [0] * (T - len(ids))
        assert batch["nsp_labels"][i] == (IS_NEXT if is_next else NOT_NEXT)
    selected = batch["mlm_labels"] != IGNORE_INDEX
    assert torch.equal(batch["mlm_labels"][selected], original[selected])
    assert not torch.isin(original[selected], torch.tensor(tok.special_ids)).any()
    assert torch.equal(batch["input_ids"][~selected], original[~selected])  # only selected tokens change
    assert 0.1 < selected.sum() / (~torch.isin(original, torch.tensor(tok.special_ids))).sum() < 0.2


def test_pretraining_is_deterministic_and_evaluation_gives_the_mode_back(world):
    corpus, tok, config = world
    train = B.nsp_examples(corpus.train, tok, seed=0)
    val = B.nsp_examples(corpus.validation[:20], tok, seed=1)
    kwargs = dict(steps=6, batch_size=8, eval_every=3, progress=False, live_plot=False)
    m1, h1 = B.pretrain_bert(train, val, tok, config, **kwargs)
    m2, h2 = B.pretrain_bert(train, val, tok, config, **kwargs)
    assert h1.losses == h2.losses and h1.evals == h2.evals and [e["step"] for e in h1.evals] == [3, 6]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    m1.train()
    scores = B.evaluate_bert(m1, val, tok, batch_size=7)
    assert set(scores) == {"mlm_accuracy", "nsp_accuracy", "mlm_loss", "nsp_loss"}
    assert 0 <= scores["mlm_accuracy"] <= 1 and 0 <= scores["nsp_accuracy"] <= 1
    assert scores["mlm_loss"] > 0 and scores["nsp_loss"] > 0
    assert m1.training
    assert B.evaluate_bert(m1, val, tok, batch_size=7) == scores  # masking seeded, dropout off
    batch = B.bert_batch(train[:4], tok, torch.Generator().manual_seed(0))
    loss = B.bert_loss(m1, batch)
    assert loss.shape == () and torch.isfinite(loss)


def test_history_holds_the_two_losses_and_their_validation_values(world):
    corpus, tok, config = world
    train = B.nsp_examples(corpus.train, tok, seed=0)
    val = B.nsp_examples(corpus.validation[:20], tok, seed=1)
    model, h = B.pretrain_bert(train, val, tok, config, steps=5, batch_size=8, eval_every=5, progress=False,
                               live_plot=False)
    assert isinstance(h, B.BertHistory) and len(h.mlm_losses) == len(h.nsp_losses) == len(h.losses) == 5
    for total, mlm, nsp in zip(h.losses, h.mlm_losses, h.nsp_losses):
        assert mlm > 0 and nsp > 0 and abs(mlm + nsp - total) < 1e-5
    assert {"mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"} <= set(h.evals[-1])
    # the validation losses are the mean cross-entropies: recompute them from one batch holding every pair
    batch = B.bert_batch(val, tok, torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        mlm_logits, nsp_logits, _ = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    nsp = torch.nn.functional.cross_entropy(nsp_logits, batch["nsp_labels"]).item()
    mlm = torch.nn.functional.cross_entropy(mlm_logits.flatten(0, 1), batch["mlm_labels"].flatten(),
                                            ignore_index=IGNORE_INDEX).item()
    scores = B.evaluate_bert(model, val, tok)
    assert abs(scores["nsp_loss"] - nsp) < 1e-5 and abs(scores["mlm_loss"] - mlm) < 1e-5


def test_nsp_predictions_and_single_mask_accuracy_match_a_direct_computation(world):
    corpus, tok, config = world
    torch.manual_seed(0)
    model = BertForPreTraining(config).eval()
    val = B.nsp_examples(corpus.validation[:10], tok, seed=1)
    calls = B.nsp_predictions(model, val, tok, batch_size=3)
    hits = total = 0
    with torch.no_grad():
        for k, (ids, types, _) in enumerate(val):
            x = torch.tensor([ids])
            assert calls[k] == bool(model(x, torch.tensor([types]))[1].argmax(-1) == IS_NEXT)
            for j, t in enumerate(ids):
                if t in tok.special_ids:
                    continue
                masked = x.clone()
                masked[0, j] = tok.mask_id
                hits += int(model(masked, torch.tensor([types]))[0][0, j].argmax() == t)
                total += 1
    assert all(isinstance(c, bool) for c in calls) and len(calls) == len(val)
    assert B.single_mask_accuracy(model, val, tok, batch_size=7) == hits / total
