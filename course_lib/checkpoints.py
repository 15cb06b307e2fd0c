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
import pickletools
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ._checks import check_device, check_writable_path, shape_of

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "course_lib.checkpoint/1"  # the "format" entry of every file; load refuses others


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, not a course checkpoint, or made for
    a different model. The message says which file and what is wrong."""


_PLAIN_SCALARS = (type(None), bool, int, float, str)


def _check_plain(value, where: str, inside: tuple = ()):
    """Raise TypeError unless ``value`` is plain data: None, bool, int, float, str, and
    lists / tuples / dicts (with str or int keys) of them, nested freely (a list that holds
    itself is refused: ``ValueError``).

    Exact types are checked on purpose: numpy.float64 is a subclass of float, yet it would
    be pickled as a numpy object, which ``torch.load(weights_only=True)`` refuses.
    """
    if type(value) in _PLAIN_SCALARS:
        return
    if type(value) in (list, tuple, dict):
        if id(value) in inside:
            raise ValueError(f"{where} holds itself (a list or dict inside itself); a checkpoint's extra "
                             "must be a tree of plain values")
        inside = inside + (id(value),)
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", inside)
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "keys must be str or int")
            _check_plain(item, f"{where}[{key!r}]", inside)
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

    Refused before anything is written: a path that is a folder or lies under a file, a model
    that is not an ``nn.Module`` (a state_dict, say), a negative step, an ``extra`` that is not
    plain data. A folder that cannot be created or written raises ``OSError`` naming the path.
    """
    path = check_writable_path("path", path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}"
                        + (" (pass the model itself, not its state_dict)" if isinstance(model, dict) else ""))
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise TypeError(f"step must be an int or None, got {step!r}")
    if step is not None and step < 0:
        raise ValueError(f"step must be an int >= 0 (the number of updates done) or None, got {step!r}")
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the target: os.replace is only atomic within one file system.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    except OSError as e:
        raise OSError(e.errno, f"cannot write the checkpoint path={str(path)!r}: {e.strerror}") from e
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


# Module prefixes whose globals a plain (non-zip) PyTorch pickle names for its tensors; any other
# global in a refused plain pickle is an object that would have been built, or code run.
_TORCH_PICKLE_MODULES = ("torch.", "collections.OrderedDict")


def _pickle_globals(f) -> list[str]:
    """The globals (``module.name``) one pickle in the open file ``f`` would import, read
    statically with ``pickletools`` (nothing is imported or run); ``ValueError`` when the bytes
    are not a complete pickle."""
    found, memo, count = [], {}, 0
    strings, top = [], None  # the strings pushed so far (STACK_GLOBAL takes the last two); the top one
    for op, arg, _ in pickletools.genops(f):
        if op.name in ("GLOBAL", "INST"):
            found.append(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(f"{strings[-2]}.{strings[-1]}")
        if op.name == "MEMOIZE":  # these leave the stack as it is
            memo[count], count = top, count + 1
            continue
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = top
            continue
        if op.name in ("GET", "BINGET", "LONG_BINGET"):
            top = memo.get(arg)
        else:
            top = arg if isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name) else None
        if top is not None:
            strings.append(top)
    return found


def _unsafe_globals(path: Path) -> list[str]:
    """The Python objects (``module.name``) a file names that ``torch.load(weights_only=True)``
    refuses to build, found without unpickling anything; [] when there are none or the file
    cannot be read as a pickle (then it is damaged rather than unsafe)."""
    found = []
    try:
        if zipfile.is_zipfile(path):  # what torch.save writes
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        with open(path, "rb") as f:  # a plain pickle, or torch's legacy format: a few pickles in a row
            for _ in range(8):
                found += _pickle_globals(f)
    except Exception:
        pass  # the end of the pickles (or no pickle at all): keep what was read completely
    return sorted({g for g in found if not g.startswith(_TORCH_PICKLE_MODULES)})


def _readable_on_cpu(path: Path) -> bool:
    """Whether ``torch.load(path, map_location="cpu", weights_only=True)`` succeeds."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:
        return False


def load_checkpoint(path, model, *, optimizer=None, map_location="cpu") -> dict:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    map_location: where the file's tensors are read to before they are copied into the
                  model: "cpu" (default), "cuda", "cuda:<index>" or "mps", a device this
                  machine has (a str or a torch.device), or None (where they were saved)

    Returns ``{"step": int or None, "extra": dict}``.

    Raises TypeError for a path, model, optimizer or map_location of the wrong type,
    ValueError for a map_location this machine does not have or a path that is a folder,
    FileNotFoundError when there is no file at ``path``, and CheckpointError when the file
    is damaged, is not a course checkpoint, holds Python objects other than tensors and
    plain data (refused without running anything), or does not match the model (the
    message lists the keys that differ). The model is only changed when everything fits.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a pathlib.Path naming a checkpoint file, "
                        f"got {type(path).__name__} {path!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}"
                        + (" (pass the model itself, not a state_dict)" if isinstance(model, dict) else ""))
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    device = None if map_location is None else check_device("map_location", map_location)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path={str(path)!r} is a folder, not a checkpoint file: name the file inside it")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: run the training cell first "
                                "(it saves the checkpoint), or check the path")
    rerun = "Delete it and re-run the training cell to write a fresh checkpoint."
    try:
        with warnings.catch_warnings():
            # A pickle that is not a PyTorch file makes torch warn about its protocol before
            # failing; the CheckpointError below says what matters.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            content = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        # The original error is chained below; the message here says it in plain words.
        # torch refuses a disallowed global with pickle.UnpicklingError, as it refuses some
        # damaged bytes: the file itself, read statically, tells which it was.
        unsafe = _unsafe_globals(path) if isinstance(e, pickle.UnpicklingError) else []
        if device is None and not unsafe and _readable_on_cpu(path):
            raise ValueError(f"the checkpoint {path} holds tensors saved on a device this machine does not have "
                             "(a GPU?) and map_location=None keeps them there: "
                             "load it with map_location='cpu'") from e
        if unsafe:
            more = f" and {len(unsafe) - 3} more" if len(unsafe) > 3 else ""
            what = (f"it contains Python objects other than tensors and plain data ({', '.join(unsafe[:3])}{more}), "
                    "which are refused because loading them could run arbitrary code")
        else:
            what = (f"the file is damaged, cut off, or not a checkpoint written by "
                    f"save_checkpoint ({type(e).__name__})")
        raise CheckpointError(f"cannot read the checkpoint {path}: {what}. {rerun}") from e

    if not isinstance(content, dict) or "format" not in content:
        raise CheckpointError(f"{path} is not a course checkpoint: it holds a "
                              f"{type(content).__name__}, not the dict save_checkpoint writes. {rerun}")
    if not isinstance(content["format"], str) or content["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has format {content['format']!r}, expected "
                              f"{CHECKPOINT_FORMAT!r} (written by another version?). {rerun}")
    if not isinstance(content.get("model"), dict):
        raise CheckpointError(f"{path} has no model state. {rerun}")
    step, extra = content.get("step"), content.get("extra")
    if not (step is None or type(step) is int) or not (extra is None or type(extra) is dict):
        raise CheckpointError(f"{path} has a step or extra that save_checkpoint does not write. {rerun}")

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
        except Exception as e:  # the file's content, whatever it holds, must not leak a deep error
            raise CheckpointError(f"the optimizer state in {path} does not fit this optimizer: {e}. "
                                  "Build the optimizer over the same parameters, or re-run the training cell.") from e
    try:
        model.load_state_dict(content["model"], strict=True)
    except Exception as e:
        raise CheckpointError(f"the checkpoint {path} does not fit this model: {e}") from e
    return {"step": content.get("step"), "extra": content.get("extra") or {}}
