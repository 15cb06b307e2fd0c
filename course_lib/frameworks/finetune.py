"""Fine-tuning a real pretrained model with Hugging Face ``Trainer`` (notebook 06, section 6).

all-MiniLM-L6-v2 (:func:`course_lib.pretrained.minilm_path`, a 6-layer BERT pretrained on real
English) on the mood task of notebooks 03-04, in the same few-label experiment
(:func:`course_lib.tasks.transfer.run_experiment`), so its numbers sit beside the story BERT's:

- :func:`load_minilm_classifier`: ``AutoModelForSequenceClassification`` and ``AutoTokenizer``
  from the local folder (a new, randomly initialised 2-class head on the pooled [CLS] vector);
- :class:`MoodDataset`: labelled stories -> token ids, a plain ``torch.utils.data.Dataset``
  (what ``Trainer`` reads; no ``datasets`` library needed);
- :func:`finetune_with_trainer`: one ``Trainer`` run, validation loss every ``eval_every`` steps,
  the best step kept (``load_best_model_at_end``);
- :func:`minilm_trainer_arm`: an arm of ``run_experiment``: every lr, the step and lr with the
  lowest validation loss kept, as :func:`course_lib.tasks.bert.bert_finetune_arm` does;
- :func:`minilm_embedding_arm`: the frozen baseline: mean-pooled MiniLM sentence vectors
  (:func:`course_lib.bert.sentence_embeddings`) and a linear classifier
  (:func:`course_lib.tasks.transfer.logistic_regression`).

Nothing is downloaded: every ``from_pretrained`` reads the local folder with
``local_files_only=True``. Everything runs on the CPU (``use_cpu=True``): the same numbers on
every machine, and the model is small enough.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Sequence

import torch

from .. import _checks

__all__ = ["load_minilm_classifier", "MoodDataset", "finetune_with_trainer", "trainer_logits",
           "minilm_trainer_arm", "minilm_embedding_arm"]


def _folder(path) -> pathlib.Path:
    if path is None:
        from ..pretrained import minilm_path
        return minilm_path()
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder (str or Path) holding config.json, model.safetensors and the "
                        f"tokenizer files, or None for the bundled MiniLM, got {type(path).__name__}")
    folder = pathlib.Path(path)
    if not (folder / "config.json").is_file():
        raise ValueError(f"path must be a Hugging Face model folder with a config.json, got {str(folder)!r}")
    return folder


@contextlib.contextmanager
def _quiet():
    """transformers' loading messages and progress bars off for a while (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_minilm_classifier(path=None, num_labels: int = 2, seed: int = 0):
    """(model, tokenizer): a BertForSequenceClassification and its fast tokenizer, read from ``path``
    (default: the bundled all-MiniLM-L6-v2), never downloaded.

    The encoder and the pooler come from the checkpoint; the classifier head, Linear(384, num_labels),
    is new, initialised from ``seed`` (transformers' note that it is "newly initialized" is silenced: it is the point).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    folder = _folder(path)
    _checks.check_positive_int("num_labels", num_labels)
    if num_labels < 2:
        raise ValueError(f"num_labels must be at least 2 (classes to tell apart), got {num_labels}")
    _checks.check_int("seed", seed)
    set_seed(seed)   # the new head's initial weights
    with _quiet():   # the "newly initialized head" warning is the point, not news
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=num_labels,
                                                                   local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model, tokenizer


class MoodDataset(torch.utils.data.Dataset):
    """Labelled stories (``.text``, ``.label``, e.g. MoodExample) as ``Trainer`` reads them.

    Item i is a dict: input_ids and attention_mask (lists of ints, ``[CLS] text [SEP]``, not yet
    padded: ``DataCollatorWithPadding`` pads each batch to its longest row) and labels (an int).
    """

    def __init__(self, examples, tokenizer):
        _check_labelled("examples", examples)
        if not callable(tokenizer) or not hasattr(tokenizer, "pad"):
            raise TypeError(f"tokenizer must be a Hugging Face tokenizer (AutoTokenizer.from_pretrained(...)), "
                            f"got {type(tokenizer).__name__}")
        encoded = tokenizer([e.text for e in examples], truncation=True)
        self.rows = [{"input_ids": ids, "attention_mask": mask, "labels": int(e.label)}
                     for ids, mask, e in zip(encoded["input_ids"], encoded["attention_mask"], examples)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _arguments(output_dir, *, steps: int, lr: float, batch_size: int, seed: int, eval_every: int | None):
    """The TrainingArguments of one fine-tuning run; each choice says what it matches."""
    from transformers import TrainingArguments

    select = eval_every is not None
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,                     # a number of updates, as the course's arms count them
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=256,
        learning_rate=lr,
        lr_scheduler_type="constant",        # constant lr, as train_and_select: step s of a long run = an s-step run
        warmup_steps=0,
        weight_decay=0.01,                   # as the course's fine-tuning (AdamW, weight decay 0.01)
        optim="adamw_torch_fused",          # one fused kernel for all weights: the fastest AdamW on CPUs too
        seed=seed,                           # the head's init (model_init) and the shuffling of the batches
        data_seed=seed,
        use_cpu=True,                        # the same numbers on every machine; MiniLM is small
        eval_strategy="steps" if select else "no",
        eval_steps=eval_every,
        save_strategy="steps" if select else "no",   # load_best_model_at_end reloads a saved checkpoint
        save_steps=eval_every,
        save_only_model=True,                # no optimizer state on disk: only the weights are reloaded
        save_total_limit=1,                  # keeps the best and the latest checkpoint, no more
        load_best_model_at_end=select,       # early stopping chosen on validation loss
        metric_for_best_model="eval_loss" if select else None,
        greater_is_better=False if select else None,
        logging_steps=max(1, steps // 10),
        report_to="none",                    # no TensorBoard / wandb: nothing leaves the machine
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def finetune_with_trainer(train_examples, validation=None, *, path=None, steps: int = 30, lr: float = 1e-4,
                          batch_size: int = 16, seed: int = 0, eval_every: int | None = None, output_dir=None):
    """Fine-tune MiniLM (or the model at ``path``) on labelled stories with ``Trainer``. Returns the trainer.

    ``trainer.model`` is the fine-tuned BertForSequenceClassification (on the CPU, in eval mode
    after training); ``trainer.state.log_history`` holds the training losses and, with ``validation``
    and ``eval_every``, the validation losses; ``trainer.state.best_global_step`` is the step kept
    (the lowest validation loss, reloaded at the end), ``trainer.state.best_metric`` its loss.
    Every weight is trained with AdamW at a constant ``lr``. ``output_dir``: where the checkpoints
    of the selection go (default: a temporary folder, deleted afterwards).
    """
    from transformers import AutoTokenizer, DataCollatorWithPadding, PrinterCallback, Trainer

    _check_labelled("train_examples", train_examples)
    if (validation is None) != (eval_every is None):
        raise ValueError("give validation and eval_every together (or neither)")
    if validation is not None:
        _check_labelled("validation", validation)
        _checks.check_positive_int("eval_every", eval_every)
    _checks.check_positive_int("steps", steps)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_number("lr", lr, positive=True)
    _checks.check_int("seed", seed)
    folder = _folder(path)
    num_labels = max(2, 1 + max(int(e.label) for e in list(train_examples) + list(validation or [])))
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)

    def model_init():   # Trainer seeds (args.seed) before calling it: the same new head for a seed
        return load_minilm_classifier(folder, num_labels, seed)[0]

    with tempfile.TemporaryDirectory(prefix="minilm_") as tmp:
        args = _arguments(tmp if output_dir is None else output_dir, steps=steps, lr=lr,
                          batch_size=min(batch_size, len(train_examples)), seed=seed, eval_every=eval_every)
        trainer = Trainer(model_init=model_init, args=args, train_dataset=MoodDataset(train_examples, tokenizer),
                          eval_dataset=None if validation is None else MoodDataset(validation, tokenizer),
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)   # the losses stay in trainer.state.log_history, unprinted
        with _quiet():
            trainer.train()   # with load_best_model_at_end, the best checkpoint is read back before tmp goes
    trainer.model.eval()
    return trainer


@torch.no_grad()
def trainer_logits(trainer, examples) -> torch.Tensor:
    """The class scores (N, C) of labelled stories, through ``trainer.predict`` (batched, padded by
    the trainer's collator, the model in eval mode)."""
    _check_labelled("examples", examples)
    out = trainer.predict(MoodDataset(examples, trainer.processing_class))
    return torch.as_tensor(out.predictions).float()


def minilm_trainer_arm(path=None, *, lrs: Sequence[float] = (1e-4,), steps: int = 30, eval_every: int = 10,
                       batch_size: int = 16):
    """An arm of :func:`course_lib.tasks.transfer.run_experiment`: ``fit(train, validation, seed) -> predict``.

    For every lr of ``lrs`` one :func:`finetune_with_trainer` run of ``steps`` steps, the validation
    loss measured every ``eval_every`` steps; the (lr, step) with the lowest validation loss is kept,
    as :func:`course_lib.tasks.bert.bert_finetune_arm` chooses. ``predict(examples)`` returns the
    predicted labels, a LongTensor (N,); ``predict.trainer`` is the chosen run's Trainer, and
    ``fit.chosen`` says what validation chose last: {"lr", "step", "val_loss"}.
    """
    folder = _folder(path)
    if isinstance(lrs, (int, float)) or not lrs:
        raise ValueError(f"lrs must be a non-empty list of learning rates, e.g. (1e-4,), got {lrs!r}")
    _checks.check_positive_int("steps", steps)
    _checks.check_positive_int("eval_every", eval_every)
    _checks.check_positive_int("batch_size", batch_size)

    def fit(train_examples, validation, seed):
        runs = [finetune_with_trainer(train_examples, validation, path=folder, steps=steps, lr=lr,
                                      batch_size=batch_size, seed=seed, eval_every=eval_every) for lr in lrs]
        best = min(runs, key=lambda t: t.state.best_metric)
        fit.chosen = {"lr": best.args.learning_rate, "step": best.state.best_global_step,
                      "val_loss": best.state.best_metric}   # what validation chose, for a look afterwards

        def predict(examples) -> torch.Tensor:
            return trainer_logits(best, examples).argmax(-1)

        predict.trainer = best   # the chosen run, for a closer look (its log_history, its model)
        return predict

    return fit


def minilm_embedding_arm(path=None, weight_decays: Sequence[float] = (1e-3, 1e-2, 1e-1)):
    """The frozen arm: mean-pooled, normalised MiniLM vectors (384) and logistic regression on them
    (penalty chosen on validation). MiniLM itself is not trained; the vectors of a text are computed
    once and cached, so the test stories cost one pass over all seeds and sizes."""
    from ..bert import BertModel, sentence_embeddings
    from ..tasks.transfer import logistic_regression
    from ..tokenizers import WordPieceTokenizer

    folder = _folder(path)
    model = BertModel.from_pretrained(folder).eval()
    tokenizer = WordPieceTokenizer.from_file(folder / "vocab.txt")
    cache: dict[str, torch.Tensor] = {}

    def features(examples) -> torch.Tensor:   # (N, 384)
        new = list(dict.fromkeys(e.text for e in examples if e.text not in cache))
        for i in range(0, len(new), 256):
            chunk = new[i:i + 256]
            cache.update(zip(chunk, sentence_embeddings(model, tokenizer, chunk)))
        return torch.stack([cache[e.text] for e in examples])

    def fit(train_examples, validation, seed):
        _check_labelled("train", train_examples)
        _check_labelled("validation", validation)
        labels = lambda es: torch.tensor([int(e.label) for e in es])
        linear = logistic_regression(features(train_examples), labels(train_examples), features(validation),
                                     labels(validation), weight_decays)
        return lambda examples: linear(features(examples)).argmax(-1)

    return fit


def _check_labelled(name: str, examples) -> None:
    if isinstance(examples, (str, bytes)) or not hasattr(examples, "__len__") or len(examples) == 0:
        raise ValueError(f"{name} must be a non-empty list of labelled examples (e.g. task.train), got {examples!r:.60}")
    for i, e in enumerate(examples):
        if not isinstance(getattr(e, "text", None), str) or not hasattr(e, "label"):
            raise TypeError(f"{name}[{i}] must have .text (str) and .label (e.g. a MoodExample), got {type(e).__name__}")
        _checks.check_int(f"{name}[{i}].label", e.label)
