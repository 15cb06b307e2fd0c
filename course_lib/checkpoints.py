"""Safe checkpoints: save and load model (and optimizer) state.

    save_checkpoint("runs/gpt.pt", model, optimizer=optimizer, step=600, extra={"lr": 3e-3})
    info = load_checkpoint("runs/gpt.pt", model, optimizer=optimizer)   # {"step": 600, "extra": {...}}

Writes are atomic (a crash never leaves half a file behind) and reads use
``torch.load(..., weights_only=True)``, so loading a file never runs code from it. A file that
cannot be used raises ``CheckpointError`` naming the file and what is wrong.
"""

import numbers
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from ._checks import shape_of

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "course_lib.checkpoint/1"  # the "format" entry of every file; load refuses others


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


def _describe(value) -> str:
    """A state_dict entry's shape, ``(3, 4)``, or its type for the rare non-tensor entry."""
    return shape_of(value) if isinstance(value, torch.Tensor) else type(value).__name__


def _state_dict_problems(expected: dict, found: dict) -> list[str]:
    """One line per key that differs between the model's state_dict and the file's."""
    problems = []
    for key, value in expected.items():
        if key not in found:
            problems.append(f"'{key}': missing from the file (the model expects shape {_describe(value)})")
        elif isinstance(value, torch.Tensor) and _describe(found[key]) != _describe(value):
            problems.append(f"'{key}': the model expects shape {_describe(value)}, "
                            f"the file has {_describe(found[key])}")
    for key, value in found.items():
        if key not in expected:
            problems.append(f"'{key}': in the file but not in the model (shape {_describe(value)})")
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
