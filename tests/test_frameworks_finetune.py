"""course_lib.frameworks.finetune: MiniLM fine-tuned with Trainer, and frozen, as arms of the few-label experiment."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from course_lib.data.stories import MoodTask, make_mood_task  # noqa: E402
from course_lib.frameworks import finetune  # noqa: E402
from course_lib.tasks import transfer  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network: the Hub client refuses every request, so a download attempt would fail the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import huggingface_hub.constants as constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def tiny_task():
    task = make_mood_task(num_train=200, num_validation=64, num_test=200, seed=0)
    return MoodTask(task.train, task.validation, task.test[:40])


@pytest.fixture(scope="module")
def split(tiny_task):
    return transfer.few_label_split(tiny_task, 8, 0, num_validation=8)


def test_loads_from_the_local_folder_only(monkeypatch):
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError(f"tried to download {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    model, tokenizer = finetune.load_minilm_classifier(num_labels=2, seed=0)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.classifier.out_features == 2 and model.config.hidden_size == 384
    assert tokenizer("she felt so gloomy")["input_ids"][0] == tokenizer.cls_token_id


def test_the_new_head_depends_on_the_seed_the_encoder_does_not():
    a, _ = finetune.load_minilm_classifier(seed=0)
    b, _ = finetune.load_minilm_classifier(seed=0)
    c, _ = finetune.load_minilm_classifier(seed=1)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.equal(a.bert.encoder.layer[0].attention.self.query.weight, c.bert.encoder.layer[0].attention.self.query.weight)


def test_dataset_items_are_what_the_collator_pads(split):
    _, tokenizer = finetune.load_minilm_classifier()
    data = finetune.MoodDataset(split.train, tokenizer)
    assert len(data) == len(split.train)
    item = data[0]
    assert item["labels"] == split.train[0].label
    assert item["input_ids"][0] == tokenizer.cls_token_id and item["input_ids"][-1] == tokenizer.sep_token_id
    assert len(item["attention_mask"]) == len(item["input_ids"])


def test_trainer_arm_is_deterministic_and_fits_run_experiment(tiny_task, split):
    fit = finetune.minilm_trainer_arm(steps=4, eval_every=2, lrs=(2e-4,), batch_size=8)
    first = fit(split.train, split.validation, 0)
    chosen = dict(fit.chosen)
    again = fit(split.train, split.validation, 0)
    predicted = first(split.test_unseen)
    assert predicted.dtype == torch.long and predicted.shape == (len(split.test_unseen),)
    assert chosen == fit.chosen and chosen["step"] in (2, 4) and chosen["lr"] == 2e-4
    best_a, best_b = first.trainer, again.trainer
    assert best_a is not best_b
    assert torch.equal(finetune.trainer_logits(best_a, split.test_seen), finetune.trainer_logits(best_b, split.test_seen))
    results = transfer.run_experiment({"MiniLM (Trainer)": fit}, tiny_task, [8], [0], num_validation=8, progress=False)
    (record,) = results.records
    assert set(transfer.METRICS) <= set(record) and all(0.0 <= record[m] <= 1.0 for m in transfer.METRICS)


def test_validation_chooses_the_step_with_the_lowest_loss(split):
    trainer = finetune.finetune_with_trainer(split.train, split.validation, steps=4, lr=2e-4, eval_every=2, seed=0)
    evals = [(h["step"], h["eval_loss"]) for h in trainer.state.log_history if "eval_loss" in h]
    assert [s for s, _ in evals] == [2, 4]
    step, loss = min(evals, key=lambda e: e[1])
    assert trainer.state.best_global_step == step and trainer.state.best_metric == pytest.approx(loss)
    # the model in hand is the chosen one: its validation loss is the best one, not the last one
    logits = finetune.trainer_logits(trainer, split.validation)
    labels = torch.tensor([e.label for e in split.validation])
    assert torch.nn.functional.cross_entropy(logits, labels).item() == pytest.approx(loss, abs=1e-4)


def test_embedding_arm_learns_seen_words(tiny_task):
    split = transfer.few_label_split(tiny_task, 16, 0, num_validation=8)
    predict = finetune.minilm_embedding_arm()(split.train, split.validation, 0)
    assert torch.equal(predict(split.train), torch.tensor([e.label for e in split.train]))


def test_bad_input_is_refused_clearly(split):
    with pytest.raises(ValueError, match="validation and eval_every"):
        finetune.finetune_with_trainer(split.train, split.validation, steps=2)
    with pytest.raises(ValueError, match="train_examples must be a non-empty list"):
        finetune.finetune_with_trainer([], steps=2)
    with pytest.raises(TypeError, match=r"train_examples\[0\] must have .text"):
        finetune.finetune_with_trainer(["she felt so gloomy"], steps=2)
    with pytest.raises(ValueError, match="lrs must be a non-empty list"):
        finetune.minilm_trainer_arm(lrs=())
    with pytest.raises(ValueError, match="config.json"):
        finetune.load_minilm_classifier("/nonexistent/folder")
    with pytest.raises(ValueError, match="num_labels must be at least 2"):
        finetune.load_minilm_classifier(num_labels=1)
