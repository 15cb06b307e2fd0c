"""The one training loop of the course: seeds, devices, the loop, its history.

    history = train(model, batches, loss_fn, steps=500, lr=3e-3, eval_fn=evaluate, eval_every=100)

- ``train`` runs ``steps`` optimizer updates. Each step draws a batch, moves it to the
  model's device, computes ``loss_fn(model, batch)``, backpropagates, clips the gradient
  norm and updates. It shows a progress bar and, inside a notebook, a live loss curve
  (``viz.LiveLossPlot``); with ``checkpoint_path`` it saves a checkpoint at the end
  (``checkpoints.save_checkpoint``).
- ``History`` is what ``train`` returns: every training loss and every evaluation.
- ``set_seed``, ``get_device`` / ``default_device`` (the environment variable ``COURSE_DEVICE``
  overrides its choice), ``evaluating(model)``, ``cosine_factor``: the pieces around it.

Step numbering: a step index is the number of optimizer updates the model had received
when the value was measured. The training loss of step ``s`` (``s = 0 .. steps-1``) is
computed just before update ``s+1``; an evaluation recorded with ``"step": s`` ran after
``s`` updates. So both sit on the same x axis, and the final evaluation has ``"step": steps``.
"""

import contextlib
import inspect
import math
import numbers
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_bool, check_device, check_positive_int, check_probability, check_writable_path
from .batching import to_device
from .checkpoints import save_checkpoint
from .viz import EMA_BETA, LiveLossPlot, in_notebook

__all__ = ["set_seed", "default_device", "get_device", "evaluating", "History", "cosine_factor", "train"]


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


DEVICE_VARIABLE = "COURSE_DEVICE"  # the environment variable that overrides get_device()'s choice


def get_device() -> torch.device:
    """The device the course's models and batches go to: ``COURSE_DEVICE`` if set, else the
    best one this machine has: ``cuda`` (an NVIDIA GPU), else ``mps`` (Apple silicon's GPU),
    else ``cpu``.

        device = get_device()
        model = MyModel().to(device)            # the parameters move once
        x = x.to(device)                        # every batch follows them

    Set the environment variable ``COURSE_DEVICE`` to choose yourself, e.g. ``cpu`` to force the
    CPU on a machine with a GPU (``COURSE_DEVICE=cpu jupyter lab`` in a Linux or macOS shell,
    ``$env:COURSE_DEVICE = "cpu"`` in PowerShell, ``set COURSE_DEVICE=cpu`` in cmd), or
    ``cuda:1`` for a second GPU. It must name a device this machine has (checked like every
    ``device`` argument of the course); anything else raises ``ValueError`` naming the
    variable. An empty value counts as not set. It is read at every call, so
    ``os.environ["COURSE_DEVICE"] = "cpu"`` in a notebook works from the next call on.

    Why MPS is picked: on a Mac with Apple silicon the GPU is often much faster for the larger
    models (a learner's laptop has no NVIDIA GPU). What may differ there: a few operations are
    missing (set ``PYTORCH_ENABLE_MPS_FALLBACK=1`` to run them on the CPU), float64 is not
    supported, the last digits of results differ from the CPU's (different kernels, like on a
    GPU), and tiny models can be slower than on the CPU (each operation costs a GPU launch).
    The course never needs a GPU: every result a notebook asserts holds on the CPU; if
    something fails on MPS or CUDA, ``COURSE_DEVICE=cpu`` is the way back.

    ``default_device`` is the same function under the name the library used first.
    """
    value = os.environ.get(DEVICE_VARIABLE, "").strip()
    if value:
        try:
            return check_device(DEVICE_VARIABLE, value)
        except ValueError as e:
            raise ValueError(f"the environment variable {DEVICE_VARIABLE}={value!r} does not name a device this "
                             f"machine can use ({e}). Set it to 'cpu', 'cuda', 'cuda:<index>' or 'mps', or unset "
                             "it to let get_device() choose") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# one function, two names: the library's first name for it, still used by tests and notebooks
default_device = get_device


def evaluating(model: nn.Module):
    """Switch ``model`` to eval mode (dropout off) inside a ``with`` block, then back.

        with evaluating(model), torch.no_grad():
            logits, _ = model(idx)

    The mode the model had before is restored even when the block raises, so a helper
    that only looks at a model never leaves it in eval mode for the training that follows.
    Anything but an ``nn.Module`` raises ``TypeError`` at the call.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return _evaluating(model)


@contextlib.contextmanager
def _evaluating(model: nn.Module):
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
    seconds: float, wall-clock time of the whole run, evaluations included
    eval_seconds: float, the part of ``seconds`` spent in ``eval_fn`` (so the training alone
             took ``seconds - eval_seconds``: see ``train_seconds``)
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    eval_seconds: float = 0.0

    @property
    def train_seconds(self) -> float:
        """Wall-clock time of the training steps alone: ``seconds`` less the evaluations."""
        return self.seconds - self.eval_seconds

    def last_eval(self) -> dict | None:
        """The most recent evaluation, or None when ``eval_fn`` was never called."""
        return self.evals[-1] if self.evals else None


# -----------------------------------------------------------------------------
# the training loop


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
        if isinstance(batches, (str, bytes)):
            raise TypeError("batches must be an iterable of batches or a callable batches(step), "
                            f"got a {type(batches).__name__} {batches[:40]!r} (iterating it would give its characters)")
        if isinstance(batches, Iterable):
            self.iterable, self.function = batches, None
        elif callable(batches):
            _check_arity("batches", batches, 1, "batches(step) -> batch")
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


def _check_arity(name: str, fn, n: int, usage: str) -> None:
    """``fn`` must accept ``n`` positional arguments (``usage`` shows the call), checked before any work."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some built-ins have no signature: they will tell at the call
        return
    try:
        signature.bind(*range(n))
    except TypeError:
        what = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(f"{name} must be a function {usage}, called with {n} argument{'s' * (n > 1)}; "
                        f"got {what}{signature}") from None


def _nonfinite(batch, where: str = "batch") -> str | None:
    """Where a (nested) batch holds nan or inf, e.g. "batch[0]", or None."""
    if isinstance(batch, torch.Tensor):
        if (batch.is_floating_point() or batch.is_complex()) and batch.device.type != "meta" \
                and not torch.isfinite(batch).all():
            return where
        return None
    if isinstance(batch, Mapping):
        items = batch.items()
    elif isinstance(batch, (tuple, list)):
        items = enumerate(batch)
    else:
        return None
    for key, value in items:
        found = _nonfinite(value, f"{where}[{key!r}]")
        if found:
            return found
    return None


def _check_loss(loss, step: int, lr: float, batch=None) -> float:
    """Check what loss_fn returned; return its value as a Python float."""
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__} {loss!r} "
                        f"at step {step}")
    if loss.ndim != 0:
        raise ValueError(f"loss_fn must return a scalar tensor (shape ()), got a tensor of shape "
                         f"{tuple(loss.shape)} at step {step}; reduce it, e.g. with .mean()")
    if not loss.is_floating_point():
        raise TypeError(f"loss_fn must return a real floating-point scalar tensor, got dtype {loss.dtype} "
                        f"at step {step}")
    if loss.device.type == "meta":
        raise ValueError(f"loss_fn returned a tensor on the meta device (no numbers) at step {step}")
    if not loss.requires_grad:
        raise ValueError(f"loss_fn returned a tensor that does not require grad at step {step}, "
                         "so there is nothing to train: was it computed under torch.no_grad(), "
                         "detached, or converted from a Python number?")
    value = loss.item()
    if not math.isfinite(value):
        bad = _nonfinite(batch)
        if bad is not None:
            raise FloatingPointError(f"the loss is {value} at step {step}: the batch itself holds nan or inf "
                                     f"(in {bad}); clean the data first")
        if step == 0:
            raise FloatingPointError(f"the loss is {value} at step 0, before any update: the model's output or "
                                     "loss_fn gives nan or inf on finite data (a division by zero? a log of 0?)")
        raise FloatingPointError(
            f"the loss is {value} at step {step}: training diverged. "
            f"Try a lower learning rate (lr={lr:g} now), or keep clip_grad_norm on")
    return value


def _evaluate(model: nn.Module, eval_fn, step: int) -> dict:
    """Call eval_fn(model) in eval mode without gradients; return {"step": step, **metrics}."""
    with evaluating(model), torch.no_grad():  # dropout off, etc.
        metrics = eval_fn(model)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"eval_fn must return a dict of metric name -> number, "
                        f"got {type(metrics).__name__} {metrics!r}")
    if "step" in metrics:
        raise ValueError("eval_fn must not return a metric named 'step' (train records the step itself)")
    record = {"step": step}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"eval_fn must return a dict with str metric names, got the name {name!r}")
        try:
            record[name] = float(value)  # accepts numbers and one-element tensors
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"eval_fn returned {name}={value!r}; every metric must be a number") from None
        if math.isnan(record[name]):
            raise ValueError(f"eval_fn returned {name}=nan at step {step}; every metric must be a number, not nan "
                             "(a mean over nothing? a model that diverged?)")
    return record


def cosine_factor(step: int, steps: int, warmup: float = 0.05, final: float = 0.1) -> float:
    """Learning-rate multiplier at ``step`` of ``steps``: linear warm-up, then cosine decay to ``final``.

    step: int >= 0 (past ``steps`` the factor stays ``final``); steps: int > 0; warmup: the share
    of the steps spent warming up, in [0, 1]; final: the last factor, a number >= 0.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    check_positive_int("steps", steps)
    check_probability("warmup", warmup, upper_inclusive=True)
    if isinstance(final, bool) or not isinstance(final, numbers.Real) or not 0 <= final < math.inf:
        raise ValueError(f"final must be a number >= 0, got {final!r}")
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
                    When given ("cpu", "cuda", "cuda:<index>" or "mps", a str or a
                    torch.device), the model is moved there too; a GPU this machine does
                    not have raises ValueError (the course never needs one)
    live_plot:      None (a live loss curve only inside a notebook), True, False, or a
                    LiveLossPlot to draw into (e.g. one built with a ``floor``)
    plot_every:     int, the live plot is redrawn every ``plot_every`` steps and at the end
    progress:       bool, show a tqdm progress bar
    desc:           str, label of the progress bar and title of the live plot
    checkpoint_path: optional path; at the end the model, optimizer, step, history and the
                    random states are saved there with save_checkpoint (resume with
                    load_checkpoint(..., restore_rng=True) and train(..., seed=None))
    schedule:       "constant" (lr throughout) or "cosine" (warm up linearly over the first
                    5% of the steps, then decay along a cosine to 0.1 * lr): short runs
                    reach a lower loss with a large lr early and a small one at the end

    Every argument is checked before the first step (checkpoint_path too, so a bad path
    does not fail after the training): a wrong type raises TypeError, a wrong value
    ValueError, each naming the argument. During the run, what loss_fn and eval_fn return
    is checked the same way, and a loss that is nan or inf raises FloatingPointError
    naming the step (and the entry of the batch that holds nan or inf, if one does).
    """
    # --- check the arguments before any work, so a typo fails at once ----------------------
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function loss_fn(model, batch) -> scalar tensor, "
                        f"got {type(loss_fn).__name__}")
    _check_arity("loss_fn", loss_fn, 2, "loss_fn(model, batch) -> scalar tensor")
    check_positive_int("steps", steps)
    if optimizer is None:
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (0 < lr < math.inf):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) \
                or not (0 <= weight_decay < math.inf):
            raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    elif not {id(p) for group in optimizer.param_groups for p in group["params"]} \
            & {id(p) for p in model.parameters()}:
        raise ValueError("optimizer updates none of model's parameters (was it built for another model?): "
                         "build it with torch.optim.AdamW(model.parameters(), lr=...)")
    if clip_grad_norm is not None and (isinstance(clip_grad_norm, bool)
                                       or not isinstance(clip_grad_norm, numbers.Real)
                                       or not (0 < clip_grad_norm < math.inf)):
        raise ValueError(f"clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be a function eval_fn(model) -> dict or None, "
                        f"got {type(eval_fn).__name__}")
    if eval_fn is not None:
        _check_arity("eval_fn", eval_fn, 1, "eval_fn(model) -> dict")
    check_positive_int("eval_every", eval_every, allow_none=True)
    if eval_every is not None and eval_fn is None:
        raise ValueError(f"eval_every={eval_every} needs an eval_fn to call, got eval_fn=None")
    check_positive_int("plot_every", plot_every)
    if live_plot is not None and not isinstance(live_plot, (bool, LiveLossPlot)):
        raise TypeError(f"live_plot must be None, True, False or a LiveLossPlot, got {live_plot!r}")
    check_bool("progress", progress)
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a str (the progress bar's label), got {type(desc).__name__} {desc!r}")
    if checkpoint_path is not None:
        check_writable_path("checkpoint_path", checkpoint_path)  # before the training, not after it
    if not isinstance(schedule, str) or schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed < 2**32):
        raise ValueError(f"seed must be an int between 0 and 2**32 - 1, or None, got {seed!r}")
    move = device is not None
    if move:
        device = check_device("device", device)
    else:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        if device.type == "meta":
            raise ValueError("model's parameters are on the meta device (shapes without numbers): "
                             "build the model on 'cpu', or pass device='cpu'")
    source = _BatchSource(batches)

    # --- set up ------------------------------------------------------------------------------
    if seed is not None:
        set_seed(seed)
    if move:
        model.to(device)
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

    history = History()
    was_training = model.training
    model.train()
    bar = tqdm(total=steps, desc=desc, disable=not progress)
    start = time.perf_counter()
    try:
        smoothed = None
        for step in range(steps):
            batch = to_device(source.get(step), device)
            loss = loss_fn(model, batch)
            value = _check_loss(loss, step, current_lr, batch)

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
                eval_start = time.perf_counter()
                history.evals.append(_evaluate(model, eval_fn, done))
                history.eval_seconds += time.perf_counter() - eval_start
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
