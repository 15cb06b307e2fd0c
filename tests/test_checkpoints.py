"""Tests of course_lib.checkpoints: atomic saves, safe loads, clear errors for unusable files.

Every model here is tiny (nn.Linear on a synthetic regression), so the file runs in seconds.
"""

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from regression_task import IN, OUT, as_batches, make_data, make_model, mse

from course_lib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from course_lib.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUIET = dict(progress=False, live_plot=False)


def trained(steps=5):
    x, y = make_data(64)
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train(model, as_batches(x, y), mse, steps=steps, optimizer=opt, **QUIET)
    return model, opt, as_batches(x, y)


EXTRA = {"lr": 1e-2, "name": "linear", "ok": True, "none": None, "sizes": [4, 2],
         "nested": {"a": [1.5, {"b": "c"}]}, "pair": (1, 2)}


def test_checkpoint_round_trip_restores_everything(tmp_path):
    model, opt, batches = trained()
    path = save_checkpoint(tmp_path / "sub" / "dir" / "model.pt", model, optimizer=opt, step=5, extra=EXTRA)
    assert path == tmp_path / "sub" / "dir" / "model.pt" and path.exists()

    model2 = make_model(seed=99)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    info = load_checkpoint(path, model2, optimizer=opt2)
    assert info == {"step": 5, "extra": EXTRA}
    for (k, a), (k2, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        for key in s1["state"][i]:
            assert torch.equal(torch.as_tensor(s1["state"][i][key]), torch.as_tensor(s2["state"][i][key]))

    # training continues identically from the original and from the restored copy
    h1 = train(model, batches, mse, steps=5, optimizer=opt, **QUIET)
    h2 = train(model2, batches, mse, steps=5, optimizer=opt2, **QUIET)
    assert h1.losses == h2.losses


def test_checkpoint_loads_with_plain_weights_only_torch_load(tmp_path):
    model, opt, _ = trained()
    path = save_checkpoint(tmp_path / "m.pt", model, optimizer=opt, step=5, extra=EXTRA)
    content = torch.load(path, weights_only=True)
    assert content["format"] == "course_lib.checkpoint/1"
    assert set(content) == {"format", "model", "optimizer", "step", "extra"}
    assert content["step"] == 5 and content["extra"] == EXTRA


def test_checkpoint_without_optimizer_or_extra(tmp_path):
    model, _, _ = trained()
    path = save_checkpoint(tmp_path / "m.pt", model)
    assert torch.load(path, weights_only=True)["optimizer"] is None
    assert load_checkpoint(path, make_model(seed=3)) == {"step": None, "extra": {}}
    opt = torch.optim.AdamW(make_model().parameters())
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(path, make_model(), optimizer=opt)


def test_train_saves_a_checkpoint_with_its_history(tmp_path):
    x, y = make_data(64)
    model = make_model()
    h = train(model, as_batches(x, y), mse, steps=4, eval_fn=lambda m: {"val_loss": 0.5},
              checkpoint_path=tmp_path / "run.pt", **QUIET)
    model2 = make_model(seed=5)
    opt2 = torch.optim.AdamW(model2.parameters())
    info = load_checkpoint(tmp_path / "run.pt", model2, optimizer=opt2)
    assert info["step"] == 4
    assert info["extra"]["history"]["losses"] == h.losses
    assert info["extra"]["history"]["evals"] == h.evals
    assert torch.equal(model.weight, model2.weight)
    assert len(opt2.state) == 2  # AdamW moments of weight and bias came back


@pytest.mark.parametrize("extra, key", [
    ({"w": torch.ones(2)}, r"extra\['w'\]"),
    ({"a": {"b": [1, object()]}}, r"extra\['a'\]\['b'\]\[1\]"),
    ({"x": np.float64(1.0)}, r"extra\['x'\].*numpy"),
    ({("tuple", "key"): 1}, "key"),
])
def test_non_plain_extra_raises_type_error_naming_the_key(tmp_path, extra, key):
    with pytest.raises(TypeError, match=key):
        save_checkpoint(tmp_path / "m.pt", make_model(), extra=extra)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    model, opt, _ = trained()
    path = save_checkpoint(tmp_path / "m.pt", model, step=1, extra={"v": "old"})
    old_bytes = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_model(seed=8), step=2, extra={"v": "new"})
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind
    assert load_checkpoint(path, make_model())["extra"] == {"v": "old"}


def test_save_is_atomic_on_keyboard_interrupt(tmp_path, monkeypatch):
    def interrupted(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "m.pt", make_model())
    assert os.listdir(tmp_path) == []


class Harmless:
    """A class that records whether unpickling ever reached it."""

    revived = False

    def __setstate__(self, state):
        Harmless.revived = True
        self.__dict__.update(state)


def write_corrupt(path):
    path.write_bytes(os.urandom(2000))


def write_truncated(path):
    save_checkpoint(path, make_model(), optimizer=torch.optim.AdamW(make_model().parameters()), step=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_arbitrary_pickle(path, protocol=pickle.DEFAULT_PROTOCOL):
    obj = Harmless()
    obj.payload = 1
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def write_plain_tensor(path):
    torch.save(torch.ones(3), path)


def write_wrong_format(path):
    torch.save({"format": "someone-else/7", "model": make_model().state_dict()}, path)


def write_empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("write", [
    write_corrupt, write_truncated, write_arbitrary_pickle, lambda p: write_arbitrary_pickle(p, protocol=2),
    write_plain_tensor, write_wrong_format, write_empty,
], ids=["corrupt", "truncated", "pickle", "pickle-protocol-2", "plain-tensor", "wrong-format", "empty"])
def test_unusable_files_raise_checkpoint_error_naming_the_path(tmp_path, write):
    path = tmp_path / "bad.pt"
    write(path)
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Harmless.revived = False
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model)
    message = str(info.value)
    assert str(path) in message and "re-run the training cell" in message
    assert isinstance(info.value, ValueError)
    assert not Harmless.revived  # the pickle was refused, never executed
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class RunsCode:
    """Unpickling this calls os.makedirs(marker): the folder appears if the file's code runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


@pytest.mark.parametrize("kind", ["object", "code"])
def test_pickled_objects_are_explained(tmp_path, kind):
    """Recognised from the file (read statically), not from the wording of torch's error, which changes
    between versions ("Unsupported global" before, "unsupported GLOBAL ... is blocked" in torch 2.13)."""
    path, marker = tmp_path / "bad.pt", tmp_path / "the_code_ran"
    if kind == "object":
        write_arbitrary_pickle(path, protocol=2)
    else:
        torch.save({"model": RunsCode(marker)}, path)
    Harmless.revived = False
    with pytest.raises(CheckpointError, match="Python objects.*(Harmless|makedirs).*could run arbitrary code") as info:
        load_checkpoint(path, make_model())
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)  # the original error is chained
    assert not Harmless.revived and not marker.exists()


def test_shape_mismatch_raises_checkpoint_error_naming_the_key(tmp_path):
    save_checkpoint(tmp_path / "m.pt", nn.Linear(IN, OUT))
    model = nn.Linear(IN, OUT + 1)
    before = model.weight.detach().clone()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "m.pt", model)
    message = str(info.value)
    assert "'weight'" in message and "(3, 4)" in message and "(2, 4)" in message
    assert "'bias'" in message and str(tmp_path / "m.pt") in message
    assert torch.equal(model.weight, before)


def test_missing_and_unexpected_keys_raise_checkpoint_error_naming_them(tmp_path):
    save_checkpoint(tmp_path / "m.pt", nn.Linear(IN, OUT, bias=False))
    with pytest.raises(CheckpointError, match=r"'bias': missing from the file"):
        load_checkpoint(tmp_path / "m.pt", nn.Linear(IN, OUT))
    save_checkpoint(tmp_path / "m.pt", nn.Linear(IN, OUT))
    with pytest.raises(CheckpointError, match=r"'bias': in the file but not in the model"):
        load_checkpoint(tmp_path / "m.pt", nn.Linear(IN, OUT, bias=False))


def test_many_mismatches_are_listed_up_to_five(tmp_path):
    big = nn.Sequential(*[nn.Linear(2, 2) for _ in range(6)])  # 12 keys
    save_checkpoint(tmp_path / "m.pt", big)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "m.pt", nn.Sequential(*[nn.Linear(3, 3) for _ in range(6)]))
    message = str(info.value)
    assert message.count("the model expects shape") == 5 and "and 7 more" in message


def test_optimizer_mismatch_raises_checkpoint_error(tmp_path):
    model, opt, _ = trained()
    save_checkpoint(tmp_path / "m.pt", model, optimizer=opt)
    model2 = make_model()
    opt2 = torch.optim.AdamW([model2.weight])  # one parameter instead of two
    with pytest.raises(CheckpointError, match="optimizer"):
        load_checkpoint(tmp_path / "m.pt", model2, optimizer=opt2)


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_checkpoint(tmp_path / "nowhere.pt", make_model())
