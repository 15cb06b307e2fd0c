"""The few-label transfer experiment of notebooks 03 and 04: does pretraining carry what it learned
to words that the labels never showed?

The mood task's label hangs on one feeling word, one of 16 (8 per mood). For every seed,
:func:`few_label_split` chooses ``words_per_mood`` feeling words of each mood as the **labelled
words**: the labelled training stories and the validation stories use only those words, each
labelled word equally often. The test stories are then split in two:

- **seen**: their feeling word is a labelled word (what the labels themselves show);
- **unseen**: it is not. A classifier that learned only the labelled words scores about 50% here,
  whatever it memorised; accuracy well above 50% on unseen words is transfer.

The validation stories use the labelled words only, because a learner holding labels for some
words could only validate on those: choosing steps or a learning rate on unseen words would leak
the very thing being measured.

An **arm** is one way to get a classifier, a function ``fit(train, validation, seed) -> predict``
where ``predict(examples)`` returns the predicted labels, a LongTensor (N,). :func:`run_experiment`
runs every arm on every (number of labels, seed); each seed draws its own labelled words and its
own labelled stories, so the spread over seeds includes which stories were labelled, and every
arm sees the same split for the same seed (paired comparisons). :func:`bag_of_words` is the
baseline of what the labels alone give; the GPT arms are in :mod:`course_lib.tasks.gpt`, the BERT
arm in :mod:`course_lib.tasks.bert`.
"""

from __future__ import annotations

import copy
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _checks
from ..data.stories import FEELINGS, MOODS, MoodExample, MoodTask
from ..tokenizers import WordVocab
from ..batching import model_device
from ..training import get_device, train

__all__ = ["FewLabelSplit", "few_label_split", "feeling_similarity", "within_minus_across", "train_and_select", "logistic_regression", "bag_of_words",
           "ExperimentResults", "run_experiment", "METRICS"]

# What run_experiment measures for every (arm, number of labels, seed).
METRICS = ("train", "seen", "unseen", "test")


@dataclass(frozen=True)
class FewLabelSplit:
    """One seed's labelled data and its test halves.

    train: the labelled stories (each labelled word equally often, the moods balanced);
    validation: held-out stories with the labelled words only; test_seen / test_unseen: the test
    stories whose feeling word is / is not a labelled word; labelled_words: the words, by mood.
    """

    train: list[MoodExample]
    validation: list[MoodExample]
    test_seen: list[MoodExample]
    test_unseen: list[MoodExample]
    labelled_words: dict[str, tuple[str, ...]]


def few_label_split(task: MoodTask, num_labels: int, seed: int, *, words_per_mood: int = 4,
                    num_validation: int = 64) -> FewLabelSplit:
    """Draw one seed's labelled words and labelled stories from ``task``.

    ``words_per_mood`` of each mood's 8 feeling words are chosen at random; ``num_labels`` training
    stories are drawn from ``task.train`` (half per mood, cycling through the mood's labelled words so
    each appears ``num_labels / (2 * words_per_mood)`` times), ``num_validation`` from
    ``task.validation`` the same way, and ``task.test`` is split into seen and unseen words.

    Refused: a task that is not a MoodTask, a num_labels that is not a multiple of
    2 * words_per_mood (every labelled word equally often), a words_per_mood outside [1, 7] (at
    least one word per mood must stay unseen), a pool too small for the request.
    """
    if not isinstance(task, MoodTask):
        raise TypeError(f"task must be a MoodTask (make_mood_task(...)), got {type(task).__name__}")
    _checks.check_positive_int("words_per_mood", words_per_mood)
    per_mood = min(len(words) for words in FEELINGS.values())
    if words_per_mood >= per_mood:
        raise ValueError(f"words_per_mood must be in [1, {per_mood - 1}] so that some words stay unseen, "
                         f"got {words_per_mood}")
    for name, value in (("num_labels", num_labels), ("num_validation", num_validation)):
        _checks.check_positive_int(name, value)
        if value % (2 * words_per_mood):
            raise ValueError(f"{name} must be a multiple of 2 * words_per_mood = {2 * words_per_mood} (every "
                             f"labelled word equally often), got {value}")
    _checks.check_int("seed", seed)
    rng = random.Random(seed)
    labelled = {mood: tuple(sorted(rng.sample(FEELINGS[mood], words_per_mood))) for mood in MOODS}
    train = _draw(task.train, labelled, num_labels, rng, "num_labels", "task.train")
    validation = _draw(task.validation, labelled, num_validation, rng, "num_validation", "task.validation")
    words = {w for ws in labelled.values() for w in ws}
    return FewLabelSplit(train, validation, [e for e in task.test if e.feeling in words],
                         [e for e in task.test if e.feeling not in words], labelled)


def _draw(pool: Sequence[MoodExample], labelled: dict[str, tuple[str, ...]], size: int, rng: random.Random,
          name: str, pool_name: str) -> list[MoodExample]:
    """``size`` examples of ``pool``, the moods interleaved, each labelled word in turn."""
    by_word = {w: [e for e in pool if e.feeling == w] for ws in labelled.values() for w in ws}
    per_word = size // sum(len(ws) for ws in labelled.values())
    short = {w: len(es) for w, es in by_word.items() if len(es) < per_word}
    if short:
        raise ValueError(f"{name}={size} needs {per_word} stories of every labelled word, but {pool_name} has "
                         f"fewer for {short}: make the task with a larger split")
    picks = {w: rng.sample(es, per_word) for w, es in by_word.items()}
    columns = [[e for w in labelled[mood] for e in picks[w]] for mood in MOODS]
    for column in columns:
        rng.shuffle(column)
    return [e for pair in zip(*columns) for e in pair]   # happy, sad, happy, sad, ...


# -----------------------------------------------------------------------------
# did pretraining group the feeling words by mood?


def feeling_similarity(embedding: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
    """Cosine similarity between the rows of ``embedding`` (V, d) of the 16 feeling words, (16, 16).

    ``ids``: the 16 words' ids, the 8 happy words first (FEELINGS["happy"] + FEELINGS["sad"]).
    """
    _checks.check_tensor("embedding", embedding, 2, "(V, d) word embeddings")
    n = sum(len(words) for words in FEELINGS.values())
    if len(ids) != n:
        raise ValueError(f"ids must hold the {n} feeling words' ids (happy first), got {len(ids)}")
    # Computed where the embedding lives (a GPU for a model trained there), returned on the CPU.
    rows = F.normalize(embedding.detach()[torch.as_tensor(list(ids), device=embedding.device)].float(), dim=-1)
    return (rows @ rows.T).cpu()


def within_minus_across(similarity: torch.Tensor) -> float:
    """Mean similarity between two different words of one mood minus the mean across moods, for a
    (16, 16) :func:`feeling_similarity`: about 0 when the embedding ignores mood, up to 2."""
    n = len(FEELINGS["happy"])
    if not isinstance(similarity, torch.Tensor) or similarity.shape != (2 * n, 2 * n):
        raise ValueError(f"similarity must be a ({2 * n}, {2 * n}) tensor from feeling_similarity, got "
                         f"{_checks.shape_of(similarity) if isinstance(similarity, torch.Tensor) else type(similarity).__name__}")
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=similarity.device)
    within = torch.cat([similarity[:n, :n][off_diagonal], similarity[n:, n:][off_diagonal]]).mean()
    return (within - similarity[:n, n:].mean()).item()


# -----------------------------------------------------------------------------
# fine-tuning with the number of steps chosen on validation


def train_and_select(model: torch.nn.Module, batch, loss_fn, validation_loss=None, *, steps: int, lr: float,
                     seed: int, eval_every: int | None = None, device=None) -> torch.nn.Module:
    """Fine-tune ``model`` with the course's loop (AdamW, weight decay 0.01, a constant ``lr``, so
    the model at step s of a long run is the model of an s-step run); ``batch(step)`` and
    ``loss_fn(model, batch)`` as for :func:`course_lib.training.train`.

    With ``validation_loss(model) -> float`` and ``eval_every``: the loss is measured every
    ``eval_every`` steps and at the end, the state with the lowest is loaded back (early stopping
    chosen on validation), and ``model.selected_step`` / ``model.validation_loss`` say which.
    ``device``: where it trains (the model is moved there), default ``get_device()``.
    Returns the model.
    """
    if (validation_loss is None) != (eval_every is None):
        raise ValueError("give validation and eval_every together (or neither)")
    best: dict = {}   # the lowest validation loss so far, its state and its index among the evaluations

    def keep_best(m):
        loss = validation_loss(m)
        if not best or loss < best["loss"]:
            best.update(loss=loss, state=copy.deepcopy(m.state_dict()), index=best.get("calls", 0))
        best["calls"] = best.get("calls", 0) + 1
        return {"val_loss": loss}

    history = train(model, batch, loss_fn, steps=steps, lr=lr, weight_decay=0.01, seed=seed, live_plot=False,
                    progress=False, eval_fn=keep_best if validation_loss is not None else None, eval_every=eval_every,
                    device=get_device() if device is None else device)
    if best:
        model.load_state_dict(best["state"])
        model.selected_step, model.validation_loss = history.evals[best["index"]]["step"], best["loss"]
    return model


# -----------------------------------------------------------------------------
# the baseline: what the labels alone give


def logistic_regression(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                        weight_decays: Sequence[float] = (1e-3, 1e-2, 1e-1)) -> Callable[[torch.Tensor], torch.Tensor]:
    """A linear classifier on fixed features: features (N, F) -> logits (N, C).

    For each L2 penalty in ``weight_decays`` it fits W, b by L-BFGS on the mean cross-entropy
    (+ penalty * |W|^2) and keeps the one with the lowest validation cross-entropy. Returns the
    chosen linear map (a function of features (M, F), giving logits (M, C)).
    """
    for name, x, y in (("train", train_x, train_y), ("val", val_x, val_y)):
        _checks.check_tensor(f"{name}_x", x, 2, "(N, F) features")
        if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1]:
            raise ValueError(f"{name}_y must be a tensor (N,) = ({x.shape[0]},) of labels, got "
                             f"{_checks.shape_of(y) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if train_x.shape[1] != val_x.shape[1]:
        raise ValueError(f"val_x must have {train_x.shape[1]} features like train_x, got {tuple(val_x.shape)}")
    if not weight_decays:
        raise ValueError("weight_decays must name at least one penalty")
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    best = None
    for wd in weight_decays:
        _checks.check_number("weight_decays[i]", wd)
        linear = torch.nn.Linear(train_x.shape[1], num_classes)
        torch.nn.init.zeros_(linear.weight); torch.nn.init.zeros_(linear.bias)   # convex: start anywhere
        optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(linear(train_x), train_y) + wd * linear.weight.square().sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
        with torch.no_grad():
            val_loss = F.cross_entropy(linear(val_x), val_y).item()
        if best is None or val_loss < best[0]:
            best = (val_loss, linear)
    linear = best[1].requires_grad_(False)
    return lambda x: linear(x)


def bag_of_words(vocab: WordVocab, weight_decays: Sequence[float] = (1e-3, 1e-2, 1e-1)):
    """The arm "labels alone": logistic regression on word counts, penalty chosen on validation.

    It can only learn words it was shown with a label: an unseen feeling word has weight 0, so on
    unseen words it guesses from the other words of the story (person, place, activity), which say
    nothing about the mood.
    """
    if not isinstance(vocab, WordVocab):
        raise TypeError(f"vocab must be a WordVocab, got {type(vocab).__name__}")

    def counts(examples) -> torch.Tensor:   # (N, V) word counts
        x = torch.zeros(len(examples), len(vocab))
        for i, e in enumerate(examples):
            x[i].index_add_(0, torch.tensor(vocab.encode(e.words)), torch.ones(len(e.words)))
        return x

    def fit(train, validation, seed):
        linear = logistic_regression(counts(train), _labels(train), counts(validation), _labels(validation),
                                     weight_decays)
        return lambda examples: linear(counts(examples)).argmax(-1)

    return fit


def _labels(examples) -> torch.Tensor:
    return torch.tensor([e.label for e in examples])


# -----------------------------------------------------------------------------
# the experiment


@dataclass
class ExperimentResults:
    """Accuracies of every (arm, number of labels, seed).

    records: one dict per run: arm, num_labels, seed, and the accuracy on each of METRICS
    ("train": the labelled stories themselves; "seen" / "unseen": the two test halves; "test": all).
    """

    records: list[dict]

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(r["arm"] for r in self.records))

    @property
    def sizes(self) -> list[int]:
        return sorted({r["num_labels"] for r in self.records})

    def values(self, arm: str, num_labels: int, metric: str) -> list[float]:
        """The accuracies of one arm and size, one per seed."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        found = [r[metric] for r in self.records if r["arm"] == arm and r["num_labels"] == num_labels]
        if not found:
            raise ValueError(f"no runs of arm {arm!r} with num_labels={num_labels}: arms {self.arms}, "
                             f"sizes {self.sizes}")
        return found

    def mean_sd(self, arm: str, num_labels: int, metric: str) -> tuple[float, float]:
        """Mean and sample standard deviation over seeds (0 for one seed)."""
        v = self.values(arm, num_labels, metric)
        return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)

    def table(self, metric: str, arms: Sequence[str] | None = None) -> str:
        """A Markdown table: one row per arm, one column per size, "mean ± sd" accuracies."""
        arms = self.arms if arms is None else list(arms)
        head = "| arm | " + " | ".join(f"{n} labels" for n in self.sizes) + " |"
        rows = [head, "|---" * (len(self.sizes) + 1) + "|"]
        for arm in arms:
            rows.append(f"| {arm} | " + " | ".join("{:.1%} ± {:.1%}".format(*self.mean_sd(arm, n, metric))
                                                   for n in self.sizes) + " |")
        return "\n".join(rows)

    def plot(self, ax, metric: str, arms: Sequence[str] | None = None) -> None:
        """Mean accuracy against the number of labels, one line per arm, ± one sd shaded."""
        arms = self.arms if arms is None else list(arms)
        for arm in arms:
            means, sds = zip(*(self.mean_sd(arm, n, metric) for n in self.sizes))
            line, = ax.plot(self.sizes, means, marker="o", label=arm)
            ax.fill_between(self.sizes, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)],
                            color=line.get_color(), alpha=0.15)
        ax.set_xscale("log", base=2)
        ax.set_xticks(self.sizes, [str(n) for n in self.sizes])
        ax.axhline(0.5, color="gray", ls=":", lw=1)
        ax.set_xlabel("labelled stories"); ax.set_ylabel("accuracy"); ax.grid(alpha=0.3)


def run_experiment(arms: dict[str, Callable], task: MoodTask, sizes: Sequence[int], seeds: Sequence[int], *,
                   words_per_mood: int = 4, num_validation: int = 64, progress: bool = True) -> ExperimentResults:
    """Run every arm on every (size, seed): ``arms`` maps a name to ``fit(train, validation, seed) -> predict``.

    For each (size, seed) one :func:`few_label_split` is drawn and shared by all arms. Returns the
    accuracies on the labelled stories, on seen and unseen test words and on the whole test split.
    """
    if not isinstance(arms, dict) or not arms or not all(callable(f) for f in arms.values()):
        raise TypeError("arms must be a non-empty dict name -> fit(train, validation, seed) -> predict")
    if isinstance(sizes, int) or isinstance(seeds, int) or not sizes or not seeds:
        raise TypeError("sizes and seeds must be non-empty lists of ints, e.g. sizes=[8, 16], seeds=range(5)")
    from tqdm.auto import tqdm

    records = []
    with tqdm(total=len(arms) * len(sizes) * len(seeds), desc="fine-tuning runs", disable=not progress) as bar:
        for size in sizes:
            for seed in seeds:
                split = few_label_split(task, size, seed, words_per_mood=words_per_mood,
                                        num_validation=num_validation)
                for name, fit in arms.items():
                    predict = fit(split.train, split.validation, seed)
                    accuracy = {metric: _accuracy(predict, examples) for metric, examples in
                                (("train", split.train), ("seen", split.test_seen),
                                 ("unseen", split.test_unseen))}
                    n_seen, n_unseen = len(split.test_seen), len(split.test_unseen)
                    accuracy["test"] = (accuracy["seen"] * n_seen + accuracy["unseen"] * n_unseen) / (n_seen + n_unseen)
                    records.append(dict(arm=name, num_labels=size, seed=seed, **accuracy))
                    bar.update(1)
    return ExperimentResults(records)


@torch.no_grad()
def _accuracy(predict, examples) -> float:
    predicted = predict(examples)
    if not isinstance(predicted, torch.Tensor) or predicted.shape != (len(examples),):
        raise ValueError(f"an arm's predict(examples) must return a tensor ({len(examples)},) of labels, got "
                         f"{_checks.shape_of(predicted) if isinstance(predicted, torch.Tensor) else type(predicted).__name__}")
    return (predicted.cpu() == _labels(examples)).float().mean().item()
