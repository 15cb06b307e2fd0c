"""GPT recipes of notebook 03: pretrain a language model on the story world, fine-tune it on few labels.

- :func:`lm_batches` / :func:`evaluate_lm`: stories as ``<bos> w_1 ... w_n <eos>`` rows, padded;
  the loss counts every predicted token (the words and ``<eos>``), as :func:`entropy_floor` does.
- :func:`pretrain_gpt`: the course's training loop on those batches; :func:`text_windows`:
  random windows of your own text for the same loop.
- :func:`finetune_classifier`: the notes' supervised fine-tuning with loss L3 = L2 + λ L1, from a
  pretrained GPT or from scratch, and :func:`classifier_accuracy`.

Shapes: B batch, T tokens per row (<= block_size), V vocabulary size.

Arguments are checked before any work is done, so a bad one fails at once rather than minutes
into training: texts and examples must be non-empty lists (of word lists; of examples with
``.words`` and an int ``.label`` in [0, num_classes)), every text must fit the context window,
sizes are positive ints, models and vocabularies of the right kind. Each error names the argument.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch

from .. import _checks
from .._checks import shape_of
from ..batching import IGNORE_INDEX, epoch_batches, pad_sequences
from ..gpt import GPT, GPTConfig, GPTForClassification
from ..tokenizers import WordVocab
from ..training import evaluating, set_seed, train

__all__ = ["encode_stories", "lm_batches", "text_windows", "lm_loss", "evaluate_lm", "pretrain_gpt",
           "encode_examples", "finetune_classifier", "classifier_accuracy"]


def _check_texts(name: str, texts, vocab, block_size: int | None) -> None:
    """``texts`` must be a non-empty list of word lists, each at most block_size tokens with <bos>
    (any length when ``block_size`` is None)."""
    if not isinstance(vocab, WordVocab):
        raise TypeError(f"vocab must be a WordVocab, got {type(vocab).__name__}")
    _checks.check_positive_int("block_size", block_size, allow_none=True)
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of word lists, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"{name} must hold at least one text, got none")
    for words in texts:
        if isinstance(words, str) or not isinstance(words, Sequence):
            raise TypeError(f"{name} must be a list of word lists (split each text: text.split()), "
                            f"got an item {words!r}")
    i = max(range(len(texts)), key=lambda i: len(texts[i]))  # the longest text
    if block_size is not None and len(texts[i]) + 1 > block_size:
        raise ValueError(f"{name}[{i}] has {len(texts[i]) + 1} tokens with <bos>, more than block_size={block_size}")


def _check_examples(examples, num_classes: int) -> None:
    """``examples`` must be a non-empty list of objects with ``.words`` and an int ``.label`` in [0, num_classes)."""
    if isinstance(examples, str) or not isinstance(examples, Sequence):
        raise TypeError(f"examples must be a list of labelled examples, got {type(examples).__name__}")
    if len(examples) == 0:
        raise ValueError("examples must hold at least one labelled example, got none")
    for i, e in enumerate(examples):
        if not hasattr(e, "words") or not hasattr(e, "label"):
            raise TypeError(f"examples must have .words and .label (e.g. MoodExample), "
                            f"got examples[{i}] = {type(e).__name__} {e!r:.60}")
        _checks.check_int(f"examples[{i}].label", e.label, num_classes, "num_classes")


def encode_stories(texts: Sequence[Sequence[str]], vocab: WordVocab, block_size: int):
    """Word lists -> inputs (B, T) = <bos> w_1..w_n and targets (B, T) = w_1..w_n <eos>, padded.

    Padding is ``vocab.pad_id`` in the inputs and ``IGNORE_INDEX`` in the targets (no loss there).
    """
    _check_texts("texts", texts, vocab, block_size)
    rows = [vocab.encode(words, add_bos=True, add_eos=True) for words in texts]
    inputs = pad_sequences([r[:-1] for r in rows], vocab.pad_id)
    targets = pad_sequences([r[1:] for r in rows], IGNORE_INDEX)
    return inputs, targets


def lm_batches(texts: Sequence[Sequence[str]], vocab: WordVocab, block_size: int, batch_size: int = 32,
               seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches (inputs, targets) of whole stories, reshuffled every epoch.

    Every text is checked here, at once: a text too long for block_size fails now, not in
    whichever epoch first draws it. batch_size must be in [1, len(texts)].
    """
    _check_texts("texts", texts, vocab, block_size)
    _checks.check_positive_int("batch_size", batch_size)
    if batch_size > len(texts):
        raise ValueError(f"batch_size must be in [1, {len(texts)}] (the number of texts), got {batch_size}")
    _checks.check_int("seed", seed)
    return epoch_batches(texts, batch_size, lambda chunk: encode_stories(chunk, vocab, block_size), seed)


def text_windows(ids: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator):
    """One batch of random windows from a long token stream (your own text): (inputs, targets), each (B, T).

    ids: (N,) token ids, N > block_size; targets are the inputs shifted by one token.
    block_size and batch_size are positive ints; generator a torch.Generator (or None).
    """
    _checks.check_positive_int("block_size", block_size)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_generator("generator", generator)
    if not isinstance(ids, torch.Tensor) or ids.dtype not in _checks.ID_DTYPES:
        got = f"dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"ids must be an integer torch.Tensor (N,) of token ids, got {got}")
    if ids.dim() != 1 or len(ids) <= block_size:
        raise ValueError(f"ids must be a 1-D stream longer than block_size={block_size}, got {shape_of(ids)}")
    starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)
    windows = torch.stack([ids[s:s + block_size + 1] for s in starts.tolist()])  # (B, T + 1)
    return windows[:, :-1], windows[:, 1:]


def lm_loss(model: GPT, batch) -> torch.Tensor:
    """The mean negative log-likelihood per predicted token, -L1 / tokens; batch = (inputs, targets)."""
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = f"{len(batch)} items" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"batch must be a pair (inputs, targets), got {got}")
    inputs, targets = batch
    return model(inputs, targets)[1]


@torch.no_grad()
def evaluate_lm(model: GPT, texts: Sequence[Sequence[str]], vocab: WordVocab, batch_size: int = 256) -> float:
    """Cross-entropy in nats per predicted token over all ``texts`` (directly comparable to the floor)."""
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    _check_texts("texts", texts, vocab, model.config.block_size)
    _checks.check_positive_int("batch_size", batch_size)
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with evaluating(model):
        for i in range(0, len(texts), batch_size):
            inputs, targets = encode_stories(texts[i:i + batch_size], vocab, model.config.block_size)
            logits, _ = model(inputs.to(device))
            nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(),
                                                    ignore_index=IGNORE_INDEX, reduction="sum")
            total += nll.item()
            count += int((targets != IGNORE_INDEX).sum())
    return total / count


def pretrain_gpt(train_texts, validation_texts, vocab: WordVocab, config: GPTConfig, *, steps: int = 1000,
                 batch_size: int = 32, lr: float = 3e-3, seed: int = 0, eval_every: int | None = None,
                 live_plot=None, progress: bool = True):
    """Build a GPT and pretrain it with the language-model loss; returns (model, history).

    AdamW (weight decay 0.01) with warm-up and cosine decay; validation loss (nats per token)
    every ``eval_every`` steps. Both text lists are checked against the config before training.
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    _check_texts("train_texts", train_texts, vocab, config.block_size)
    _check_texts("validation_texts", validation_texts, vocab, config.block_size)
    if config.vocab_size < len(vocab):
        raise ValueError(f"config.vocab_size={config.vocab_size} is smaller than the vocabulary ({len(vocab)} words): "
                         f"use GPTConfig(vocab_size=len(vocab), ...)")
    set_seed(seed)
    model = GPT(config)
    history = train(model, lm_batches(train_texts, vocab, config.block_size, batch_size, seed=seed), lm_loss,
                    steps=steps, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed, eval_every=eval_every,
                    eval_fn=lambda m: {"val_loss": evaluate_lm(m, validation_texts, vocab)},
                    live_plot=live_plot, progress=progress, desc="pretraining GPT")
    return model, history


def encode_examples(texts: Sequence[Sequence[str]], vocab: WordVocab):
    """Labelled texts -> ids (B, T) = <bos> w_1..w_n (padded with ``vocab.pad_id``) and lengths (B,)."""
    _check_texts("texts", texts, vocab, None)
    return vocab.encode_batch(texts, add_bos=True)


def finetune_classifier(examples, vocab: WordVocab, *, pretrained: GPT | None = None, config: GPTConfig | None = None,
                        lm_weight: float = 0.0, num_classes: int = 2, steps: int = 150, batch_size: int = 16,
                        lr: float = 1e-3, seed: int = 0) -> GPTForClassification:
    """Fine-tune on labelled ``examples`` (objects with ``.words`` and ``.label``) with L3 = L2 + λ L1.

    ``pretrained``: a GPT to start from (copied, the original is untouched); otherwise a fresh GPT
    of ``config`` (from scratch). Every parameter is trained, the new head W_y too. lm_weight λ is a
    finite number >= 0; every example must fit the model's block_size.
    """
    if (pretrained is None) == (config is None):
        raise ValueError("give exactly one of pretrained (fine-tune) or config (from scratch)")
    if pretrained is not None and not isinstance(pretrained, GPT):
        raise TypeError(f"pretrained must be a GPT, got {type(pretrained).__name__}")
    if config is not None and not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    _checks.check_positive_int("num_classes", num_classes)
    _check_examples(examples, num_classes)
    block_size = (pretrained.config if pretrained is not None else config).block_size
    _check_texts("examples", [e.words for e in examples], vocab, block_size)
    _checks.check_number("lm_weight", lm_weight)
    _checks.check_positive_int("batch_size", batch_size)
    set_seed(seed)
    gpt = copy.deepcopy(pretrained) if pretrained is not None else GPT(config)
    model = GPTForClassification(gpt, num_classes)
    ids, lengths = encode_examples([e.words for e in examples], vocab)
    labels = torch.tensor([e.label for e in examples])
    g = torch.Generator().manual_seed(seed)
    size = min(batch_size, len(examples))

    def batch(step):
        pick = torch.randperm(len(examples), generator=g)[:size]
        return ids[pick], labels[pick], lengths[pick]

    def loss_fn(m, b):
        return m(b[0], labels=b[1], lengths=b[2], lm_weight=lm_weight)[1]

    train(model, batch, loss_fn, steps=steps, lr=lr, weight_decay=0.01, seed=seed, live_plot=False, progress=False)
    return model


@torch.no_grad()
def classifier_accuracy(model: GPTForClassification, examples, vocab: WordVocab) -> float:
    """Share of ``examples`` whose predicted class is their label."""
    if not isinstance(model, GPTForClassification):
        raise TypeError(f"model must be a GPTForClassification, got {type(model).__name__}")
    _check_examples(examples, model.head.out_features)
    _check_texts("examples", [e.words for e in examples], vocab, model.gpt.config.block_size)
    ids, lengths = encode_examples([e.words for e in examples], vocab)
    with evaluating(model):
        logits, _ = model(ids, lengths=lengths)
    return (logits.argmax(-1) == torch.tensor([e.label for e in examples])).float().mean().item()
