"""course_lib.frameworks: the course's BERT pieces held against Hugging Face's (notebook 06)."""

import math

import pytest
import torch
import transformers
from transformers import DataCollatorForLanguageModeling

from course_lib.batching import IGNORE_INDEX
from course_lib.bert import BertConfig, BertForPreTraining, mask_tokens
from course_lib.frameworks import collators, data, models
from course_lib.frameworks import tokenizers as hf_tokenizers
from course_lib.tasks import bert as recipes
from course_lib.tokenizers import SPECIAL_TOKENS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = ["the man went to the park .", "he fed the ducks .", "the woman went to the store .",
             "she bought a gallon of milk .", "he played football .", "she felt very happy ."] * 3


class Story:
    def __init__(self, sentences):
        self.sentences = sentences


def small_config(vocab_size, layers=2):
    return BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def toks():
    trained = hf_tokenizers.train_wordpiece(SENTENCES, vocab_size=200)
    fast = hf_tokenizers.as_bert_tokenizer(trained, model_max_length=32)
    return trained, fast, hf_tokenizers.course_tokenizer(fast)


# --- models ---------------------------------------------------------------------------------
def test_weights_copy_both_ways_with_equal_logits_and_loss(toks):
    _, _, wp = toks
    torch.manual_seed(0)
    ours = BertForPreTraining(small_config(len(wp))).eval()
    theirs = models.to_transformers(ours)
    examples = recipes.nsp_examples([Story(SENTENCES[:6]), Story(SENTENCES[6:12])], wp, seed=0)
    batch = recipes.bert_batch(examples, wp, torch.Generator().manual_seed(0))
    with torch.no_grad():
        mlm, nsp, loss = ours(**batch)
        out = theirs(**data.transformers_batch(batch))
    assert torch.allclose(mlm, out.prediction_logits, atol=1e-5)
    assert torch.allclose(nsp, out.seq_relationship_logits, atol=1e-5)
    assert loss.item() == pytest.approx(out.loss.item(), rel=1e-5)   # the same MLM + NSP sum

    torch.manual_seed(1)
    fresh = transformers.BertForPreTraining(models.transformers_config(small_config(len(wp)))).eval()
    back = models.from_transformers(fresh)
    with torch.no_grad():
        assert not torch.allclose(ours(batch["input_ids"])[0], back(batch["input_ids"])[0], atol=1e-3)
        assert torch.allclose(back(batch["input_ids"])[0], fresh(input_ids=batch["input_ids"]).prediction_logits,
                              atol=1e-5)
    assert back.bert.config == ours.bert.config


def test_weight_names_cover_both_models_exactly():
    config = small_config(50, layers=3)
    ours, theirs = BertForPreTraining(config), transformers.BertForPreTraining(models.transformers_config(config))
    names = models.weight_names(3)
    assert set(names.values()) == set(ours.state_dict())
    assert set(names) | set(models.TIED_NAMES) == set(theirs.state_dict())
    rows = models.parameter_table(ours, theirs)
    assert rows[-1][3] == sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert len(rows) - 1 == len(names)


def test_models_refuse_bad_input():
    with pytest.raises(TypeError, match="course_lib.bert.BertConfig"):
        models.transformers_config({"vocab_size": 10})
    with pytest.raises(ValueError, match="relu"):
        models.transformers_config(BertConfig(**{**small_config(20).to_dict(), "hidden_act": "relu"}))
    with pytest.raises(ValueError, match="num_layers"):
        models.weight_names(0)
    with pytest.raises(TypeError, match="course_lib.bert.BertForPreTraining"):
        models.to_transformers(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="same shapes"):
        models.to_transformers(BertForPreTraining(small_config(20)),
                               transformers.BertForPreTraining(models.transformers_config(small_config(30))))


# --- tokenizers ------------------------------------------------------------------------------
def test_trained_tokenizer_gives_the_course_ids(toks):
    trained, fast, wp = toks
    vocab = hf_tokenizers.vocabulary(trained)
    assert vocab[:5] == list(SPECIAL_TOKENS)                    # [PAD] = 0, as the course's tokenizers
    assert {w for s in SENTENCES for w in s.split()} <= set(vocab)
    texts = [("The Man went to the PARK!", "he fed ducks, quickly."), ("zebra café [MASK] park", None),
             ("she felt very happy .", "unknownword")]
    for a, b in texts:
        assert fast(a, b)["input_ids"] == wp.encode(a, b)["input_ids"], (a, b)
        assert fast(a, b)["token_type_ids"] == wp.encode(a, b)["token_type_ids"], (a, b)
        assert fast.tokenize(a) == wp.tokenize(a)
    assert "[UNK]" in fast.tokenize("zebra")                      # a character never seen
    assert fast.mask_token_id == wp.mask_id and fast.pad_token_id == wp.pad_id == 0


def test_tokenizers_refuse_bad_input():
    with pytest.raises(TypeError, match="list of str"):
        hf_tokenizers.train_wordpiece("the man went")
    with pytest.raises(ValueError, match="room beyond"):
        hf_tokenizers.train_wordpiece(SENTENCES, vocab_size=5)
    with pytest.raises(TypeError, match="tokenizers.Tokenizer"):
        hf_tokenizers.as_bert_tokenizer("vocab.txt")


# --- collators -------------------------------------------------------------------------------
def test_count_masking_by_hand():
    original = torch.tensor([[2, 7, 8, 9, 10, 3, 0]])
    inputs = torch.tensor([[2, 4, 8, 11, 10, 3, 0]])
    labels = torch.tensor([[IGNORE_INDEX, 7, 8, 9, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    c = collators.count_masking(original, inputs, labels, mask_id=4, special_ids=[0, 1, 2, 3, 4], pad_id=0)
    assert c == {"ordinary": 4, "selected": 3, "mask": 1, "random": 1, "unchanged": 1, "special selected": 0,
                 "random is special": 0}
    inputs[0, 3] = 3                                               # a random pick that is [SEP]
    labels[0, 6] = 0                                               # padding selected
    c = collators.count_masking(original, inputs, labels, mask_id=4, special_ids=[0, 1, 2, 3, 4], pad_id=0)
    assert c["random is special"] == 1 and c["special selected"] == 1
    with pytest.raises(ValueError, match="original id"):
        collators.count_masking(original, inputs, torch.full_like(labels, 5), mask_id=4, special_ids=[0], pad_id=0)
    with pytest.raises(ValueError, match="shape"):
        collators.count_masking(original, inputs[:, :3], labels, mask_id=4, special_ids=[0], pad_id=0)


def test_collator_and_mask_tokens_follow_the_rule(toks):
    _, fast, wp = toks
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(wp), (400, 60), generator=g)
    ids[:, 0], ids[:, -1] = wp.cls_id, wp.sep_id
    items = [{"input_ids": row} for row in ids.tolist()]
    batch = DataCollatorForLanguageModeling(fast, mlm_probability=0.15, seed=0)(items)
    inputs, labels = mask_tokens(ids, vocab_size=len(wp), mask_token_id=wp.mask_id, special_token_ids=wp.special_ids,
                                 generator=torch.Generator().manual_seed(0))
    kw = dict(mask_id=wp.mask_id, special_ids=wp.special_ids, pad_id=wp.pad_id)
    for c in (collators.count_masking(ids, batch["input_ids"], batch["labels"], **kw),
              collators.count_masking(ids, inputs, labels, **kw)):
        n = c["ordinary"]
        assert abs(c["selected"] / n - 0.15) < 4 * collators.binomial_se(0.15, n)
        assert abs(c["mask"] / c["selected"] - 0.8) < 4 * collators.binomial_se(0.8, c["selected"])
        assert c["special selected"] == 0
    # the same uniform draw against 0.15 with the same seed: the same positions selected
    assert torch.equal(batch["labels"] != IGNORE_INDEX, labels != IGNORE_INDEX)


def test_binomial_se():
    assert collators.binomial_se(0.15, 10_000) == pytest.approx(math.sqrt(0.15 * 0.85 / 10_000))
    with pytest.raises(ValueError, match="probability"):
        collators.binomial_se(1.5, 10)
    with pytest.raises(ValueError, match="positive int"):
        collators.binomial_se(0.5, 0)


# --- data ------------------------------------------------------------------------------------
def test_pretraining_pairs_feed_the_collator_and_the_model(toks):
    _, fast, wp = toks
    examples = recipes.nsp_examples([Story(SENTENCES[:6]), Story(SENTENCES[6:12])], wp, seed=0)
    dataset = data.PretrainingPairs(examples)
    assert len(dataset) == len(examples)
    ids, types, is_next = examples[0]
    assert dataset[0] == {"input_ids": ids, "token_type_ids": types, "next_sentence_label": 0 if is_next else 1}
    batch = DataCollatorForLanguageModeling(fast, seed=0)([dataset[i] for i in range(len(dataset))])
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label"}
    longest = max(len(x) for x, _, _ in examples)
    assert batch["input_ids"].shape == (len(examples), longest)
    assert batch["attention_mask"].sum().item() == sum(len(x) for x, _, _ in examples)
    model = transformers.BertForPreTraining(models.transformers_config(small_config(len(wp))))
    assert torch.isfinite(model(**batch).loss)


def test_pretraining_pairs_refuse_bad_input():
    with pytest.raises(TypeError, match="nsp_examples"):
        data.PretrainingPairs("pairs")
    with pytest.raises(TypeError, match=r"examples\[0\]"):
        data.PretrainingPairs([([1, 2], [0, 0])])
    with pytest.raises(ValueError, match="token_type_ids"):
        data.PretrainingPairs([([1, 2, 3], [0, 0], True)])
    with pytest.raises(TypeError, match="bert_batch"):
        data.transformers_batch({"input_ids": torch.zeros(1, 2)})
