"""One training loop for every notebook of the course, plus safe checkpoints.

    history = train(model, batches, loss_fn, steps=500, lr=3e-3, eval_fn=evaluate, eval_every=100)

- ``train`` runs ``steps`` optimizer updates. Each step draws a batch, moves it to the
  model's device, computes ``loss_fn(model, batch)``, backpropagates, clips the gradient
  norm and updates. It shows a progress bar and, inside a notebook, a live loss curve.
- ``History`` is what ``train`` returns: every training loss and every evaluation.
- ``LiveLossPlot`` (in ``viz``) is the loss curve it draws in a notebook.
- ``save_checkpoint`` / ``load_checkpoint`` write and read model (and optimizer) state.
  Writes are atomic (a crash never leaves half a file behind) and reads use
  ``torch.load(..., weights_only=True)``, so loading a file never runs code from it.

Step numbering: a step index is the number of optimizer updates the model had received
when the value was measured. The training loss of step ``s`` (``s = 0 .. steps-1``) is
computed just before update ``s+1``; an evaluation recorded with ``"step": s`` ran after
``s`` updates. So both sit on the same x axis, and the final evaluation has ``"step": steps``.
"""

import contextlib
import math
import numbers
import os
import pickle
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .viz import EMA_BETA, LiveLossPlot, in_notebook


CHECKPOINT_FORMAT = "course_lib.checkpoint/1"



# -----------------------------------------------------------------------------
# seeds and devices


def set_seed(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every GPU) with ``seed``.

    Returns a fresh CPU ``torch.Generator`` seeded with ``seed``, for code that wants to
    pass its randomness explicitly (``torch.randn(..., generator=g)``) instead of using the
    global random state.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int between 0 and 2**32 - 1, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """``cuda`` when a GPU is available, else ``cpu``.

    Apple's ``mps`` is never picked automatically: some operations the course uses are
    missing or slower there, and results would differ from everyone else's. Pass
    ``torch.device("mps")`` explicitly to try it.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# the name the PyTorch-basics notebook teaches; one function, two names
get_device = default_device


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Switch ``model`` to eval mode (dropout off) inside a ``with`` block, then back.

        with evaluating(model), torch.no_grad():
            logits, _ = model(idx)

    The mode the model had before is restored even when the block raises, so a helper
    that only looks at a model never leaves it in eval mode for the training that follows.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# -----------------------------------------------------------------------------
# history


@dataclass
class History:
    """What ``train`` returns.

    steps:   list[int], the step index of each training loss (0 .. steps-1, every step)
    losses:  list[float], the training loss of each step (same length as ``steps``)
    evals:   list[dict], one ``{"step": int, **metrics}`` per call of ``eval_fn``
    seconds: float, wall-clock time of the training
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def last_eval(self) -> dict | None:
        """The most recent evaluation, or None when ``eval_fn`` was never called."""
        return self.evals[-1] if self.evals else None


# -----------------------------------------------------------------------------
# the training loop


def _to_device(batch, device: torch.device):
    """Move every tensor of ``batch`` (a tensor, or tuples / lists / dicts nesting them) to
    ``device``; anything else (strings, ints, ...) is returned unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple keeps its type
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class _BatchSource:
    """Hands out one batch per step, from an iterable (restarted when it runs out, so a
    list or a DataLoader gives epochs) or from a callable ``batches(step)``."""

    def __init__(self, batches):
        if isinstance(batches, torch.Tensor):
            raise TypeError("batches must be an iterable of batches or a callable batches(step), "
                            "got a single tensor (iterating it would give its rows); "
                            "to use the same batch at every step pass [tensor]")
        if isinstance(batches, Mapping):
            raise TypeError("batches must be an iterable of batches or a callable batches(step), "
                            "got a single dict (iterating it would give its keys); "
                            "to use the same batch at every step pass [batch]")
        if isinstance(batches, Iterable):
            self.iterable, self.function = batches, None
        elif callable(batches):
            self.iterable, self.function = None, batches
        else:
            raise TypeError("batches must be an iterable of batches (a list, a DataLoader, ...) "
                            f"or a callable batches(step) -> batch, got {type(batches).__name__}")
        self.iterator = None  # the current pass over the iterable (None before the first)

    def get(self, step: int):
        if self.function is not None:
            return self.function(step)
        if self.iterator is not None:
            try:
                return next(self.iterator)
            except StopIteration:
                pass
        # First call, or the end of an epoch: start the iterable again.
        first_pass = self.iterator is None
        self.iterator = iter(self.iterable)
        try:
            return next(self.iterator)
        except StopIteration:
            if first_pass:
                raise ValueError("batches is empty: it gave no batch at all") from None
            # e.g. a generator: iter() of a generator returns the same, exhausted generator
            raise ValueError(
                f"batches ran out at step {step} and gave nothing when started again: it can only "
                "be iterated once (a generator?). Pass a list, a DataLoader, an object whose "
                "__iter__ starts again, or a callable batches(step) -> batch") from None


def epoch_batches(items, batch_size: int, encode, seed: int = 0):
    """Endless mini-batches: shuffle ``items`` each epoch, cut full batches, yield ``encode(batch_items)``.

    The last, incomplete batch of an epoch is dropped, so every batch has ``batch_size`` items.
    """
    if not 1 <= batch_size <= len(items):
        raise ValueError(f"batch_size must be in [1, {len(items)}] (the number of items), got {batch_size}")
    rng = random.Random(seed)
    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield encode([items[j] for j in order[i:i + batch_size]])


def _check_positive_int(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        expected = "a positive int" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_loss(loss, step: int, lr: float) -> float:
    """Check what loss_fn returned; return its value as a Python float."""
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__} {loss!r} "
                        f"at step {step}")
    if loss.ndim != 0:
        raise ValueError(f"loss_fn must return a scalar tensor (shape ()), got a tensor of shape "
                         f"{tuple(loss.shape)} at step {step}; reduce it, e.g. with .mean()")
    if not loss.requires_grad:
        raise ValueError(f"loss_fn returned a tensor that does not require grad at step {step}, "
                         "so there is nothing to train: was it computed under torch.no_grad(), "
                         "detached, or converted from a Python number?")
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(
            f"the loss is {value} at step {step}: training diverged. "
            f"Try a lower learning rate (lr={lr:g} now), or keep clip_grad_norm on")
    return value


def _evaluate(model: nn.Module, eval_fn, step: int) -> dict:
    """Call eval_fn(model) in eval mode without gradients; return {"step": step, **metrics}."""
    was_training = model.training
    model.eval()  # dropout off, etc.
    try:
        with torch.no_grad():
            metrics = eval_fn(model)
    finally:
        model.train(was_training)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"eval_fn must return a dict of metric name -> number, "
                        f"got {type(metrics).__name__} {metrics!r}")
    if "step" in metrics:
        raise ValueError("eval_fn must not return a metric named 'step' (train records the step itself)")
    record = {"step": step}
    for name, value in metrics.items():
        try:
            record[name] = float(value)  # accepts numbers and one-element tensors
        except (TypeError, ValueError):
            raise TypeError(f"eval_fn returned {name}={value!r}; every metric must be a number") from None
    return record


def cosine_factor(step: int, steps: int, warmup: float = 0.05, final: float = 0.1) -> float:
    """Learning-rate multiplier at ``step`` of ``steps``: linear warm-up, then cosine decay to ``final``."""
    warmup_steps = max(1, int(warmup * steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train(model, batches, loss_fn, *, steps, lr=1e-3, optimizer=None, weight_decay=0.0,
          clip_grad_norm=1.0, eval_fn=None, eval_every=None, seed=0, device=None,
          live_plot=None, plot_every=25, progress=True, desc="training",
          checkpoint_path=None, schedule="constant") -> History:
    """Train ``model`` for ``steps`` optimizer updates; return the History.

    model:          nn.Module; trained in train mode, its previous mode is restored at the end
    batches:        an iterable of batches (a list, a DataLoader, ...), started again when it
                    runs out, or a callable ``batches(step) -> batch``. A batch is a tensor, a
                    tuple / list / dict of tensors (other values are passed along untouched)
    loss_fn:        ``loss_fn(model, batch) -> loss``, a scalar tensor (shape ())
    steps:          int, number of optimizer updates
    lr:             float, learning rate of the default optimizer
    optimizer:      optional torch.optim.Optimizer; by default AdamW(lr, weight_decay).
                    When given, ``lr`` and ``weight_decay`` are not used
    weight_decay:   float, weight decay of the default AdamW
    clip_grad_norm: float or None, the maximum global norm of the gradients (None: no clipping)
    eval_fn:        optional ``eval_fn(model) -> dict[str, float]``, called under
                    torch.no_grad() in eval mode every ``eval_every`` steps and at the end
    eval_every:     int or None (None: evaluate only at the end)
    seed:           int, seeds random / numpy / torch at the start so two runs with the same
                    seed give the same losses (None: leave the random state alone)
    device:         where batches go; default the device of the model's first parameter.
                    When given, the model is moved there too
    live_plot:      None (a live loss curve only inside a notebook), True, False, or a
                    LiveLossPlot to draw into (e.g. one built with a ``floor``)
    plot_every:     int, the live plot is redrawn every ``plot_every`` steps and at the end
    progress:       bool, show a tqdm progress bar
    desc:           str, label of the progress bar and title of the live plot
    checkpoint_path: optional path; at the end the model, optimizer, step and history are
                    saved there with save_checkpoint
    schedule:       "constant" (lr throughout) or "cosine" (warm up linearly over the first
                    5% of the steps, then decay along a cosine to 0.1 * lr): short runs
                    reach a lower loss with a large lr early and a small one at the end
    """
    # --- check the arguments before any work, so a typo fails at once ----------------------
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function loss_fn(model, batch) -> scalar tensor, "
                        f"got {type(loss_fn).__name__}")
    _check_positive_int("steps", steps)
    if optimizer is None:
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (0 < lr < math.inf):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) \
                or not (0 <= weight_decay < math.inf):
            raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if clip_grad_norm is not None and (isinstance(clip_grad_norm, bool)
                                       or not isinstance(clip_grad_norm, numbers.Real)
                                       or not (0 < clip_grad_norm < math.inf)):
        raise ValueError(f"clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be a function eval_fn(model) -> dict or None, "
                        f"got {type(eval_fn).__name__}")
    _check_positive_int("eval_every", eval_every, allow_none=True)
    if eval_every is not None and eval_fn is None:
        raise ValueError(f"eval_every={eval_every} needs an eval_fn to call, got eval_fn=None")
    _check_positive_int("plot_every", plot_every)
    if live_plot is not None and not isinstance(live_plot, (bool, LiveLossPlot)):
        raise TypeError(f"live_plot must be None, True, False or a LiveLossPlot, got {live_plot!r}")
    if checkpoint_path is not None and not isinstance(checkpoint_path, (str, os.PathLike)):
        raise TypeError(f"checkpoint_path must be a str or a path, got {type(checkpoint_path).__name__}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    source = _BatchSource(batches)

    # --- set up ------------------------------------------------------------------------------
    if seed is not None:
        set_seed(seed)
    if device is not None:
        device = torch.device(device)
        model.to(device)
    else:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters (requires_grad=True): nothing to train")
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    current_lr = optimizer.param_groups[0]["lr"]  # for error messages
    scheduler = None
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, steps))

    plot = None
    if isinstance(live_plot, LiveLossPlot):
        plot = live_plot
    elif live_plot or (live_plot is None and in_notebook()):
        plot = LiveLossPlot(title=desc)

    from tqdm.auto import tqdm

    history = History()
    was_training = model.training
    model.train()
    bar = tqdm(total=steps, desc=desc, disable=not progress)
    start = time.perf_counter()
    try:
        smoothed = None
        for step in range(steps):
            batch = _to_device(source.get(step), device)
            loss = loss_fn(model, batch)
            value = _check_loss(loss, step, current_lr)

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                # One bad batch must not throw the weights far away: cap the update size.
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

            history.steps.append(step)
            history.losses.append(value)
            smoothed = value if smoothed is None else EMA_BETA * smoothed + (1 - EMA_BETA) * value

            done = step + 1  # optimizer updates so far
            if eval_fn is not None and (done == steps or (eval_every and done % eval_every == 0)):
                history.evals.append(_evaluate(model, eval_fn, done))
            postfix = {"loss": f"{smoothed:.4f}"}
            postfix.update({k: f"{v:.4g}" for k, v in (history.last_eval() or {}).items() if k != "step"})
            bar.set_postfix(postfix, refresh=False)  # drawn by update(), at tqdm's own pace
            bar.update(1)
            if plot is not None and (done % plot_every == 0 or done == steps):
                plot.update(history.steps, history.losses, history.evals)
    finally:
        history.seconds = time.perf_counter() - start
        bar.close()
        model.train(was_training)
        if plot is not None and plot is not live_plot:
            plot.close()  # a plot we made ourselves; the picture in the notebook stays

    if progress:
        # One plain line that stays readable where the progress bar widget is not (e.g. on GitHub).
        last = {k: v for k, v in (history.last_eval() or {}).items() if k != "step"}
        extra = "".join(f", {k} {v:.4g}" for k, v in last.items())
        print(f"{desc}: {steps} steps in {history.seconds:.1f} s, loss {smoothed:.4f}{extra}")

    if checkpoint_path is not None:
        # The history goes along, so a notebook can load the checkpoint and still plot the curve.
        save_checkpoint(checkpoint_path, model, optimizer=optimizer, step=steps,
                        extra={"history": asdict(history)})
    return history


# -----------------------------------------------------------------------------
# checkpoints


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, not a course checkpoint, or made for
    a different model. The message says which file and what is wrong."""


_PLAIN_SCALARS = (type(None), bool, int, float, str)


def _check_plain(value, where: str):
    """Raise TypeError unless ``value`` is plain data: None, bool, int, float, str, and
    lists / tuples / dicts (with str or int keys) of them, nested freely.

    Exact types are checked on purpose: numpy.float64 is a subclass of float, yet it would
    be pickled as a numpy object, which ``torch.load(weights_only=True)`` refuses.
    """
    if type(value) in _PLAIN_SCALARS:
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "keys must be str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__name__}; a checkpoint's extra may "
        "only hold plain Python values (str, int, float, bool, None, and lists / dicts of them) "
        "so that it loads with weights_only=True. Convert it first, e.g. tensor.tolist() or float(x)")


def save_checkpoint(path, model, *, optimizer=None, step=None, extra: dict | None = None) -> Path:
    """Save model (and optimizer) state to ``path``; return the path.

    model:     nn.Module, its state_dict is saved
    optimizer: optional torch.optim.Optimizer, its state_dict is saved (to resume training)
    step:      optional int, e.g. the number of optimizer updates done
    extra:     optional dict of plain Python values (str, int, float, bool, None, lists and
               dicts of them): hyperparameters, the loss history, ...

    The file holds only tensors and plain data, so ``torch.load(path, weights_only=True)``
    reads it. The write is atomic: the data goes to a temporary file in the same folder,
    which then replaces ``path`` in one step, so an interrupted save never damages an
    existing checkpoint. Parent folders are created.
    """
    path = Path(path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise TypeError(f"step must be an int or None, got {step!r}")
    if extra is None:
        extra = {}
    if type(extra) is not dict:
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    _check_plain(extra, "extra")

    content = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step) if step is not None else None,
        "extra": extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(content, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the file gets its real name
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave a half-written file around
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _shape(value):
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _state_dict_problems(expected: dict, found: dict) -> list[str]:
    """One line per key that differs between the model's state_dict and the file's."""
    problems = []
    for key, value in expected.items():
        if key not in found:
            problems.append(f"'{key}': missing from the file (the model expects shape {_shape(value)})")
        elif isinstance(value, torch.Tensor) and _shape(found[key]) != _shape(value):
            problems.append(f"'{key}': the model expects shape {_shape(value)}, "
                            f"the file has {_shape(found[key])}")
    for key, value in found.items():
        if key not in expected:
            problems.append(f"'{key}': in the file but not in the model (shape {_shape(value)})")
    return problems


def load_checkpoint(path, model, *, optimizer=None, map_location="cpu") -> dict:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    Returns ``{"step": int or None, "extra": dict}``.

    Raises FileNotFoundError when there is no file at ``path``, and CheckpointError when
    the file is damaged, is not a course checkpoint, or does not match the model (the
    message lists the keys that differ). The model is only changed when everything fits.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: run the training cell first "
                                "(it saves the checkpoint), or check the path")
    rerun = "Delete it and re-run the training cell to write a fresh checkpoint."
    try:
        with warnings.catch_warnings():
            # A pickle that is not a PyTorch file makes torch warn about its protocol before
            # failing; the CheckpointError below says what matters.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        # The original error is chained below; the message here says it in plain words.
        if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e):
            what = ("it contains Python objects other than tensors and plain data, which are "
                    "refused because loading them could run arbitrary code")
        else:
            what = (f"the file is damaged, cut off, or not a checkpoint written by "
                    f"save_checkpoint ({type(e).__name__})")
        raise CheckpointError(f"cannot read the checkpoint {path}: {what}. {rerun}") from e

    if not isinstance(content, dict) or "format" not in content:
        raise CheckpointError(f"{path} is not a course checkpoint: it holds a "
                              f"{type(content).__name__}, not the dict save_checkpoint writes. {rerun}")
    if content["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has format {content['format']!r}, expected "
                              f"{CHECKPOINT_FORMAT!r} (written by another version?). {rerun}")
    if not isinstance(content.get("model"), dict):
        raise CheckpointError(f"{path} has no model state. {rerun}")

    problems = _state_dict_problems(model.state_dict(), content["model"])
    if problems:
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise CheckpointError(
            f"the checkpoint {path} does not fit this model ({len(problems)} differences):\n  "
            + "\n  ".join(problems[:5]) + more
            + "\nBuild the model with the same sizes as when it was saved, or re-run the training cell.")

    # The optimizer first: if its state does not fit, the model is still untouched.
    if optimizer is not None:
        if content.get("optimizer") is None:
            raise CheckpointError(f"the checkpoint {path} has no optimizer state "
                                  "(it was saved without optimizer=); load it without optimizer=")
        try:
            optimizer.load_state_dict(content["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"the optimizer state in {path} does not fit this optimizer: {e}. "
                                  "Build the optimizer over the same parameters, or re-run the training cell.") from e
    try:
        model.load_state_dict(content["model"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"the checkpoint {path} does not fit this model: {e}") from e
    return {"step": content.get("step"), "extra": content.get("extra") or {}}
