"""BERT recipe of notebook 04: pretrain on pairs of story sentences with MLM + NSP.

- :func:`story_tokenizer`: a WordPiece tokenizer over the story world's words.
- :func:`nsp_examples`: sentence pairs, half IsNext and half NotNext, encoded ``[CLS] A [SEP] B [SEP]``.
- :func:`bert_batch`: pad some of them and apply the MLM masking rule; :func:`bert_loss`.
- :func:`pretrain_bert`: the course's training loop on fresh batches, recording the MLM and the
  NSP loss apart (:class:`BertHistory`); :func:`evaluate_bert`: MLM and NSP accuracy and loss on
  held-out pairs.
- :func:`finetune_bert_classifier`: the fine-tuning stage, a classifier on the pooled [CLS] vector
  trained on labelled stories (the mood task of notebook 03); :func:`bert_finetune_arm` runs it in
  :func:`course_lib.tasks.transfer.run_experiment` beside the GPT arms.
- :func:`nsp_predictions`: the model's IsNext / NotNext call on each (unmasked) pair;
  :func:`single_mask_accuracy`: MLM accuracy with one blank at a time, the setting of
  :func:`course_lib.data.ceilings.mlm_ceiling`.

Shapes: B batch, T tokens per row.

Devices: :func:`pretrain_bert` and :func:`finetune_bert_classifier` take ``device`` (default
:func:`course_lib.training.get_device`); the model is built on the CPU (the same initial weights
everywhere) and trained there. The functions that run a model move its inputs to the model's
device and return their results on the CPU (the masking is drawn on the CPU, so a seed gives the
same masks everywhere).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from .. import _checks
from ..batching import IGNORE_INDEX, pad_sequences
from ..bert import (IS_NEXT, NOT_NEXT, BertConfig, BertForClassification, BertForPreTraining, BertModel,
                    make_nsp_pairs, mask_tokens)
from ..tokenizers import SPECIAL_TOKENS, WordPieceTokenizer
from ..training import History, evaluating, get_device, set_seed, train
from ..batching import model_device
from .transfer import train_and_select

__all__ = ["story_tokenizer", "nsp_examples", "bert_batch", "bert_loss", "evaluate_bert", "BertHistory",
           "pretrain_bert", "nsp_predictions", "single_mask_accuracy", "finetune_bert_classifier",
           "bert_classifier_logits", "bert_finetune_arm"]


def story_tokenizer(words: Sequence[str]) -> WordPieceTokenizer:
    """A WordPiece tokenizer whose vocabulary is BERT's special tokens and the story world's words.

    Every story word is a whole vocabulary entry, so WordPiece never splits one: the same class
    that reads the real 30,522-token vocabulary serves the toy world.
    """
    if isinstance(words, (str, bytes)) or not hasattr(words, "__iter__"):
        raise TypeError(f"words must be a list of words (str), e.g. corpus.words, got {type(words).__name__}")
    words = list(words)
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word:
            raise TypeError(f"words[{i}] must be a non-empty str, got {word!r:.40}")
    return WordPieceTokenizer(list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS])


def nsp_examples(stories, tokenizer: WordPieceTokenizer, seed: int = 0):
    """Sentence pairs of the stories, half IsNext and half NotNext (:func:`~course_lib.bert.make_nsp_pairs`),
    encoded as ``[CLS] A [SEP] B [SEP]``: a list of (input_ids, token_type_ids, is_next)."""
    if isinstance(stories, (str, bytes)) or not hasattr(stories, "__iter__"):
        raise TypeError(f"stories must be a list of Story (e.g. corpus.train), got {type(stories).__name__}")
    stories = list(stories)
    for i, story in enumerate(stories):
        if not hasattr(story, "sentences"):
            raise TypeError(f"stories[{i}] must be a Story (with .sentences), e.g. from corpus.train, "
                            f"got {type(story).__name__}")
    _check_tokenizer(tokenizer)
    _checks.check_int("seed", seed)
    pairs = make_nsp_pairs([s.sentences for s in stories], generator=random.Random(seed))
    out = []
    for a, b, is_next in pairs:
        e = tokenizer.encode(a, b)
        out.append((e["input_ids"], e["token_type_ids"], is_next))
    return out


def bert_batch(examples, tokenizer: WordPieceTokenizer, generator: torch.Generator,
               mlm_probability: float = 0.15) -> dict[str, torch.Tensor]:
    """Pad a list of nsp_examples and apply the MLM rule: a dict of tensors for BertForPreTraining.

    input_ids (B, T) masked, token_type_ids (B, T), attention_mask (B, T) 1 on real tokens,
    mlm_labels (B, T) the original id where a token was selected and IGNORE_INDEX elsewhere,
    nsp_labels (B,).
    """
    _check_examples("examples", examples)
    _check_tokenizer(tokenizer)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, e.g. torch.Generator().manual_seed(0), "
                        f"got {type(generator).__name__}")
    ids = pad_sequences([x for x, _, _ in examples], tokenizer.pad_id)
    types = pad_sequences([t for _, t, _ in examples], 0)
    if ids.min() < 0 or ids.max() >= len(tokenizer):
        raise ValueError(f"examples hold token ids from {int(ids.min())} to {int(ids.max())}, outside the tokenizer's "
                         f"vocabulary [0, {len(tokenizer)}): make them with nsp_examples and this tokenizer")
    inputs, labels = mask_tokens(ids, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_id,
                                 special_token_ids=tokenizer.special_ids, mlm_probability=mlm_probability,
                                 generator=generator)
    return {"input_ids": inputs, "token_type_ids": types, "attention_mask": (ids != tokenizer.pad_id).long(),
            "mlm_labels": labels,
            "nsp_labels": torch.tensor([IS_NEXT if is_next else NOT_NEXT for _, _, is_next in examples])}


def bert_loss(model: BertForPreTraining, batch) -> torch.Tensor:
    """MLM loss + NSP loss (the notes: the two tasks' losses add up)."""
    _check_model(model)
    if not isinstance(batch, dict):
        raise TypeError(f"batch must be the dict bert_batch returns, got {type(batch).__name__}")
    return model(**batch)[2]


@torch.no_grad()
def evaluate_bert(model: BertForPreTraining, examples, tokenizer: WordPieceTokenizer, seed: int = 1,
                  batch_size: int = 512) -> dict[str, float]:
    """MLM and NSP accuracy and loss on held-out pairs, masked as in training (masking seeded).

    Returns {"mlm_accuracy", "nsp_accuracy", "mlm_loss", "nsp_loss"}: the accuracies are shares of
    the masked positions (MLM) and of the pairs (NSP) predicted right; the losses the mean
    cross-entropy over the same positions and pairs, in nats, the quantities ``bert_loss`` adds up.

    Refused: examples so few that the masking selects no position (no MLM accuracy to measure).
    """
    _check_model(model)
    _check_examples("examples", examples)
    _check_tokenizer(tokenizer)
    _checks.check_int("seed", seed)
    _checks.check_positive_int("batch_size", batch_size)
    g = torch.Generator().manual_seed(seed)
    device = model_device(model)
    mlm_hits = mlm_total = nsp_hits = 0
    mlm_loss_sum = nsp_loss_sum = 0.0
    with evaluating(model):
        for i in range(0, len(examples), batch_size):
            # masked on the CPU with g (the same masks on every device), then moved to the model
            batch = {k: v.to(device) for k, v in bert_batch(examples[i:i + batch_size], tokenizer, g).items()}
            mlm_logits, nsp_logits, _ = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
            chosen = batch["mlm_labels"] != IGNORE_INDEX
            mlm_hits += int((mlm_logits.argmax(-1)[chosen] == batch["mlm_labels"][chosen]).sum())
            mlm_total += int(chosen.sum())
            mlm_loss_sum += float(F.cross_entropy(mlm_logits[chosen], batch["mlm_labels"][chosen], reduction="sum"))
            nsp_hits += int((nsp_logits.argmax(-1) == batch["nsp_labels"]).sum())
            nsp_loss_sum += float(F.cross_entropy(nsp_logits, batch["nsp_labels"], reduction="sum"))
    if mlm_total == 0:
        raise ValueError(f"examples: the masking selected no position in {len(examples)} pairs, so there is no "
                         "MLM accuracy to measure; evaluate on more pairs")
    return {"mlm_accuracy": mlm_hits / mlm_total, "nsp_accuracy": nsp_hits / len(examples),
            "mlm_loss": mlm_loss_sum / mlm_total, "nsp_loss": nsp_loss_sum / len(examples)}


@dataclass
class BertHistory(History):
    """What :func:`pretrain_bert` returns: a :class:`~course_lib.training.History` (``losses`` the
    sum MLM + NSP of each step, ``evals`` the validation scores of :func:`evaluate_bert`) and the
    two parts of each step's training loss:

    mlm_losses: list[float], the MLM loss of each step (mean over the batch's masked positions)
    nsp_losses: list[float], the NSP loss of each step (mean over the batch's pairs);
                mlm_losses[i] + nsp_losses[i] == losses[i] (up to rounding)
    """

    mlm_losses: list[float] = field(default_factory=list)
    nsp_losses: list[float] = field(default_factory=list)


def pretrain_bert(train_examples, validation_examples, tokenizer: WordPieceTokenizer, config, *, steps: int = 800,
                  batch_size: int = 64, lr: float = 2e-3, seed: int = 0, eval_every: int | None = None,
                  live_plot=None, progress: bool = True, device=None):
    """Build a :class:`~course_lib.bert.BertForPreTraining` and pretrain it with MLM + NSP.

    A fresh masking of a random batch at every step; AdamW with warm-up and cosine decay.
    Returns (model, history), a :class:`BertHistory`: the training loss of each step and its two
    parts (MLM, NSP); evaluations hold validation MLM and NSP accuracy and loss.
    ``device``: where it trains and stays ("cpu", "cuda", "mps"), default ``get_device()``.

    Refused before training: no training or validation examples, a config that is not a BertConfig,
    one whose vocab_size is smaller than the tokenizer's or whose max_position_embeddings is shorter
    than the longest example, a batch_size that is not a positive int.
    """
    _check_examples("train_examples", train_examples)
    _check_examples("validation_examples", validation_examples)
    _check_tokenizer(tokenizer)
    if not isinstance(config, BertConfig):
        raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"config.vocab_size={config.vocab_size} is smaller than the tokenizer's {len(tokenizer)} "
                         "tokens: use BertConfig(vocab_size=len(tokenizer), ...)")
    longest = max(len(x) for x, _, _ in list(train_examples) + list(validation_examples))
    if longest > config.max_position_embeddings:
        raise ValueError(f"config.max_position_embeddings={config.max_position_embeddings} is shorter than the "
                         f"longest example ({longest} tokens)")
    _checks.check_positive_int("batch_size", batch_size)
    set_seed(seed)
    model = BertForPreTraining(config)  # built on the CPU: the same initial weights everywhere; train() moves it
    g = torch.Generator().manual_seed(seed)

    def batches(step):
        pick = torch.randint(len(train_examples), (batch_size,), generator=g).tolist()
        return bert_batch([train_examples[i] for i in pick], tokenizer, g)

    mlm_losses, nsp_losses = [], []

    def loss_parts(model, batch):  # bert_loss, with its two parts recorded
        _, nsp_logits, loss = model(**batch)
        nsp_loss = F.cross_entropy(nsp_logits.detach(), batch["nsp_labels"]).item()
        mlm_losses.append(loss.item() - nsp_loss)
        nsp_losses.append(nsp_loss)
        return loss

    history = train(model, batches, loss_parts, steps=steps, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed,
                    eval_every=eval_every, eval_fn=lambda m: evaluate_bert(m, validation_examples, tokenizer),
                    live_plot=live_plot, progress=progress, desc="pretraining BERT (MLM + NSP)",
                    device=get_device() if device is None else device)
    return model, BertHistory(**asdict(history), mlm_losses=mlm_losses, nsp_losses=nsp_losses)


@torch.no_grad()
def nsp_predictions(model: BertForPreTraining, examples, tokenizer: WordPieceTokenizer,
                    batch_size: int = 512) -> list[bool]:
    """The model's NSP call on each pair, read unmasked: a list of bool, True for IsNext, one per example."""
    _check_model(model)
    _check_examples("examples", examples)
    _check_tokenizer(tokenizer)
    _checks.check_positive_int("batch_size", batch_size)
    out: list[bool] = []
    device = model_device(model)
    with evaluating(model):
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            ids = pad_sequences([x for x, _, _ in chunk], tokenizer.pad_id)
            types = pad_sequences([t for _, t, _ in chunk], 0)
            _, nsp_logits, _ = model(ids.to(device), types.to(device), (ids != tokenizer.pad_id).long().to(device))
            out += (nsp_logits.argmax(-1) == IS_NEXT).tolist()
    return out


@torch.no_grad()
def single_mask_accuracy(model: BertForPreTraining, examples, tokenizer: WordPieceTokenizer,
                         batch_size: int = 2048) -> float:
    """MLM accuracy with one blank at a time: every ordinary token of every pair is replaced by
    [MASK] alone (all the other tokens seen), and the share of them predicted right is returned.

    The setting of :func:`course_lib.data.ceilings.mlm_ceiling`, so the two compare directly.
    ``batch_size`` counts masked copies (one per ordinary token) per forward pass.
    """
    _check_model(model)
    _check_examples("examples", examples)
    _check_tokenizer(tokenizer)
    _checks.check_positive_int("batch_size", batch_size)
    special = set(tokenizer.special_ids)
    rows = [(k, j) for k, (x, _, _) in enumerate(examples) for j, t in enumerate(x) if t not in special]
    if not rows:
        raise ValueError("examples hold no ordinary token to mask")
    hits = 0
    device = model_device(model)
    with evaluating(model):
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            ids = pad_sequences([examples[k][0] for k, _ in chunk], tokenizer.pad_id)
            types = pad_sequences([examples[k][1] for k, _ in chunk], 0)
            where = torch.tensor([j for _, j in chunk])
            rowsel = torch.arange(len(chunk))
            answers = ids[rowsel, where].clone()
            attention = (ids != tokenizer.pad_id).long()
            ids[rowsel, where] = tokenizer.mask_id
            mlm_logits, _, _ = model(ids.to(device), types.to(device), attention.to(device))
            hits += int((mlm_logits[rowsel, where].argmax(-1).cpu() == answers).sum())
    return hits / len(rows)


# -----------------------------------------------------------------------------
# fine-tuning: the mood task through [CLS]


def _encode_texts(examples, tokenizer: WordPieceTokenizer) -> dict[str, torch.Tensor]:
    """Labelled stories -> ``[CLS] text [SEP]`` batch: input_ids, token_type_ids, attention_mask (B, T)."""
    return tokenizer.encode_batch([e.text for e in examples])


def _check_labelled(name: str, examples, num_classes: int) -> None:
    if isinstance(examples, (str, bytes)) or not hasattr(examples, "__len__") or len(examples) == 0:
        raise ValueError(f"{name} must be a non-empty list of labelled examples (e.g. task.train), got {examples!r:.60}")
    for i, e in enumerate(examples):
        if not hasattr(e, "text") or not hasattr(e, "label"):
            raise TypeError(f"{name}[{i}] must have .text and .label (e.g. a MoodExample), got {type(e).__name__}")
        _checks.check_int(f"{name}[{i}].label", e.label, num_classes, "num_classes")


@torch.no_grad()
def bert_classifier_logits(model: BertForClassification, examples, tokenizer: WordPieceTokenizer) -> torch.Tensor:
    """The class scores of each labelled story, (N, C) on the CPU, the model in eval mode (on its device)."""
    if not isinstance(model, BertForClassification):
        raise TypeError(f"model must be a BertForClassification, got {type(model).__name__}")
    _check_tokenizer(tokenizer)
    _check_labelled("examples", examples, model.head.out_features)
    device = model_device(model)
    with evaluating(model):
        return model(**{k: v.to(device) for k, v in _encode_texts(examples, tokenizer).items()})[0].cpu()


def finetune_bert_classifier(examples, tokenizer: WordPieceTokenizer, *, pretrained: BertForPreTraining | None = None,
                             config: BertConfig | None = None, num_classes: int = 2, steps: int = 90,
                             batch_size: int = 16, lr: float = 1e-3, seed: int = 0, validation=None,
                             eval_every: int | None = None, device=None) -> BertForClassification:
    """Fine-tune BERT on labelled stories (``.text``, ``.label``) through the pooled [CLS] vector.

    ``pretrained``: a BertForPreTraining to start from (its encoder and pooler are copied; the MLM
    and NSP heads are dropped, as in the BERT paper); otherwise a fresh BertModel of ``config``
    (from scratch). Every weight is trained with the mean cross-entropy at a constant lr. With
    ``validation`` and ``eval_every``, the step with the lowest validation loss is kept
    (:func:`course_lib.tasks.transfer.train_and_select`). ``device``: where it trains and stays
    ("cpu", "cuda", "mps"), default ``get_device()``.
    """
    if (pretrained is None) == (config is None):
        raise ValueError("give exactly one of pretrained (fine-tune) or config (from scratch)")
    if pretrained is not None:
        _check_model(pretrained)
    elif not isinstance(config, BertConfig):
        raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
    _check_tokenizer(tokenizer)
    _checks.check_positive_int("num_classes", num_classes)
    _check_labelled("examples", examples, num_classes)
    _checks.check_positive_int("batch_size", batch_size)
    if (validation is None) != (eval_every is None):
        raise ValueError("give validation and eval_every together (or neither)")
    if validation is not None:
        _check_labelled("validation", validation, num_classes)
        _checks.check_positive_int("eval_every", eval_every)
    set_seed(seed)
    bert = copy.deepcopy(pretrained.bert) if pretrained is not None else BertModel(config)
    model = BertForClassification(bert, num_classes)
    inputs = _encode_texts(examples, tokenizer)
    labels = torch.tensor([e.label for e in examples])
    g = torch.Generator().manual_seed(seed)
    size = min(batch_size, len(examples))

    def batch(step):
        pick = torch.randperm(len(examples), generator=g)[:size]
        return {**{k: v[pick] for k, v in inputs.items()}, "labels": labels[pick]}

    def loss_fn(m, b):
        return m(**b)[1]

    def validation_loss(m):
        logits = bert_classifier_logits(m, validation, tokenizer)
        return F.cross_entropy(logits, torch.tensor([e.label for e in validation])).item()

    return train_and_select(model, batch, loss_fn, None if validation is None else validation_loss, steps=steps,
                            lr=lr, seed=seed, eval_every=eval_every, device=device)


def bert_finetune_arm(tokenizer: WordPieceTokenizer, *, pretrained: BertForPreTraining | None = None,
                      config: BertConfig | None = None, lrs=(1e-3, 3e-3), steps: int = 90, eval_every: int = 30,
                      device=None):
    """An arm of :func:`course_lib.tasks.transfer.run_experiment`, as
    :func:`course_lib.tasks.gpt.finetune_arm`: every lr of ``lrs``, the step and lr with the lowest
    validation loss kept. ``device``: where each run trains, default ``get_device()``."""
    if not lrs:
        raise ValueError("lrs must name at least one learning rate")

    def fit(train_examples, validation, seed):
        runs = [finetune_bert_classifier(train_examples, tokenizer, pretrained=pretrained, config=config, steps=steps,
                                         lr=lr, seed=seed, validation=validation, eval_every=eval_every,
                                         device=device)
                for lr in lrs]
        model = min(runs, key=lambda m: m.validation_loss)
        return lambda examples: bert_classifier_logits(model, examples, tokenizer).argmax(-1)

    return fit


def _check_tokenizer(tokenizer) -> None:
    if not isinstance(tokenizer, WordPieceTokenizer):
        raise TypeError(f"tokenizer must be a WordPieceTokenizer (e.g. story_tokenizer(corpus.words)), "
                        f"got {type(tokenizer).__name__}")


def _check_model(model) -> None:
    if not isinstance(model, BertForPreTraining):
        raise TypeError(f"model must be a BertForPreTraining (its MLM and NSP heads are scored), "
                        f"got {type(model).__name__}")


def _check_examples(name: str, examples) -> None:
    """``examples`` must be a non-empty list of (input_ids, token_type_ids, is_next), as nsp_examples makes."""
    if isinstance(examples, (str, bytes)) or not hasattr(examples, "__len__"):
        raise TypeError(f"{name} must be a list of (input_ids, token_type_ids, is_next) from nsp_examples, "
                        f"got {type(examples).__name__}")
    if len(examples) == 0:
        raise ValueError(f"{name} must hold at least one example, got none")
    for i, example in enumerate(examples):
        if not (isinstance(example, (tuple, list)) and len(example) == 3 and isinstance(example[2], bool)):
            raise TypeError(f"{name}[{i}] must be (input_ids, token_type_ids, is_next) from nsp_examples, "
                            f"got {example!r:.60}")
