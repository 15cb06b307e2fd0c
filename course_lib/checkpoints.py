"""Safe checkpoints: save and load model (and optimizer) state, and the random states.

    save_checkpoint("runs/gpt.pt", model, optimizer=optimizer, step=600, extra={"lr": 3e-3})
    info = load_checkpoint("runs/gpt.pt", model, optimizer=optimizer)   # {"step": 600, "extra": {...}}

To resume a run exactly, bit for bit, also restore the random states the file holds (the
random numbers decide dropout masks and batch order, so they are part of "where the run was"):

    save_checkpoint(path, model, optimizer=optimizer, step=20, generators={"order": g})
    info = load_checkpoint(path, model, optimizer=optimizer, restore_rng=True, generators={"order": g})

Writes are atomic (a crash never leaves half a file behind) and reads use
``torch.load(..., weights_only=True)``, so loading a file never runs code from it. A file that
cannot be used raises ``CheckpointError`` naming the file and what is wrong.

Models are also saved in the Hugging Face layout, a folder with config.json + model.safetensors
(``GPT.save_hf_gpt2``, ``BertForPreTraining.save_pretrained``): ``save_model_folder`` writes one
with ``write_files_atomically`` (every file whole, or the old ones left as they were).
"""

import json
import numbers
import os
import pathlib
import pickle
import pickletools
import random
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import safetensors.torch  # save_file, looked up at call time (tests replace it to simulate a failed write)
import torch
from torch import nn

from ._checks import check_bool, check_device, check_writable_path, shape_of

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint",
           "rng_state", "set_rng_state", "check_model_folder", "save_model_folder", "write_files_atomically"]

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


# -----------------------------------------------------------------------------
# random states


def _check_generators(generators) -> dict:
    """``generators`` must be None or a dict from str names to torch.Generator; returns a dict."""
    if generators is None:
        return {}
    if type(generators) is not dict:
        raise TypeError(f"generators must be a dict of names to torch.Generator objects, e.g. "
                        f"{{'loader': g}}, or None, got {type(generators).__name__}")
    for name, g in generators.items():
        if type(name) is not str:
            raise TypeError(f"generators has a key {name!r} of type {type(name).__name__}; keys must be str names")
        if not isinstance(g, torch.Generator):
            raise TypeError(f"generators[{name!r}] must be a torch.Generator, got {type(g).__name__}")
    return generators


def rng_state(generators: dict | None = None) -> dict:
    """The random states a training run depends on, as tensors and plain data.

    generators: optional dict ``{name: torch.Generator}``, e.g. ``{"loader": g}`` for the
                generator a ``DataLoader(shuffle=True, generator=g)`` draws its order from

    Returns a dict that ``torch.load(weights_only=True)`` can read back:

    - ``"python"``: Python's ``random`` (``{"version": int, "state": int64 tensor (625,),
      "gauss_next": float or None}``)
    - ``"numpy"``: NumPy's global ``np.random`` (``{"name": "MT19937", "keys": int64 tensor
      (624,), "pos": int, "has_gauss": int, "cached_gaussian": float}``); generators made with
      ``np.random.default_rng()`` are separate objects and not included
    - ``"torch"``: torch's CPU random state, uint8 tensor (5056,) (dropout on the CPU,
      ``torch.randint``, ``torch.randn``, weight initialisation)
    - ``"cuda"``: list with one uint8 tensor per GPU, ``[]`` when CUDA has not been used in
      this process (asking would start CUDA, slowly, for nothing)
    - ``"mps"``: uint8 tensor, Apple's GPU random state, or None where there is no MPS
    - ``"generators"``: ``{name: uint8 tensor}``, the state of each generator passed

    ``set_rng_state`` puts them back.
    """
    generators = _check_generators(generators)
    py_version, py_state, gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    mps = torch.mps.get_rng_state().cpu() if torch.backends.mps.is_available() else None
    return {
        # Python's and NumPy's states are tuples holding ints and a uint32 array, which a
        # weights_only load refuses as objects: they go in as int64 tensors and plain values.
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": None if gauss_next is None else float(gauss_next)},
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_cached)},
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "mps": mps,
        "generators": {name: g.get_state() for name, g in generators.items()},
    }


class _BadState(Exception):
    """A random state that cannot be restored; the message says which part and why."""


def _uint8_vector(value, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
        raise _BadState(f"{where} must be a 1-D uint8 tensor, got "
                        + (f"dtype {value.dtype}, shape {shape_of(value)}" if isinstance(value, torch.Tensor)
                           else type(value).__name__))
    return value.cpu()  # torch sets random states only from CPU tensors (map_location may say otherwise)


def _prepared(state, generators: dict) -> dict:
    """Check ``state`` (what ``rng_state`` returns) against this machine and ``generators``
    without changing any random state: each part is tried on a throwaway generator first.
    Returns the values ready to set; raises _BadState naming what does not fit."""
    if not isinstance(state, dict) or not {"python", "numpy", "torch"} <= set(state):
        raise _BadState("the random states must be a dict with 'python', 'numpy' and 'torch' entries "
                        "(what rng_state() returns)")
    ready = {}
    py = state["python"]
    try:
        if py["state"].dtype != torch.int64:
            raise TypeError(f"state has dtype {py['state'].dtype}, not torch.int64")
        py_state = tuple(int(v) for v in py["state"].tolist())
        ready["python"] = (py["version"], py_state, py["gauss_next"])
        random.Random().setstate(ready["python"])
    except Exception as e:
        raise _BadState(f"Python's random state does not fit ({type(e).__name__}: {e})") from None
    npy = state["numpy"]
    try:
        if npy["keys"].dtype != torch.int64:
            raise TypeError(f"keys have dtype {npy['keys'].dtype}, not torch.int64")
        keys = npy["keys"].cpu().numpy()
        if keys.min(initial=0) < 0 or keys.max(initial=0) >= 2**32:
            raise ValueError("keys outside 0 .. 2**32 - 1")
        ready["numpy"] = (npy["name"], keys.astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
        np.random.RandomState().set_state(ready["numpy"])
    except Exception as e:
        raise _BadState(f"NumPy's random state does not fit ({type(e).__name__}: {e})") from None
    ready["torch"] = _uint8_vector(state["torch"], "torch's CPU random state")
    try:
        torch.Generator().set_state(ready["torch"])
    except Exception as e:
        raise _BadState(f"torch's CPU random state does not fit ({type(e).__name__})") from None
    cuda = state.get("cuda") or []
    if not isinstance(cuda, (list, tuple)):
        raise _BadState(f"the CUDA random states must be a list of tensors, got {type(cuda).__name__}")
    ready["cuda"] = [_uint8_vector(s, f"the random state of GPU {i}") for i, s in enumerate(cuda)]
    mps = state.get("mps")
    ready["mps"] = None if mps is None else _uint8_vector(mps, "Apple's GPU (mps) random state")

    saved = state.get("generators") or {}
    if not isinstance(saved, dict):
        raise _BadState(f"the generators' states must be a dict, got {type(saved).__name__}")
    missing, unused = sorted(set(generators) - set(saved)), sorted(set(saved) - set(generators))
    if missing:
        raise _BadState(f"generators names {missing}, but the states saved are for {sorted(saved)}: "
                        "pass the same names as when it was saved")
    if unused:
        # Restoring only part of the randomness would resume inexactly without a word.
        raise _BadState(f"the states of generators {unused} were saved too: pass them, e.g. "
                        f"generators={{{unused[0]!r}: g}}, so that they continue where they stopped")
    ready["generators"] = {}
    for name, g in generators.items():
        value = _uint8_vector(saved[name], f"the state of generator {name!r}")
        if value.numel() != g.get_state().numel():
            raise _BadState(f"the state saved for generator {name!r} has {value.numel()} bytes, but the "
                            f"generator passed ({g.device}) has {g.get_state().numel()}: pass a generator "
                            "of the same kind (device) as when it was saved")
        try:
            torch.Generator(device=g.device).set_state(value)
        except Exception as e:
            raise _BadState(f"the state saved for generator {name!r} does not fit it ({type(e).__name__})") from None
        ready["generators"][name] = value
    return ready


def _apply(ready: dict, generators: dict) -> None:
    """Set every random state from ``_prepared``'s values (which are known to fit)."""
    random.setstate(ready["python"])
    np.random.set_state(ready["numpy"])
    torch.set_rng_state(ready["torch"])
    if ready["cuda"]:
        if torch.cuda.is_available():
            for index, value in enumerate(ready["cuda"][:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(value, index)
        else:
            warnings.warn("the GPU random states were not restored: this machine has no GPU (CUDA). "
                          "The run continues on the CPU, whose random numbers differ from the GPU's anyway, "
                          "so it will not repeat the GPU run bit for bit.", RuntimeWarning, stacklevel=3)
    if ready["mps"] is not None:
        if torch.backends.mps.is_available():
            torch.mps.set_rng_state(ready["mps"])
        else:
            warnings.warn("Apple's GPU (mps) random state was not restored: this machine has no MPS. "
                          "The run will not repeat the MPS run bit for bit.", RuntimeWarning, stacklevel=3)
    for name, g in generators.items():
        g.set_state(ready["generators"][name])


def set_rng_state(state: dict, generators: dict | None = None) -> None:
    """Put back the random states ``rng_state(generators)`` returned.

    state:      the dict ``rng_state`` returned (or ``torch.load(path)["rng"]`` of a checkpoint)
    generators: the same names as when the state was taken, each with a torch.Generator
                of the same kind (e.g. a fresh ``torch.Generator()`` for the new DataLoader):
                its state is overwritten

    Everything is checked before any state changes: a state that does not fit raises
    ``ValueError`` saying which part, and then nothing was changed. GPU states this
    machine has no GPU for are skipped with a ``RuntimeWarning``.
    """
    generators = _check_generators(generators)
    try:
        ready = _prepared(state, generators)
    except _BadState as e:
        raise ValueError(f"state cannot be restored: {e}") from None
    _apply(ready, generators)


# -----------------------------------------------------------------------------
# save and load


def save_checkpoint(path, model, *, optimizer=None, step=None, extra: dict | None = None,
                    rng: bool = True, generators: dict | None = None) -> Path:
    """Save model (and optimizer) state to ``path``; return the path.

    model:      nn.Module, its state_dict is saved
    optimizer:  optional torch.optim.Optimizer, its state_dict is saved (to resume training)
    step:       optional int, e.g. the number of optimizer updates done
    extra:      optional dict of plain Python values (str, int, float, bool, None, lists and
                dicts of them): hyperparameters, the loss history, ...
    rng:        bool (default True), also save the random states (``rng_state``): Python's
                ``random``, NumPy's, torch's CPU state and each GPU's. A few kilobytes; what
                ``load_checkpoint(..., restore_rng=True)`` needs to resume bit for bit
    generators: optional dict ``{name: torch.Generator}`` of your own generators to save
                with them, e.g. ``{"loader": g}`` for ``DataLoader(..., shuffle=True,
                generator=g)``; needs ``rng=True``

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
    check_bool("rng", rng)
    generators = _check_generators(generators)
    if generators and not rng:
        raise ValueError("generators= are saved with the other random states: pass rng=True (the default) "
                         "or leave generators out")

    content = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step) if step is not None else None,
        "extra": extra,
    }
    if rng:  # an optional entry: files without it (older ones, rng=False) keep loading
        content["rng"] = rng_state(generators)
    try:
        # a temporary file in the same folder, then one rename: an interrupted save never damages an
        # existing checkpoint (the mechanism the Hugging Face folders below use too)
        write_files_atomically(path.parent, {path.name: lambda tmp: _torch_save(content, tmp)})
    except OSError as e:
        raise OSError(e.errno, f"cannot write the checkpoint path={str(path)!r}: {e.strerror or e}") from e
    return path


def _torch_save(content: dict, file_name: str) -> None:
    with open(file_name, "wb") as f:
        torch.save(content, f)


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


def load_checkpoint(path, model, *, optimizer=None, map_location="cpu", restore_rng: bool = False,
                    generators: dict | None = None) -> dict:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    map_location: where the file's tensors are read to before they are copied into the
                  model: "cpu" (default), "cuda", "cuda:<index>" or "mps", a device this
                  machine has (a str or a torch.device), or None (where they were saved)
    restore_rng:  bool (default False), also put back the random states saved with the file
                  (Python's ``random``, NumPy's, torch's CPU state and each GPU's), so a resumed
                  run draws the same dropout masks and batches as an uninterrupted one. Off by
                  default: loading weights to look at them should not rewind the random
                  numbers the rest of your code draws
    generators:   with ``restore_rng=True``, a dict ``{name: torch.Generator}`` with the same
                  names as were saved, e.g. the generator of the new DataLoader; each one's
                  state is overwritten with the saved one

    Returns ``{"step": int or None, "extra": dict}``.

    Raises TypeError for a path, model, optimizer, map_location or generators of the wrong
    type, ValueError for a map_location this machine does not have or a path that is a folder,
    FileNotFoundError when there is no file at ``path``, and CheckpointError when the file
    is damaged, is not a course checkpoint, holds Python objects other than tensors and
    plain data (refused without running anything), does not match the model (the message
    lists the keys that differ), or, with ``restore_rng=True``, holds no random states (it
    was saved with ``rng=False`` or before they were saved) or other generators than those
    passed. Nothing (model, optimizer, random states) is changed unless everything fits.
    GPU random states this machine has no GPU for are skipped with a ``RuntimeWarning``.
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
    check_bool("restore_rng", restore_rng)
    generators = _check_generators(generators)
    if generators and not restore_rng:
        raise ValueError("generators= are restored together with the other random states: "
                         "pass restore_rng=True as well (or leave generators out)")
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

    ready = None
    if restore_rng:  # checked now, set last: a file that does not fit changes nothing
        if content.get("rng") is None:
            raise CheckpointError(
                f"the checkpoint {path} holds no random states (it was saved with rng=False, or by an "
                "older version of the course), so restore_rng=True cannot resume the run exactly. Load it "
                "without restore_rng=True (the run then continues with other random numbers: other dropout "
                "masks, another batch order), or re-run the training cell to write a checkpoint with them.")
        try:
            ready = _prepared(content["rng"], generators)
        except _BadState as e:
            raise CheckpointError(f"the random states in {path} cannot be restored: {e}") from None

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
    if ready is not None:
        _apply(ready, generators)
    return {"step": content.get("step"), "extra": content.get("extra") or {}}


# -----------------------------------------------------------------------------
# Hugging Face model folders (config.json + model.safetensors), written atomically


def check_model_folder(name: str, path) -> pathlib.Path:
    """``path`` must name a folder to save a Hugging Face model in (it may not exist yet).

    ``TypeError``: not a str or path. ``ValueError``, naming it: '', an existing file, a path under
    a file, or a folder this user may not write in. Returns it as a ``pathlib.Path``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or a pathlib.Path naming a folder, got {type(path).__name__} "
                        f"{path!r:.60}")
    if str(path) == "":
        raise ValueError(f"{name} must name a folder, e.g. 'runs/gpt', got ''")
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a file: a model is saved as a folder (config.json + "
                         "model.safetensors), name a folder")
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name}={str(path)!r} cannot be created: {str(parent)!r} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{name}={str(path)!r} cannot be written: no permission to write in {str(parent)!r}")
            break
    return path


def save_model_folder(folder: pathlib.Path, config: dict, tensors: dict[str, torch.Tensor]) -> pathlib.Path:
    """Write ``folder/config.json`` and ``folder/model.safetensors`` atomically; returns ``folder``.

    ``tensors`` must not share memory (safetensors refuses that): leave tied copies out.
    """
    # metadata "format": "pt" is what transformers writes and checks when it loads the file
    write_files_atomically(folder, {
        "model.safetensors": lambda tmp: safetensors.torch.save_file(tensors, tmp, metadata={"format": "pt"}),
        "config.json": lambda tmp: pathlib.Path(tmp).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n",
                                                                encoding="utf-8"),
    })
    return folder


def write_files_atomically(folder: pathlib.Path, writers: dict) -> None:
    """Write the files ``folder/name`` with ``writers[name](temporary_file_name)``, each one whole.

    Each file goes to a temporary file in ``folder`` first (``os.replace`` is atomic only within
    one file system) and the renames start only once every file is complete and on disk: a failure
    or an interrupt while writing leaves the previous files as they were and removes the temporary
    ones. (Only a crash between two renames, a moment, would mix an old file with a new one.)
    ``folder`` is created with its parents if missing.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create the folder {str(folder)!r}: {e.strerror}") from e
    temps = []
    try:
        for name, write in writers.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=name + ".tmp")
            os.close(fd)
            temps.append((tmp, folder / name))
            write(tmp)
            with open(tmp, "rb+") as f:  # rb+: Windows cannot fsync a read-only handle
                os.fsync(f.fileno())     # on disk before it gets its real name
        for tmp, final in temps:
            os.chmod(tmp, 0o644)  # mkstemp makes it private (0o600): give it a saved file's usual mode
            os.replace(tmp, final)
    except BaseException:  # KeyboardInterrupt too: never leave half a file or a stray temporary one
        for tmp, _ in temps:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
        raise
