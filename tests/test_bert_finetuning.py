"""BERT's fine-tuning stage (notebook 04): BertForClassification against transformers, and the recipe."""

import pytest
import torch

from course_lib.bert import BertConfig, BertForClassification, BertForPreTraining, BertModel
from course_lib.data.stories import make_mood_task, make_story_corpus
from course_lib.tasks import bert as B
from course_lib.tasks import transfer as T

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_classifier_equals_transformers_sequence_classification(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=20, num_labels=3)
    reference = transformers.BertForSequenceClassification(config).eval()
    reference.bert.save_pretrained(tmp_path)   # the encoder; the classifier is copied below
    ours = BertForClassification(BertModel.from_pretrained(tmp_path), num_classes=3).eval()
    ours.head.load_state_dict({"weight": reference.classifier.weight, "bias": reference.classifier.bias})
    ids = torch.randint(0, 50, (4, 9), generator=torch.Generator().manual_seed(1))
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    labels = torch.tensor([0, 2, 1, 2])
    theirs = reference(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    logits, loss = ours(ids, types, mask, labels=labels)
    torch.testing.assert_close(logits, theirs.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, theirs.loss, atol=1e-5, rtol=1e-5)


def test_classifier_refuses_bad_labels_by_name():
    model = BertForClassification(BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                                       num_attention_heads=2, intermediate_size=16,
                                                       max_position_embeddings=10)), 2)
    ids = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"labels must be in \[0, num_classes=2\)"):
        model(ids, labels=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\) = \(2,\)"):
        model(ids, labels=torch.tensor([0]))
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        model(ids, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="bert must be a BertModel"):
        BertForClassification(torch.nn.Linear(2, 2), 2)


@pytest.fixture(scope="module")
def setting():
    corpus = make_story_corpus(300, seed=0)
    tokenizer = B.story_tokenizer(corpus.words)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=48, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    task = make_mood_task(num_train=240, num_validation=400, num_test=100, seed=0)
    return tokenizer, config, task


def test_finetuning_starts_from_the_pretrained_encoder_and_keeps_the_best_step(setting):
    tokenizer, config, task = setting
    torch.manual_seed(0)
    pretrained = BertForPreTraining(config)
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    split = T.few_label_split(task, 8, seed=0)
    untrained = B.finetune_bert_classifier(split.train, tokenizer, pretrained=pretrained, steps=1, lr=1e-12)
    torch.testing.assert_close(untrained.bert.word_embeddings.weight, pretrained.bert.word_embeddings.weight)
    model = B.finetune_bert_classifier(split.train, tokenizer, pretrained=pretrained, steps=40, lr=3e-3,
                                       validation=split.validation, eval_every=20)
    assert all(torch.equal(v, pretrained.state_dict()[k]) for k, v in before.items())   # the original is untouched
    assert model.selected_step in (20, 40)
    logits = B.bert_classifier_logits(model, split.validation, tokenizer)
    labels = torch.tensor([e.label for e in split.validation])
    assert torch.nn.functional.cross_entropy(logits, labels).item() == pytest.approx(model.validation_loss, rel=1e-5)
    fitted = B.finetune_bert_classifier(split.train, tokenizer, config=config, steps=60, lr=3e-3)
    train_labels = torch.tensor([e.label for e in split.train])
    assert (B.bert_classifier_logits(fitted, split.train, tokenizer).argmax(-1) == train_labels).all()


def test_finetuning_refuses_bad_arguments(setting):
    tokenizer, config, task = setting
    with pytest.raises(ValueError, match="exactly one of pretrained"):
        B.finetune_bert_classifier(task.train[:4], tokenizer)
    with pytest.raises(ValueError, match="give validation and eval_every together"):
        B.finetune_bert_classifier(task.train[:4], tokenizer, config=config, validation=task.validation[:4])
    with pytest.raises(TypeError, match=r"examples\[0\] must have .text and .label"):
        B.finetune_bert_classifier([("a", 1)], tokenizer, config=config)
    with pytest.raises(ValueError, match="lrs must name at least one"):
        B.bert_finetune_arm(tokenizer, config=config, lrs=())
