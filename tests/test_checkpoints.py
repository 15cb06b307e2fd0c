"""Tests of course_lib.checkpoints: atomic saves, safe loads, clear errors for unusable files.

Every model here is tiny (nn.Linear on a synthetic regression), so the file runs in seconds.
"""

import os
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from regression_task import IN, OUT, as_batches, make_data, make_model, mse

from course_lib.checkpoints import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
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
    assert set(content) == {"format", "model", "optimizer", "step", "extra", "rng"}
    assert content["step"] == 5 and content["extra"] == EXTRA
    rng = content["rng"]  # the random states, as tensors and plain values
    assert rng["python"]["state"].shape == (625,) and rng["python"]["state"].dtype == torch.int64
    assert rng["numpy"]["keys"].shape == (624,) and rng["numpy"]["name"] == "MT19937"
    assert rng["torch"].dtype == torch.uint8 and torch.equal(rng["torch"], torch.get_rng_state())
    assert rng["generators"] == {}


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


# -----------------------------------------------------------------------------
# random states


def draws():
    """The next numbers of every global random source (drawing them moves the states on)."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def assert_same_states(a: dict, b: dict):
    assert a["python"]["gauss_next"] == b["python"]["gauss_next"]
    assert torch.equal(a["python"]["state"], b["python"]["state"])
    assert torch.equal(a["numpy"]["keys"], b["numpy"]["keys"]) and a["numpy"]["pos"] == b["numpy"]["pos"]
    assert torch.equal(a["torch"], b["torch"])


def test_rng_state_and_set_rng_state_rewind_every_source():
    g = torch.Generator().manual_seed(5)
    random.gauss(0, 1), np.random.standard_normal()  # cached Gaussians are part of the state too
    state = rng_state({"loader": g})
    expected = draws() + (random.gauss(0, 1), float(np.random.standard_normal()), torch.rand(2, generator=g).tolist())
    draws(), torch.rand(5, generator=g)  # move everything on
    set_rng_state(state, {"loader": g})
    assert draws() + (random.gauss(0, 1), float(np.random.standard_normal()),
                      torch.rand(2, generator=g).tolist()) == expected


def test_load_restores_the_random_states_only_when_asked(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", make_model())
    expected = draws()
    load_checkpoint(path, make_model())  # restore_rng=False: the random numbers go on
    assert draws() != expected
    load_checkpoint(path, make_model(), restore_rng=True)
    assert draws() == expected


def old_checkpoint(path, model):
    """A file as save_checkpoint wrote it before the random states were saved."""
    torch.save({"format": "course_lib.checkpoint/1", "model": model.state_dict(), "optimizer": None,
                "step": 3, "extra": {}}, path)
    return path


@pytest.mark.parametrize("write", ["old", "rng=False"])
def test_a_checkpoint_without_random_states_loads_but_cannot_restore_them(tmp_path, write):
    trained_model = trained()[0]
    if write == "old":
        path = old_checkpoint(tmp_path / "m.pt", trained_model)
    else:
        path = save_checkpoint(tmp_path / "m.pt", trained_model, step=3, rng=False)
        assert "rng" not in torch.load(path, weights_only=True)
    assert load_checkpoint(path, make_model(seed=4))["step"] == 3  # loads as before

    model = make_model(seed=4)
    before_weight, before_states = model.weight.detach().clone(), rng_state()
    with pytest.raises(CheckpointError, match=r"holds no random states.*rng=False.*without restore_rng=True") as info:
        load_checkpoint(path, model, restore_rng=True)
    assert str(path) in str(info.value)
    assert torch.equal(model.weight, before_weight)  # nothing changed: not the model ...
    assert_same_states(rng_state(), before_states)  # ... nor the random states


def test_generators_must_match_the_saved_names(tmp_path):
    g = torch.Generator().manual_seed(1)
    path = save_checkpoint(tmp_path / "m.pt", make_model(), generators={"loader": g})
    assert torch.equal(torch.load(path, weights_only=True)["rng"]["generators"]["loader"], g.get_state())
    model, other = make_model(seed=3), torch.Generator().manual_seed(2)
    before_weight, before_states, before_other = model.weight.detach().clone(), rng_state(), other.get_state()
    with pytest.raises(CheckpointError, match=r"generators \['loader'\] were saved too.*generators=\{'loader': g\}"):
        load_checkpoint(path, model, restore_rng=True)
    with pytest.raises(CheckpointError, match=r"generators names \['order'\].*saved are for \['loader'\]"):
        load_checkpoint(path, model, restore_rng=True, generators={"loader": other, "order": torch.Generator()})
    assert torch.equal(model.weight, before_weight) and torch.equal(other.get_state(), before_other)
    assert_same_states(rng_state(), before_states)
    load_checkpoint(path, model, restore_rng=True, generators={"loader": other})
    assert torch.equal(other.get_state(), g.get_state())


def tampered(path, change):
    """A checkpoint whose random states were changed by ``change(rng_dict)``."""
    content = torch.load(save_checkpoint(path, make_model()), weights_only=True)
    change(content["rng"])
    torch.save(content, path)
    return path


@pytest.mark.parametrize("change, part", [
    (lambda r: r.update(torch=torch.zeros(3, dtype=torch.uint8)), "torch's CPU random state"),
    (lambda r: r.update(torch=torch.zeros(5056)), "torch's CPU random state must be a 1-D uint8"),
    (lambda r: r["python"].update(state=torch.zeros(3, dtype=torch.int64)), "Python's random state"),
    (lambda r: r["numpy"].update(keys=torch.full((624,), -1)), "NumPy's random state"),
    (lambda r: r["numpy"].update(keys="abc"), "NumPy's random state"),
    (lambda r: r["numpy"].update(keys=r["numpy"]["keys"].double()), "NumPy's random state.*float64"),
    (lambda r: r["python"].update(state=r["python"]["state"].float()), "Python's random state.*float32"),
    (lambda r: r.update(cuda="not a list"), "CUDA random states must be a list"),
    (lambda r: r.update(generators=[1]), "generators' states must be a dict"),
    (lambda r: r.clear(), "'python', 'numpy' and 'torch'"),
])
def test_damaged_random_states_raise_checkpoint_error_and_change_nothing(tmp_path, change, part):
    path = tampered(tmp_path / "m.pt", change)
    model = make_model(seed=6)
    before_weight, before_states = model.weight.detach().clone(), rng_state()
    with pytest.raises(CheckpointError, match=part):
        load_checkpoint(path, model, restore_rng=True)
    assert torch.equal(model.weight, before_weight)
    assert_same_states(rng_state(), before_states)
    load_checkpoint(path, model)  # the weights themselves still load


def test_a_generator_of_another_kind_is_refused(tmp_path):
    path = tampered(tmp_path / "m.pt", lambda r: r.update(generators={"g": torch.zeros(16, dtype=torch.uint8)}))
    g = torch.Generator()  # a CPU generator's state has 5056 bytes; a CUDA one's has 16
    with pytest.raises(CheckpointError, match=r"generator 'g' has 16 bytes.*has 5056"):
        load_checkpoint(path, make_model(), restore_rng=True, generators={"g": g})


def test_set_rng_state_refuses_what_is_not_a_state_and_changes_nothing():
    before = rng_state()
    bad = rng_state()
    bad["torch"] = torch.zeros(10, dtype=torch.uint8)
    with pytest.raises(ValueError, match="state cannot be restored: torch's CPU random state"):
        set_rng_state(bad)
    with pytest.raises(ValueError, match="'python', 'numpy' and 'torch'"):
        set_rng_state({"seed": 0})
    assert_same_states(rng_state(), before)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rng="yes"), TypeError, r"\brng must be True or False"),
    (dict(rng=1), TypeError, r"\brng must be True or False"),
    (dict(generators=[torch.Generator()]), TypeError, r"generators must be a dict.*got list"),
    (dict(generators={"a": 3}), TypeError, r"generators\['a'\] must be a torch.Generator, got int"),
    (dict(generators={1: torch.Generator()}), TypeError, r"generators has a key 1"),
    (dict(rng=False, generators={"a": torch.Generator()}), ValueError, r"generators=.*rng=True"),
])
def test_save_refuses_bad_rng_arguments_before_writing(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path / "m.pt", make_model(), **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(restore_rng="yes"), TypeError, r"restore_rng must be True or False"),
    (dict(restore_rng=1), TypeError, r"restore_rng must be True or False"),
    (dict(generators={"a": torch.Generator()}), ValueError, r"generators=.*restore_rng=True"),
    (dict(restore_rng=True, generators=(torch.Generator(),)), TypeError, r"generators must be a dict"),
])
def test_load_refuses_bad_rng_arguments(tmp_path, kwargs, error, match):
    path = save_checkpoint(tmp_path / "m.pt", make_model())
    with pytest.raises(error, match=match):
        load_checkpoint(path, make_model(), **kwargs)


class FakeGpuRng:
    """Stands in for torch.cuda's / torch.mps's random-state functions on a machine without them."""

    def __init__(self, states):
        self.states, self.set = states, []

    def get_all(self):
        return [s.clone() for s in self.states]

    def get(self):
        return self.states[0].clone()

    def set_one(self, value, device="cuda"):
        self.set.append((value.clone(), device))


def test_gpu_random_states_are_saved_and_restored_where_the_gpu_is(tmp_path, monkeypatch):
    cuda = FakeGpuRng([torch.full((16,), 1, dtype=torch.uint8), torch.full((16,), 2, dtype=torch.uint8)])
    mps = FakeGpuRng([torch.full((16,), 3, dtype=torch.uint8)])
    with monkeypatch.context() as m:  # a machine with two GPUs in use and Apple's GPU
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "is_initialized", lambda: True)
        m.setattr(torch.cuda, "get_rng_state_all", cuda.get_all)
        m.setattr(torch.backends.mps, "is_available", lambda: True)
        m.setattr(torch.mps, "get_rng_state", mps.get)
        path = save_checkpoint(tmp_path / "m.pt", make_model())
    rng = torch.load(path, weights_only=True)["rng"]
    assert [s.tolist() for s in rng["cuda"]] == [[1] * 16, [2] * 16] and rng["mps"].tolist() == [3] * 16

    with monkeypatch.context() as m:  # resumed on a machine with one of those GPUs
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "device_count", lambda: 1)
        m.setattr(torch.cuda, "set_rng_state", cuda.set_one)
        m.setattr(torch.backends.mps, "is_available", lambda: True)
        m.setattr(torch.mps, "set_rng_state", lambda value: mps.set_one(value, "mps"))
        load_checkpoint(path, make_model(), restore_rng=True)
    assert [(v.tolist(), d) for v, d in cuda.set] == [([1] * 16, 0)]  # GPU 0 only: there is no GPU 1
    assert [(v.tolist(), d) for v, d in mps.set] == [([3] * 16, "mps")]

    # on a machine without them: the CPU states are restored, the GPU ones skipped with a warning
    expected = draws()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="not restored") as record:
        load_checkpoint(path, make_model(), restore_rng=True)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2 and "(mps)" in messages[0] and "GPU random states" in messages[1]
    assert draws() == expected


def test_cuda_states_are_not_asked_for_when_cuda_is_unused(tmp_path, monkeypatch):
    """Asking for them would start CUDA (slow, and wasteful when the run is on the CPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("CUDA was started"))
    assert rng_state()["cuda"] == []
