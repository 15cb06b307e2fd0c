"""Hostile and careless input to the training loop, checkpoints, batching and log reading.

Each case asserts the exception's type and that its message names the argument; nothing is
trained, written or allocated before a bad argument is refused. Tiny models only: seconds.
"""

import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from regression_task import make_data, make_model, mse

from course_lib.batching import epoch_batches, pad_sequences, to_device
from course_lib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from course_lib.logs import read_scalars
from course_lib.training import cosine_factor, default_device, evaluating, get_device, set_seed, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUIET = dict(progress=False, live_plot=False)
HAS_CUDA = torch.cuda.is_available()
NAN = float("nan")


def batches():
    x, y = make_data(32)
    return [(x, y)]


def other_params_optimizer():
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)


# ---------------------------------------------------------------------------
# train: every argument, refused before the first step
# ---------------------------------------------------------------------------

TRAIN_CASES = [
    # (keyword arguments that replace the good ones, exception type, argument named in the message)
    (dict(device="gpu0"), ValueError, "device"),
    (dict(device="cuda:99"), ValueError, "device"),
    (dict(device="meta"), ValueError, "device"),
    (dict(device=""), ValueError, "device"),
    (dict(device=-1), ValueError, "device"),
    (dict(device=True), TypeError, "device"),
    (dict(device=3.5), TypeError, "device"),
    (dict(device=torch.float32), TypeError, "device"),
    (dict(steps=0), ValueError, "steps"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=NAN), ValueError, "steps"),
    (dict(steps=True), ValueError, "steps"),
    (dict(steps=2.0), ValueError, "steps"),
    (dict(steps="5"), ValueError, "steps"),
    (dict(lr=0), ValueError, "lr"),
    (dict(lr=-1e-3), ValueError, "lr"),
    (dict(lr=NAN), ValueError, "lr"),
    (dict(lr=float("inf")), ValueError, "lr"),
    (dict(lr=True), ValueError, "lr"),
    (dict(lr="1e-3"), ValueError, "lr"),
    (dict(weight_decay=-1), ValueError, "weight_decay"),
    (dict(weight_decay=NAN), ValueError, "weight_decay"),
    (dict(clip_grad_norm=0), ValueError, "clip_grad_norm"),
    (dict(clip_grad_norm=True), ValueError, "clip_grad_norm"),
    (dict(batches=5), TypeError, "batches"),
    (dict(batches=None), TypeError, "batches"),
    (dict(batches="abc"), TypeError, "batches"),
    (dict(batches=b"abc"), TypeError, "batches"),
    (dict(batches=torch.ones(3, 2)), TypeError, "batches"),
    (dict(batches={"x": torch.ones(3)}), TypeError, "batches"),
    (dict(batches=[]), ValueError, "batches"),
    (dict(batches=lambda: None), TypeError, "batches"),
    (dict(batches=lambda step, extra: None), TypeError, "batches"),
    (dict(loss_fn=None), TypeError, "loss_fn"),
    (dict(loss_fn=lambda batch: None), TypeError, "loss_fn"),
    (dict(loss_fn=lambda m, b: None), TypeError, "loss_fn"),
    (dict(loss_fn=lambda m, b: 0.5), TypeError, "loss_fn"),
    (dict(loss_fn=lambda m, b: (mse(m, b), 1)), TypeError, "loss_fn"),
    (dict(loss_fn=lambda m, b: (m(b[0]) - b[1]) ** 2), ValueError, "loss_fn"),
    (dict(loss_fn=lambda m, b: torch.tensor(3)), TypeError, "loss_fn"),
    (dict(loss_fn=lambda m, b: mse(m, b) * (1 + 1j)), TypeError, "loss_fn"),
    (dict(loss_fn=lambda m, b: mse(m, b).detach()), ValueError, "loss_fn"),
    (dict(eval_fn=3), TypeError, "eval_fn"),
    (dict(eval_fn=lambda: {}), TypeError, "eval_fn"),
    (dict(eval_fn=lambda m: {}, eval_every=0), ValueError, "eval_every"),
    (dict(eval_fn=lambda m: {}, eval_every=-3), ValueError, "eval_every"),
    (dict(eval_fn=lambda m: {}, eval_every=True), ValueError, "eval_every"),
    (dict(eval_fn=lambda m: {}, eval_every=NAN), ValueError, "eval_every"),
    (dict(eval_every=5), ValueError, "eval_every"),
    (dict(schedule="cos"), ValueError, "schedule"),
    (dict(schedule=None), ValueError, "schedule"),
    (dict(schedule=["cosine"]), ValueError, "schedule"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), ValueError, "seed"),
    (dict(seed="3"), ValueError, "seed"),
    (dict(seed=2**32), ValueError, "seed"),
    (dict(plot_every=0), ValueError, "plot_every"),
    (dict(progress="no"), TypeError, "progress"),
    (dict(progress=None), TypeError, "progress"),
    (dict(desc=5), TypeError, "desc"),
    (dict(desc=None), TypeError, "desc"),
    (dict(live_plot=1), TypeError, "live_plot"),
    (dict(checkpoint_path=3), TypeError, "checkpoint_path"),
    (dict(checkpoint_path=""), ValueError, "checkpoint_path"),
    (dict(optimizer="adam"), TypeError, "optimizer"),
    (dict(optimizer=torch.optim.AdamW), TypeError, "optimizer"),
    (dict(optimizer=other_params_optimizer), ValueError, "optimizer"),  # built when the case runs
    (dict(model=None), TypeError, "model"),
    (dict(model=nn.Linear), TypeError, "model"),
    (dict(model=nn.ReLU()), ValueError, "model"),
]


def ids(cases):
    """Stable test ids (no object addresses, so that parallel test processes agree)."""
    return [f"{i}-{next(iter(change))}" for i, (change, *_) in enumerate(cases)]


@pytest.mark.parametrize("change, error, name", TRAIN_CASES, ids=ids(TRAIN_CASES))
def test_train_refuses_bad_arguments_naming_them(change, error, name):
    model = make_model()
    before = model.weight.detach().clone()
    args = dict(model=model, batches=batches(), loss_fn=mse, steps=3, **QUIET)
    args.update(change)
    if args.get("optimizer") is other_params_optimizer:
        args["optimizer"] = other_params_optimizer()
    with pytest.raises(error, match=rf"\b{name}\b"):
        train(**args)
    assert torch.equal(model.weight, before)  # nothing was trained


EVAL_CASES = [
    (lambda m: None, TypeError),
    (lambda m: {"acc": NAN}, ValueError),
    (lambda m: {"acc": torch.ones(3)}, TypeError),
    (lambda m: {1: 0.5}, TypeError),
    (lambda m: {"step": 1}, ValueError),
]


@pytest.mark.parametrize("eval_fn, error", EVAL_CASES, ids=[str(i) for i in range(len(EVAL_CASES))])
def test_train_refuses_what_eval_fn_returns_at_the_first_evaluation(eval_fn, error):
    with pytest.raises(error, match=r"\beval_fn\b.*"):
        train(make_model(), batches(), mse, steps=4, eval_fn=eval_fn, eval_every=2, **QUIET)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda"), 0])
def test_train_on_cuda_without_a_gpu_says_there_is_none(device):
    with pytest.raises(ValueError, match=r"\bdevice\b.*no GPU .*available.*never needs a GPU"):
        train(make_model(), batches(), mse, steps=1, device=device, **QUIET)


@pytest.mark.parametrize("device", ["cpu", "cpu:0", torch.device("cpu"), get_device(), default_device()])
def test_train_accepts_every_spelling_of_an_available_device(device):
    history = train(make_model(), batches(), mse, steps=2, device=device, **QUIET)
    assert len(history.losses) == 2


def test_checkpoint_path_is_checked_before_the_training(tmp_path):
    (tmp_path / "file").write_text("x")
    for path, message in [(tmp_path, "is a folder"), (tmp_path / "file" / "m.pt", "is a file, not a folder")]:
        calls = []

        def loss_fn(model, batch):
            calls.append(1)
            return mse(model, batch)

        with pytest.raises(ValueError, match=rf"\bcheckpoint_path\b.*{message}"):
            train(make_model(), batches(), loss_fn, steps=3, checkpoint_path=path, **QUIET)
        assert calls == []  # refused before the first step


def test_nan_loss_names_the_step_and_what_holds_the_nan():
    x, y = make_data(32)
    x[3, 1] = NAN
    with pytest.raises(FloatingPointError, match=r"step 0.*batch\[0\]"):
        train(make_model(), [(x, y)], mse, steps=3, **QUIET)
    with pytest.raises(FloatingPointError, match=r"step 0, before any update"):
        train(make_model(), batches(), lambda m, b: mse(m, b) / 0.0 * 0.0, steps=3, **QUIET)


def test_a_generator_of_batches_that_runs_out_says_so():
    x, y = make_data(32)
    with pytest.raises(ValueError, match=r"\bbatches\b ran out at step 1"):
        train(make_model(), ((x, y) for _ in range(1)), mse, steps=3, **QUIET)


# ---------------------------------------------------------------------------
# set_seed, devices, evaluating, cosine_factor
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", None, True, torch.tensor(3), [1]])
def test_set_seed_refuses_what_is_not_a_seed(seed):
    with pytest.raises(ValueError, match=r"\bseed\b"):
        set_seed(seed)


def test_default_device_is_one_train_and_to_device_accept():
    assert get_device() == default_device()
    assert to_device(torch.ones(1), default_device()).device.type == default_device().type


@pytest.mark.parametrize("value, cuda, mps, why", [
    ("gpu0", False, False, r"must be one of 'cpu', 'cuda'"),
    ("meta", False, False, r"must be one of 'cpu', 'cuda'"),
    ("cuda", False, False, r"no GPU \(CUDA\) is available"),
    ("cuda:2", True, False, r"asks for GPU 2, but this machine has 1"),
    ("mps", True, False, r"Apple's GPU \(mps\), which this machine does not have"),
    ("CPU", False, False, r"must be one of"),  # device names are lower case, as torch spells them
])
def test_a_bad_course_device_names_the_variable(monkeypatch, value, cuda, mps, why):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError, match=rf"environment variable COURSE_DEVICE={value!r}.*{why}.*unset it") as info:
        get_device()
    assert info.value.__cause__ is None  # one message, not a chain of two


@pytest.mark.parametrize("model", [None, 3, nn.Linear, {"weight": torch.ones(1)}])
def test_evaluating_refuses_what_is_not_a_module_at_the_call(model):
    with pytest.raises(TypeError, match=r"\bmodel\b"):
        evaluating(model)


@pytest.mark.parametrize("args, name", [
    ((NAN, 10), "step"), ((-1, 10), "step"), (("a", 10), "step"), ((True, 10), "step"),
    ((0, 0), "steps"), ((0, -5), "steps"), ((0, 2.5), "steps"),
    ((0, 10, 2.0), "warmup"), ((0, 10, -0.1), "warmup"), ((0, 10, NAN), "warmup"),
    ((0, 10, 0.05, -1), "final"), ((0, 10, 0.05, NAN), "final"), ((0, 10, 0.05, "0.1"), "final"),
])
def test_cosine_factor_refuses_bad_arguments(args, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        cosine_factor(*args)


# ---------------------------------------------------------------------------
# save_checkpoint / load_checkpoint
# ---------------------------------------------------------------------------

def cyclic():
    items = [1]
    items.append(items)
    return {"loop": items}


SAVE_CASES = [
    (dict(path=None), TypeError, "path"),
    (dict(path=3), TypeError, "path"),
    (dict(path=""), ValueError, "path"),
    (dict(model="model"), TypeError, "model"),
    (dict(model=nn.Linear(4, 2).state_dict()), TypeError, "model"),
    (dict(optimizer="adam"), TypeError, "optimizer"),
    (dict(step=1.0), TypeError, "step"),
    (dict(step="1"), TypeError, "step"),
    (dict(step=-1), ValueError, "step"),
    (dict(extra=[1]), TypeError, "extra"),
    (dict(extra={"w": torch.ones(2)}), TypeError, "extra"),
    (dict(extra={"x": np.float32(1)}), TypeError, "extra"),
    (dict(extra=cyclic()), ValueError, "extra"),
]


@pytest.mark.parametrize("change, error, name", SAVE_CASES, ids=ids(SAVE_CASES))
def test_save_checkpoint_refuses_bad_arguments_and_writes_nothing(tmp_path, change, error, name):
    args = dict(path=tmp_path / "m.pt", model=make_model())
    args.update(change)
    path = args.pop("path")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # path="" would mean the current folder
    try:
        with pytest.raises(error, match=rf"\b{name}\b"):
            save_checkpoint(path, **args)
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_refuses_a_folder_and_a_path_under_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"\bpath\b.*is a folder"):
        save_checkpoint(tmp_path, make_model())
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"\bpath\b.*is a file, not a folder"):
        save_checkpoint(tmp_path / "file" / "m.pt", make_model())
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where nothing can be created")
def test_save_checkpoint_into_an_unwritable_place_names_the_path():
    with pytest.raises(OSError, match=r"cannot write the checkpoint path='/proc/course_lib/m.pt'"):
        save_checkpoint("/proc/course_lib/m.pt", make_model())


@pytest.fixture
def good_file(tmp_path):
    return save_checkpoint(tmp_path / "good.pt", make_model(), step=1)


LOAD_CASES = [
    (dict(path=None), TypeError, "path"),
    (dict(path=3.5), TypeError, "path"),
    (dict(model=None), TypeError, "model"),
    (dict(model=nn.Linear(4, 2).state_dict()), TypeError, "model"),
    (dict(optimizer="adam"), TypeError, "optimizer"),
    (dict(map_location="gpu0"), ValueError, "map_location"),
    (dict(map_location="cuda:99"), ValueError, "map_location"),
    (dict(map_location="meta"), ValueError, "map_location"),
    (dict(map_location=""), ValueError, "map_location"),
    (dict(map_location=3.5), TypeError, "map_location"),
    (dict(map_location=["cpu"]), TypeError, "map_location"),
    (dict(map_location=True), TypeError, "map_location"),
]


@pytest.mark.parametrize("change, error, name", LOAD_CASES, ids=ids(LOAD_CASES))
def test_load_checkpoint_refuses_bad_arguments_naming_them(good_file, change, error, name):
    model = make_model(seed=5)
    before = model.weight.detach().clone()
    args = dict(path=good_file, model=model)
    args.update(change)
    with pytest.raises(error, match=rf"\b{name}\b") as info:
        load_checkpoint(args.pop("path"), **args)
    assert not isinstance(info.value, CheckpointError)  # the arguments are wrong, not the file
    assert "damaged" not in str(info.value) and "Delete" not in str(info.value)
    assert torch.equal(model.weight, before)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_load_checkpoint_to_a_gpu_without_one_blames_map_location_not_the_file(good_file):
    with pytest.raises(ValueError, match=r"\bmap_location\b='cuda'.*no GPU") as info:
        load_checkpoint(good_file, make_model(), map_location="cuda")
    assert not isinstance(info.value, CheckpointError)


@pytest.mark.parametrize("map_location", ["cpu", "cpu:0", torch.device("cpu"), None])
def test_load_checkpoint_accepts_every_spelling_of_the_cpu(good_file, map_location):
    assert load_checkpoint(good_file, make_model(seed=4), map_location=map_location)["step"] == 1


def test_load_checkpoint_of_a_folder_names_path(tmp_path):
    with pytest.raises(ValueError, match=r"\bpath\b.*is a folder") as info:
        load_checkpoint(tmp_path, make_model())
    assert "damaged" not in str(info.value)


class CreatesMarker:
    """Unpickling this object calls builtins.open(marker, "w"): the file appears if the code runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def write_code(path, how, marker):
    payload = {"format": "course_lib.checkpoint/1", "model": CreatesMarker(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    elif how == "torch.save-legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(how[-1])))


@pytest.mark.parametrize("how", ["torch.save", "torch.save-legacy", "pickle-0", "pickle-2", "pickle-4", "pickle-5"])
def test_a_file_carrying_code_is_refused_as_such_and_the_code_never_runs(tmp_path, how):
    marker = tmp_path / "the_code_ran"
    path = tmp_path / "evil.pt"
    write_code(path, how, marker)
    with pytest.raises(CheckpointError, match=r"Python objects other than tensors.*\b(io|builtins)\.open\b.*arbitrary code") as info:
        load_checkpoint(path, make_model())
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert "damaged" not in str(info.value)
    assert not marker.exists()


def test_the_refusal_is_recognised_whatever_torch_writes_in_its_message(tmp_path, monkeypatch):
    """torch's wording changed ("Unsupported global" -> "unsupported GLOBAL"); the file itself decides."""
    marker = tmp_path / "the_code_ran"
    path = tmp_path / "evil.pt"
    write_code(path, "torch.save", marker)

    def refuses(*args, **kwargs):
        raise pickle.UnpicklingError("weights-only load refused: some future wording")

    monkeypatch.setattr(torch, "load", refuses)
    with pytest.raises(CheckpointError, match="Python objects"):
        load_checkpoint(path, make_model())
    (tmp_path / "noise.pt").write_bytes(os.urandom(500))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "noise.pt", make_model())
    assert not marker.exists()


@pytest.mark.parametrize("content", [os.urandom(3000), b"hello world\n", b"", b"PK\x03\x04 not a zip"],
                         ids=["random", "text", "empty", "fake-zip"])
def test_damaged_files_are_called_damaged(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"damaged, cut off, or not a checkpoint"):
        load_checkpoint(path, make_model())


@pytest.mark.parametrize("content", [
    {"format": torch.ones(2), "model": {}},
    {"format": "course_lib.checkpoint/1", "model": {"weight": "x", "bias": 1}},
    {"format": "course_lib.checkpoint/1", "model": make_model().state_dict(), "step": "ten", "extra": {}},
    {"format": "course_lib.checkpoint/1", "model": make_model().state_dict(), "step": 1, "extra": [1]},
], ids=["format-tensor", "model-junk", "step-str", "extra-list"])
def test_a_well_formed_file_with_junk_inside_is_a_checkpoint_error(tmp_path, content):
    torch.save(content, tmp_path / "junk.pt")
    model = make_model()
    before = model.weight.detach().clone()
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt", model)
    assert torch.equal(model.weight, before)


# ---------------------------------------------------------------------------
# batching
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, error, name", [
    (([[1.5, 2]], 0), TypeError, r"sequences\[0\]"),
    (([[1, 2], [3, 4.0]], 0), TypeError, r"sequences\[1\]"),
    (([["a", "b"]], 0), TypeError, r"sequences\[0\]"),
    ((["abc"], 0), TypeError, r"sequences\[0\]"),
    (([[[1, 2], [3]]], 0), TypeError, r"sequences\[0\]"),
    (([None], 0), TypeError, r"sequences\[0\]"),
    (([[1], 5], 0), TypeError, r"sequences\[1\]"),
    (([[True, False]], 0), TypeError, r"sequences\[0\]"),
    (([[2**70]], 0), ValueError, r"sequences\[0\]"),
    (([torch.tensor([1.7, 2.0])], 0), TypeError, r"sequences\[0\]"),
    (([np.array([1.5, 2.0])], 0), TypeError, r"sequences\[0\]"),
    (([torch.ones(2, 3, dtype=torch.long)], 0), ValueError, r"sequences\[0\]"),
    ((None, 0), TypeError, "sequences"),
    (("abc", 0), TypeError, "sequences"),
    (({"a": [1]}, 0), TypeError, "sequences"),
    ((torch.tensor([1, 2, 3]), 0), ValueError, "sequences"),
    (([], 0), ValueError, "sequences"),
    (([[1]], 0.5), TypeError, "pad_value"),
    (([[1]], None), TypeError, "pad_value"),
    (([[1]], "x"), TypeError, "pad_value"),
    (([[1]], True), TypeError, "pad_value"),
    (([[1]], 2**64), TypeError, "pad_value"),
    (([[1, 2]], 0, -1), ValueError, "length"),
    (([[1]], 0, 1.5), ValueError, "length"),
    (([[1]], 0, True), ValueError, "length"),
    (([[1, 2, 3]], 0, 2), ValueError, "length"),
    (([[1]], 0, 2**62), ValueError, "length"),
])
def test_pad_sequences_refuses_what_is_not_ids(args, error, name):
    with pytest.raises(error, match=rf"\b{name}"):
        pad_sequences(*args)


def test_pad_sequences_keeps_every_integer_kind_exactly():
    out = pad_sequences([[1, 2], (np.int64(3),), torch.tensor([4, 5], dtype=torch.int32), np.array([6]), []], -100)
    assert out.dtype == torch.long
    assert out.tolist() == [[1, 2], [3, -100], [4, 5], [6, -100], [-100, -100]]


@pytest.mark.parametrize("args, error, name", [
    (([1, 2], 0, list), ValueError, "batch_size"),
    (([1, 2], 3, list), ValueError, "batch_size"),
    (([1, 2], 1.5, list), ValueError, "batch_size"),
    (([1, 2], True, list), ValueError, "batch_size"),
    (([1, 2], "2", list), ValueError, "batch_size"),
    (([], 1, list), ValueError, "items"),
    ((None, 1, list), TypeError, "items"),
    (((i for i in range(3)), 1, list), TypeError, "items"),
    (({1, 2}, 1, list), TypeError, "items"),
    (("abc", 1, list), TypeError, "items"),
    (([1, 2], 1, None), TypeError, "encode"),
    (([1, 2], 1, list, "a"), TypeError, "seed"),
    (([1, 2], 1, list, None), TypeError, "seed"),
    (([1, 2], 1, list, 1.5), TypeError, "seed"),
])
def test_epoch_batches_refuses_bad_arguments_at_the_call(args, error, name):
    with pytest.raises(error, match=rf"\b{name}\b"):
        epoch_batches(*args)  # no next() needed: refused at once


@pytest.mark.parametrize("device, error", [
    ("gpu0", ValueError), ("cuda:99", ValueError), ("", ValueError), ("CPU", ValueError),
    (None, TypeError), (torch.float64, TypeError), (3.5, TypeError), (True, TypeError),
])
def test_to_device_refuses_what_is_not_a_device(device, error):
    with pytest.raises(error, match=r"\bdevice\b"):
        to_device({"x": torch.ones(2)}, device)


# ---------------------------------------------------------------------------
# read_scalars
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("logdir, error", [(None, TypeError), (3, TypeError), (["runs"], TypeError)])
def test_read_scalars_refuses_what_is_not_a_folder_name(logdir, error):
    with pytest.raises(error, match=r"\blogdir\b"):
        read_scalars(logdir)


def test_read_scalars_refuses_a_file_and_a_folder_without_logs(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\blogdir\b.*is a file"):
        read_scalars(tmp_path / "f.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"\blogdir\b.*no TensorBoard event files"):
        read_scalars(tmp_path / "empty")


def test_read_scalars_of_the_parent_folder_names_the_runs_inside(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path / "run1") as writer:
        writer.add_scalar("loss", 1.0, 0)
    with pytest.raises(ValueError, match=r"\blogdir\b.*sub-folders 'run1' have some"):
        read_scalars(tmp_path)
    assert read_scalars(tmp_path / "run1")["loss"] == ([0], [1.0])
