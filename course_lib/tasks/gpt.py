"""GPT recipes of notebook 03: pretrain a language model on the story world, fine-tune it on few labels.

- :func:`lm_batches` / :func:`evaluate_lm`: stories as ``<bos> w_1 ... w_n <eos>`` rows, padded;
  the loss counts every predicted token (the words and ``<eos>``), as :func:`entropy_floor` does.
- :func:`pretrain_gpt`: the course's training loop on those batches; :func:`text_windows`:
  random windows of your own text for the same loop.
- :func:`windowed_lm_batches`, :func:`evaluate_lm_windowed`, :func:`pretrain_windowed_gpt`: the
  notes' context window k made binding: every token is predicted from at most k tokens before it.
- :func:`attention_weights`, :func:`event_attention`: what the trained blocks attend to.
- :func:`finetune_classifier`: the notes' supervised fine-tuning with loss L3 = L2 + λ L1, from a
  pretrained GPT or from scratch, and :func:`classifier_accuracy`.

Shapes: B batch, T tokens per row (<= block_size), V vocabulary size.

Devices: the functions that build and train a model take ``device`` (default
:func:`course_lib.training.get_device`: the GPU where there is one); the model is built on the CPU
(the same initial weights everywhere) and trained there. The functions that run a model move its
inputs to the model's device and return their results on the CPU.

Arguments are checked before any work is done, so a bad one fails at once rather than minutes
into training: texts and examples must be non-empty lists (of word lists; of examples with
``.words`` and an int ``.label`` in [0, num_classes)), every text must fit the context window,
sizes are positive ints, models and vocabularies of the right kind. Each error names the argument.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from .. import _checks
from .._checks import shape_of
from ..data.stories import EVENTS, FEELINGS, MOODS
from ..batching import IGNORE_INDEX, epoch_batches, pad_sequences
from ..gpt import GPT, GPTConfig, GPTForClassification
from ..tokenizers import WordVocab
from ..training import evaluating, get_device, set_seed, train
from ..batching import model_device
from .transfer import logistic_regression, train_and_select

__all__ = ["encode_stories", "lm_batches", "text_windows", "lm_loss", "evaluate_lm", "pretrain_gpt",
           "encode_examples", "finetune_classifier", "classifier_accuracy", "classifier_predictions", "classifier_loss",
           "finetune_arm", "linear_probe_arm", "zero_shot_arm", "zero_shot_scores",
           "windowed_lm_batches", "evaluate_lm_windowed", "pretrain_windowed_gpt", "window_count_loss", "attention_weights",
           "event_attention"]


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
                 live_plot=None, progress: bool = True, device=None):
    """Build a GPT and pretrain it with the language-model loss; returns (model, history).

    AdamW (weight decay 0.01) with warm-up and cosine decay; validation loss (nats per token)
    every ``eval_every`` steps. Both text lists are checked against the config before training.
    ``device``: where it trains and stays ("cpu", "cuda", "mps"), default ``get_device()``.
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    _check_texts("train_texts", train_texts, vocab, config.block_size)
    _check_texts("validation_texts", validation_texts, vocab, config.block_size)
    if config.vocab_size < len(vocab):
        raise ValueError(f"config.vocab_size={config.vocab_size} is smaller than the vocabulary ({len(vocab)} words): "
                         f"use GPTConfig(vocab_size=len(vocab), ...)")
    set_seed(seed)
    model = GPT(config)  # built on the CPU: the same initial weights on every machine; train() moves it
    history = train(model, lm_batches(train_texts, vocab, config.block_size, batch_size, seed=seed), lm_loss,
                    steps=steps, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed, eval_every=eval_every,
                    eval_fn=lambda m: {"val_loss": evaluate_lm(m, validation_texts, vocab)},
                    live_plot=live_plot, progress=progress, desc="pretraining GPT",
                    device=get_device() if device is None else device)
    return model, history


def encode_examples(texts: Sequence[Sequence[str]], vocab: WordVocab):
    """Labelled texts -> ids (B, T) = <bos> w_1..w_n (padded with ``vocab.pad_id``) and lengths (B,)."""
    _check_texts("texts", texts, vocab, None)
    return vocab.encode_batch(texts, add_bos=True)


def finetune_classifier(examples, vocab: WordVocab, *, pretrained: GPT | None = None, config: GPTConfig | None = None,
                        lm_weight: float = 0.0, num_classes: int = 2, steps: int = 150, batch_size: int = 16,
                        lr: float = 1e-3, seed: int = 0, validation=None, eval_every: int | None = None,
                        device=None) -> GPTForClassification:
    """Fine-tune on labelled ``examples`` (objects with ``.words`` and ``.label``) with L3 = L2 + λ L1.

    ``pretrained``: a GPT to start from (copied, the original is untouched); otherwise a fresh GPT
    of ``config`` (from scratch). Every parameter is trained, the new head W_y too, at a constant
    learning rate (so the model at step s of a long run is the model of an s-step run). lm_weight
    λ is a finite number >= 0; every example must fit the model's block_size.

    ``validation`` (labelled examples) with ``eval_every``: the classification loss L2 on them is
    measured every ``eval_every`` steps and the model of the lowest one is returned (early stopping
    chosen on validation); ``model.selected_step`` and ``model.validation_loss`` say which.
    ``device``: where it trains and stays ("cpu", "cuda", "mps"), default ``get_device()``.
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
    if (validation is None) != (eval_every is None):
        raise ValueError("give validation and eval_every together (or neither)")
    if validation is not None:
        _check_examples(validation, num_classes)
        _check_texts("validation", [e.words for e in validation], vocab, block_size)
        _checks.check_positive_int("eval_every", eval_every)
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

    validation_loss = None if validation is None else (lambda m: classifier_loss(m, validation, vocab))
    return train_and_select(model, batch, loss_fn, validation_loss, steps=steps, lr=lr, seed=seed,
                            eval_every=eval_every, device=device)


def finetune_arm(vocab: WordVocab, *, pretrained: GPT | None = None, config: GPTConfig | None = None,
                 lm_weight: float = 0.0, lrs=(1e-3, 3e-3), steps: int = 120, eval_every: int = 30, device=None):
    """An arm of :func:`course_lib.tasks.transfer.run_experiment`: fine-tune (or train from scratch)
    with every learning rate of ``lrs``, stop at the multiple of ``eval_every`` steps with the lowest
    validation loss, and keep the (lr, steps) whose validation loss is lowest. Nothing is chosen
    by hand or on test stories. ``device``: where each run trains, default ``get_device()``.
    """
    if not lrs:
        raise ValueError("lrs must name at least one learning rate")

    def fit(train_examples, validation, seed):
        runs = [finetune_classifier(train_examples, vocab, pretrained=pretrained, config=config, lm_weight=lm_weight,
                                    steps=steps, lr=lr, seed=seed, validation=validation, eval_every=eval_every,
                                    device=device)
                for lr in lrs]
        model = min(runs, key=lambda m: m.validation_loss)
        return lambda examples: classifier_predictions(model, examples, vocab)

    return fit


def linear_probe_arm(pretrained: GPT, vocab: WordVocab, weight_decays=(1e-3, 1e-2, 1e-1), from_end: int = 1):
    """An arm: the pretrained GPT frozen, only W_y trained (logistic regression on h_l^m, the last
    real token's final state), its L2 penalty chosen on validation. It reads what pretraining put
    in the features, with nothing else learned. ``from_end`` = 2 reads the state one token before
    the last instead (the feeling word, in the mood stories)."""
    if not isinstance(pretrained, GPT):
        raise TypeError(f"pretrained must be a GPT, got {type(pretrained).__name__}")
    _checks.check_positive_int("from_end", from_end)
    @torch.no_grad()
    def features(examples) -> torch.Tensor:   # (N, d): h_l^m of each story
        ids, lengths = encode_examples([e.words for e in examples], vocab)
        with evaluating(pretrained):
            # run where the model is; the features go back to the CPU for logistic_regression
            h = pretrained.hidden_states(ids.to(model_device(pretrained))).cpu()
        if int(lengths.min()) <= from_end:
            raise ValueError(f"from_end={from_end} reaches past the start of a story of {int(lengths.min())} tokens")
        return h[torch.arange(len(examples)), lengths - from_end]

    def fit(train_examples, validation, seed):
        labels = [torch.tensor([e.label for e in es]) for es in (train_examples, validation)]
        linear = logistic_regression(features(train_examples), labels[0], features(validation), labels[1],
                                     weight_decays)
        return lambda examples: linear(features(examples)).argmax(-1)

    return fit


@torch.no_grad()
def zero_shot_scores(model: GPT, examples, vocab: WordVocab) -> torch.Tensor:
    """Zero-shot mood scores from a language model, no label used: (N, 2) log-scores, one per mood.

    In the stories the model was pretrained on, an event sentence ("he found a coin .") comes just
    before the feeling sentence, and the feeling word is predicted from it. So ask the model which
    kind of event makes this story's feeling sentence likely: insert each event of the grammar
    before "<pronoun> felt ..." and score the feeling sentence,

        score(mood) = log (1 / |events(mood)|) sum_{e in events(mood)} P(felt ... . | story before it, e),

    a noisy-channel form of the GPT paper's zero-shot behaviours (section 5). Asking instead for
    the reaction after the story does not work here: the model predicts the reaction from the
    event, and these stories have none.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    _check_examples(examples, len(MOODS))
    texts, starts = [], []
    for i, e in enumerate(examples):
        words = list(e.words)
        if "felt" not in words[1:]:
            raise ValueError(f"examples[{i}] has no '<pronoun> felt ...' sentence: {e.text!r}")
        felt = len(words) - 1 - words[::-1].index("felt")
        pronoun = words[felt - 1]
        for mood in MOODS:
            for event in EVENTS[mood]:
                prefix = words[:felt - 1] + [pronoun, *event.split(), "."] + [pronoun]
                texts.append(prefix + words[felt:])
                starts.append(len(prefix) + 1)          # + 1 for <bos>: the position of "felt"
    _check_texts("examples (with an event)", texts, vocab, model.config.block_size)
    ids, lengths = vocab.encode_batch(texts, add_bos=True)
    device = model_device(model)
    with evaluating(model):
        logits = torch.cat([model(ids[i:i + 1024].to(device))[0] for i in range(0, len(ids), 1024)])
    log_p = logits.log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None].to(device))[..., 0].cpu()  # (M, T-1)
    predicted = torch.arange(1, ids.shape[1])[None]                                  # which token each predicts
    scored = (predicted >= torch.tensor(starts)[:, None]) & (predicted < lengths[:, None])
    per_text = (log_p * scored).sum(-1).view(len(examples), len(MOODS), -1)        # (N, moods, events)
    return per_text.logsumexp(-1) - math.log(per_text.shape[-1])


def zero_shot_arm(pretrained: GPT, vocab: WordVocab):
    """An arm that uses no label at all: the mood of :func:`zero_shot_scores` (each text scored once)."""
    if not isinstance(pretrained, GPT):
        raise TypeError(f"pretrained must be a GPT, got {type(pretrained).__name__}")
    known: dict[str, int] = {}

    def predict(examples):
        new = [e for e in {e.text: e for e in examples}.values() if e.text not in known]
        if new:
            known.update(zip([e.text for e in new], zero_shot_scores(pretrained, new, vocab).argmax(-1).tolist()))
        return torch.tensor([known[e.text] for e in examples])

    return lambda train_examples, validation, seed: predict


@torch.no_grad()
def classifier_predictions(model: GPTForClassification, examples, vocab: WordVocab) -> torch.Tensor:
    """The predicted class of each example, (N,) long."""
    return _classifier_logits(model, examples, vocab).argmax(-1)


@torch.no_grad()
def classifier_loss(model: GPTForClassification, examples, vocab: WordVocab) -> float:
    """The mean classification cross-entropy (the code's L2) on labelled ``examples``."""
    logits = _classifier_logits(model, examples, vocab)
    return F.cross_entropy(logits, torch.tensor([e.label for e in examples])).item()


def _classifier_logits(model: GPTForClassification, examples, vocab: WordVocab) -> torch.Tensor:
    if not isinstance(model, GPTForClassification):
        raise TypeError(f"model must be a GPTForClassification, got {type(model).__name__}")
    _check_examples(examples, model.head.out_features)
    _check_texts("examples", [e.words for e in examples], vocab, model.gpt.config.block_size)
    ids, lengths = encode_examples([e.words for e in examples], vocab)
    device = model_device(model)
    with evaluating(model):
        return model(ids.to(device), lengths=lengths.to(device))[0].cpu()   # (N, C), on the CPU


@torch.no_grad()
def classifier_accuracy(model: GPTForClassification, examples, vocab: WordVocab) -> float:
    """Share of ``examples`` whose predicted class is their label."""
    predicted = classifier_predictions(model, examples, vocab)
    return (predicted == torch.tensor([e.label for e in examples])).float().mean().item()


# --- the context window k (上下文窗口) -----------------------------------------------------------

def _check_window(window, block_size: int) -> None:
    """``window`` k must be an int in [1, block_size]: the model has no position beyond block_size."""
    _checks.check_positive_int("window", window)
    if window > block_size:
        raise ValueError(f"window must be in [1, block_size={block_size}] (the model's positions), got {window}")


def _story_rows(texts, vocab: WordVocab) -> list[list[int]]:
    """Each text as the ids of ``<bos> w_1 ... w_n <eos>``."""
    return [vocab.encode(words, add_bos=True, add_eos=True) for words in texts]


def windowed_lm_batches(texts: Sequence[Sequence[str]], vocab: WordVocab, window: int, batch_size: int = 32,
                        seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches (inputs (B, k), targets (B, k)) of windows of k = ``window`` tokens.

    Every story row ``<bos> w_1 ... w_n <eos>`` is cut into all its windows of k + 1 consecutive
    tokens (start 0, 1, ...): inputs are the first k, targets the last k. A row of at most k + 1
    tokens gives one window, padded (``vocab.pad_id`` in the inputs, ``IGNORE_INDEX`` in the
    targets). So every token is predicted from at most k tokens: the notes'
    P(u_i | u_{i-k}, ..., u_{i-1}). Texts may be longer than k; window is a positive int,
    batch_size an int in [1, number of windows], seed an int.
    """
    _check_texts("texts", texts, vocab, None)
    _checks.check_positive_int("window", window)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_int("seed", seed)
    pieces = [row[s:s + window + 1] for row in _story_rows(texts, vocab)
              for s in range(max(1, len(row) - window))]
    if batch_size > len(pieces):
        raise ValueError(f"batch_size must be in [1, {len(pieces)}] (the number of windows), got {batch_size}")

    def encode(chunk):
        return (pad_sequences([p[:-1] for p in chunk], vocab.pad_id, window),
                pad_sequences([p[1:] for p in chunk], IGNORE_INDEX, window))

    return epoch_batches(pieces, batch_size, encode, seed)


@torch.no_grad()
def evaluate_lm_windowed(model: GPT, texts: Sequence[Sequence[str]], vocab: WordVocab, window: int | None = None,
                         batch_size: int = 2048) -> float:
    """Cross-entropy in nats per predicted token, each token seen with at most k = ``window`` tokens.

    Sliding windows of stride 1: a story row ``<bos> w_1 ... w_n <eos>`` of R tokens gives the
    window of its first k tokens (all k predictions scored), then one window per later token
    (inputs: the k tokens before it, only the last prediction scored). Every predicted token is
    scored exactly once, as in :func:`evaluate_lm`, so the two are equal when k is at least the
    longest row's n + 1 predictions; with k = 1 each token is predicted from the one before it.
    ``window``: an int in [1, model.config.block_size], default block_size; texts may be longer
    than the window. Batches of ``batch_size`` windows, each (batch, k).
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    window = model.config.block_size if window is None else window
    _check_window(window, model.config.block_size)
    _check_texts("texts", texts, vocab, None)
    _checks.check_positive_int("batch_size", batch_size)
    inputs, targets = [], []
    for row in _story_rows(texts, vocab):
        inputs.append(row[:-1][:window])                  # the first window: every prediction scored
        targets.append(row[1:][:window])
        for t in range(window + 1, len(row)):             # token t, from the k tokens before it
            inputs.append(row[t - window:t])
            targets.append([IGNORE_INDEX] * (window - 1) + [row[t]])
    inputs, targets = pad_sequences(inputs, vocab.pad_id, window), pad_sequences(targets, IGNORE_INDEX, window)
    total, device = 0.0, next(model.parameters()).device
    with evaluating(model):
        for i in range(0, len(inputs), batch_size):
            logits, _ = model(inputs[i:i + batch_size].to(device))
            total += F.cross_entropy(logits.flatten(0, 1), targets[i:i + batch_size].to(device).flatten(),
                                     ignore_index=IGNORE_INDEX, reduction="sum").item()
    return total / int((targets != IGNORE_INDEX).sum())


def pretrain_windowed_gpt(train_texts, validation_texts, vocab: WordVocab, config: GPTConfig, *,
                          steps: int = 300, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
                          eval_every: int | None = None, live_plot=None, progress: bool = True, device=None):
    """:func:`pretrain_gpt` with a binding context window k = ``config.block_size``; returns (model, history).

    Trains on :func:`windowed_lm_batches` (batch_size windows of k tokens per step) and measures
    the validation loss with :func:`evaluate_lm_windowed` (every token with at most k tokens
    before it), so the stories may be longer than block_size. Same optimiser and schedule as
    :func:`pretrain_gpt`. ``device``: where it trains and stays, default ``get_device()``.
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    _check_texts("train_texts", train_texts, vocab, None)
    _check_texts("validation_texts", validation_texts, vocab, None)
    if config.vocab_size < len(vocab):
        raise ValueError(f"config.vocab_size={config.vocab_size} is smaller than the vocabulary ({len(vocab)} words): "
                         f"use GPTConfig(vocab_size=len(vocab), ...)")
    batches = windowed_lm_batches(train_texts, vocab, config.block_size, batch_size, seed=seed)
    set_seed(seed)
    model = GPT(config)  # built on the CPU: the same initial weights on every machine; train() moves it
    history = train(model, batches, lm_loss, steps=steps, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed,
                    eval_every=eval_every, device=get_device() if device is None else device,
                    eval_fn=lambda m: {"val_loss": evaluate_lm_windowed(m, validation_texts, vocab)},
                    live_plot=live_plot, progress=progress, desc=f"pretraining GPT, k={config.block_size}")
    return model, history


def window_count_loss(train_texts: Sequence[Sequence[str]], texts: Sequence[Sequence[str]], window: int) -> float:
    """What counting can do with a window of k tokens: nats per predicted token on ``texts``.

    P(u_i | the k tokens before it) is estimated by counting, in the ``train_texts`` rows
    ``<bos> w_1 ... w_n <eos>``, how often each k-token context (fewer at the start of a row) was
    followed by each token: the maximum-likelihood (k+1)-gram model. Its cross-entropy on
    ``texts``, with every token predicted once as in :func:`evaluate_lm_windowed`, estimates the
    best loss any model with that window can reach (when the training rows hold every context
    well). A token never seen after its context gets probability 0: the result is then ``inf``.
    window: a positive int.
    """
    for name, value in (("train_texts", train_texts), ("texts", texts)):
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0 \
                or any(isinstance(w, str) or not isinstance(w, Sequence) for w in value):
            raise TypeError(f"{name} must be a non-empty list of word lists, got {type(value).__name__}")
    _checks.check_positive_int("window", window)
    counts: dict[tuple, dict[str, int]] = {}
    for words in train_texts:
        row = ["<bos>", *words, "<eos>"]
        for i in range(1, len(row)):
            after = counts.setdefault(tuple(row[max(0, i - window):i]), {})
            after[row[i]] = after.get(row[i], 0) + 1
    total, n = 0.0, 0
    for words in texts:
        row = ["<bos>", *words, "<eos>"]
        for i in range(1, len(row)):
            after = counts.get(tuple(row[max(0, i - window):i]), {})
            if after.get(row[i], 0) == 0:
                return math.inf
            total -= math.log(after[row[i]] / sum(after.values()))
            n += 1
    return total / n


# --- attention in the trained blocks -------------------------------------------------------------

@torch.no_grad()
def attention_weights(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Every block's attention weights on ``idx`` (B, T): a tensor (n_layer, B, n_head, T, T).

    Entry [l, b, h, t, s] is the weight with which position t reads position s in head h of
    block l + 1: softmax(Q K^T / sqrt(d_k) + mask) of notebooks 01-02, with GPT's causal mask, so
    it is exactly 0 for s > t and each row sums to 1. Runs in eval mode (no dropout) and gives the
    model its mode and its blocks their ``need_weights`` back. idx: ids in [0, V), T <= block_size.
    The model runs on its own device; the weights are returned on the CPU.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    model._check_hidden_states(idx)
    saved = [block.need_weights for block in model.blocks]
    try:
        for block in model.blocks:
            block.need_weights = True
        with evaluating(model):
            model.hidden_states(idx.to(model_device(model)))
            return torch.stack([block.attn_weights for block in model.blocks]).cpu()
    finally:
        for block, need in zip(model.blocks, saved):
            block.need_weights = need


_FEELING_WORDS = frozenset(w for mood in MOODS for w in FEELINGS[mood])


def _event_positions(i: int, words) -> tuple[int, int, range]:
    """Positions (in ``<bos> w_1 ...``) of "felt", of the feeling word, and of the event sentence before "<pronoun> felt" (from its pronoun to its "."), for story ``i``."""
    words = list(words)
    if "felt" not in words:
        raise ValueError(f"texts[{i}] has no '<pronoun> felt ...' sentence: {' '.join(words)!r}")
    felt = words.index("felt")
    feeling = next((j for j in range(felt + 1, len(words)) if words[j] in _FEELING_WORDS), None)
    ends = [j for j in range(felt - 1) if words[j] == "."]   # the sentence ends before "<pronoun> felt"
    if feeling is None or len(ends) < 2 or ends[-1] != felt - 2:
        raise ValueError(f"texts[{i}] must hold an event sentence, then '<pronoun> felt [very|so] <feeling> .', "
                         f"got {' '.join(words)!r}")
    return felt + 1, feeling + 1, range(ends[-2] + 2, ends[-1] + 2)   # + 1 for <bos>


@torch.no_grad()
def event_attention(model: GPT, texts: Sequence[Sequence[str]], vocab: WordVocab, query: str = "felt"):
    """How much each head reads the event sentence at the feeling sentence; returns (share, uniform).

    For each story (with an event sentence, e.g. "she found a coin ." before "she felt so glad ."),
    the query position is ``query`` = "felt" (the position of "felt") or "feeling" (the token just
    before the feeling word, whose output predicts it: "felt" or the adverb). share (n_layer,
    n_head): the attention weight from the query position onto the event sentence's tokens
    (pronoun to "."), averaged over the stories. uniform (a float): the same for attention spread
    evenly over the visible positions (<bos> to the query), |event| / (query + 1), averaged.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    if query not in ("felt", "feeling"):
        raise ValueError(f"query must be 'felt' or 'feeling', got {query!r}")
    _check_texts("texts", texts, vocab, model.config.block_size)
    where = [_event_positions(i, words) for i, words in enumerate(texts)]
    ids, _ = vocab.encode_batch(texts, add_bos=True)                         # (N, T); padding at the end
    weights = torch.cat([attention_weights(model, ids[i:i + 512]) for i in range(0, len(ids), 512)], dim=1)
    q = torch.tensor([felt if query == "felt" else feeling - 1 for felt, feeling, _ in where])     # (N,)
    event = torch.zeros(ids.shape, dtype=torch.bool)
    for n, (_, _, span) in enumerate(where):
        event[n, list(span)] = True
    rows = weights.permute(1, 3, 0, 2, 4)[torch.arange(len(ids)), q]         # (N, L, H, T): the query's row
    share = (rows * event[:, None, None]).sum(-1).mean(0)                    # (L, H)
    uniform = (event.sum(-1) / (q + 1)).float().mean().item()
    return share, uniform
