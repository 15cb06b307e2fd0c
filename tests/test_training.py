"""Tests of course_lib.training (the training loop) and of the live loss plot it draws (course_lib.viz).

Every model here is tiny (nn.Linear on a synthetic regression), so the file runs in seconds.
"""

import random
import time

import matplotlib

matplotlib.use("Agg")  # no windows, whatever machine runs the tests

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from regression_task import IN, OUT, as_batches, make_data, make_model, mse

from course_lib.training import History, cosine_factor, default_device, evaluating, get_device, set_seed, train
from course_lib.viz import LiveLossPlot

QUIET = dict(progress=False, live_plot=False)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -----------------------------------------------------------------------------
# seeds, devices, History


def test_set_seed_returns_seeded_generator_and_seeds_globals():
    g = set_seed(7)
    a, ga = torch.rand(3), torch.rand(3, generator=g)
    g = set_seed(7)
    assert torch.equal(a, torch.rand(3))
    assert torch.equal(ga, torch.rand(3, generator=g))
    set_seed(7)
    r, n = random.random(), np.random.rand()
    set_seed(7)
    assert (r, n) == (random.random(), np.random.rand())


def test_get_device_on_this_machine(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = ("cuda" if torch.cuda.is_available()
                else "mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device() == torch.device(expected)
    assert default_device is get_device  # one function, two names (notebook 05 teaches get_device)


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert get_device() == torch.device(expected)
    assert default_device() == torch.device(expected)


@pytest.mark.parametrize("value, expected", [
    ("cpu", "cpu"), (" cpu\n", "cpu"), ("cpu:0", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps"),
    ("", "cuda"), ("  ", "cuda"),  # empty counts as not set: the automatic choice
])
def test_course_device_overrides_the_choice(monkeypatch, value, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with two GPUs and MPS
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setenv("COURSE_DEVICE", value)
    assert get_device() == torch.device(expected)


def test_course_device_is_read_at_every_call(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.delenv("COURSE_DEVICE")
    assert get_device() == torch.device("cuda")


def test_history_last_eval():
    assert History().last_eval() is None
    h = History(steps=[0], losses=[1.0], evals=[{"step": 1, "a": 1.0}, {"step": 2, "a": 0.5}])
    assert h.last_eval() == {"step": 2, "a": 0.5}


@pytest.mark.parametrize("was_training", [True, False])
def test_evaluating_switches_to_eval_mode_and_restores_the_mode_even_on_error(was_training):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train(was_training)
    with evaluating(model) as inside:
        assert inside is model and not model.training and not model[1].training
    assert model.training == was_training and model[1].training == was_training
    with pytest.raises(RuntimeError, match="boom"):
        with evaluating(model):
            raise RuntimeError("boom")
    assert model.training == was_training


# -----------------------------------------------------------------------------
# the loop learns, and History is consistent


def test_loss_decreases_and_history_is_consistent():
    x, y = make_data()
    model = make_model()
    h = train(model, as_batches(x, y), mse, steps=300, lr=3e-2, **QUIET)
    assert isinstance(h, History)
    assert len(h.steps) == len(h.losses) == 300
    assert h.steps == list(range(300))
    assert all(isinstance(v, float) for v in h.losses)
    assert h.evals == [] and h.last_eval() is None
    assert h.seconds > 0
    first, last = sum(h.losses[:8]) / 8, sum(h.losses[-8:]) / 8
    assert last < 0.01 * first, (first, last)


def test_evaluation_time_is_recorded_apart_from_the_training_time():
    x, y = make_data()
    calls = []

    def slow_eval(model):  # each evaluation takes at least 50 ms
        calls.append(1)
        time.sleep(0.05)
        return {"n": float(len(calls))}

    h = train(make_model(), as_batches(x, y), mse, steps=6, eval_fn=slow_eval, eval_every=2, **QUIET)
    assert len(calls) == 3
    assert h.eval_seconds >= 0.15                      # the three evaluations, and sleep never returns early
    assert 0 <= h.train_seconds == h.seconds - h.eval_seconds < h.seconds
    quiet = train(make_model(), as_batches(x, y), mse, steps=6, **QUIET)
    assert quiet.eval_seconds == 0 and quiet.train_seconds == quiet.seconds


def test_custom_optimizer_and_no_clipping():
    x, y = make_data()
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = train(model, as_batches(x, y), mse, steps=100, optimizer=opt, clip_grad_norm=None, **QUIET)
    assert h.losses[-1] < 0.05 * h.losses[0]
    assert opt.state_dict()["param_groups"][0]["lr"] == 0.1


def test_gradient_clipping_bounds_the_update():
    # With SGD(lr=1) the update is the (clipped) gradient itself, so its norm is <= the clip.
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    huge = [(torch.full((8, IN), 100.0), torch.full((8, OUT), -100.0))]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train(model, huge, mse, steps=1, optimizer=opt, clip_grad_norm=0.5, **QUIET)
    update = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert update.norm().item() == pytest.approx(0.5, rel=1e-4)


def test_train_restores_the_models_mode_and_trains_in_train_mode():
    x, y = make_data(64)
    model = make_model().eval()
    modes = []

    def loss_fn(m, batch):
        modes.append(m.training)
        return mse(m, batch)

    train(model, as_batches(x, y), loss_fn, steps=3, **QUIET)
    assert modes == [True, True, True]
    assert model.training is False


# -----------------------------------------------------------------------------
# determinism


def random_batches(step):
    # Draws from the global RNG, which train seeds: the seed decides the data.
    x = torch.randn(16, IN)
    return x, x.sum(dim=1, keepdim=True).repeat(1, OUT)


def test_same_seed_same_losses_different_seed_different_losses():
    def run(seed):
        # the model is built after seeding too, so the whole run depends on `seed` only
        set_seed(seed)
        model = nn.Sequential(nn.Linear(IN, 16), nn.Dropout(0.2), nn.Linear(16, OUT))
        return train(model, random_batches, mse, steps=20, seed=seed, **QUIET).losses

    assert run(1) == run(1)
    assert run(1) != run(2)


# -----------------------------------------------------------------------------
# the forms `batches` can take


def test_list_of_batches_is_cycled_across_epochs():
    x, y = make_data(64)
    batches = as_batches(x, y, size=16)  # 4 batches
    seen = []

    def loss_fn(model, batch):
        seen.append(batch[0])
        return mse(model, batch)

    train(make_model(), batches, loss_fn, steps=10, **QUIET)
    assert len(seen) == 10
    for i, got in enumerate(seen):
        assert torch.equal(got, batches[i % 4][0])


class Reiterable:
    """Like a DataLoader: every iter() starts a new generator over the data."""

    def __init__(self, x, y):
        self.x, self.y, self.passes = x, y, 0

    def __iter__(self):
        self.passes += 1
        for i in range(0, len(self.x), 16):
            yield self.x[i:i + 16], self.y[i:i + 16]


def test_iterable_whose_iter_is_a_generator_is_restarted():
    x, y = make_data(64)
    data = Reiterable(x, y)
    h = train(make_model(), data, mse, steps=10, **QUIET)
    assert len(h.losses) == 10
    assert data.passes == 3  # 4 + 4 + 2 batches


def test_dataloader_works():
    x, y = make_data(64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    h = train(make_model(), loader, mse, steps=9, **QUIET)
    assert len(h.losses) == 9


def test_callable_batches_gets_the_step():
    x, y = make_data(64)
    asked = []

    def batches(step):
        asked.append(step)
        return x[:16], y[:16]

    train(make_model(), batches, mse, steps=5, **QUIET)
    assert asked == [0, 1, 2, 3, 4]


def test_dict_batches_with_non_tensor_leaves():
    x, y = make_data(64)
    batches = [{"x": x[:32], "y": y[:32], "name": "first", "meta": {"n": 32}}]

    def loss_fn(model, batch):
        assert batch["name"] == "first" and batch["meta"] == {"n": 32}
        return nn.functional.mse_loss(model(batch["x"]), batch["y"])

    h = train(make_model(), batches, loss_fn, steps=3, **QUIET)
    assert len(h.losses) == 3


def test_one_shot_generator_that_runs_out_raises_clearly():
    x, y = make_data(64)
    gen = ((x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16))
    with pytest.raises(ValueError, match="batches ran out at step 4"):
        train(make_model(), gen, mse, steps=10, **QUIET)


def test_empty_batches_and_single_tensor_are_refused():
    with pytest.raises(ValueError, match="batches is empty"):
        train(make_model(), [], mse, steps=1, **QUIET)
    with pytest.raises(TypeError, match="single tensor"):
        train(make_model(), torch.zeros(4, IN), mse, steps=1, **QUIET)
    with pytest.raises(TypeError, match="batches must be"):
        train(make_model(), 42, mse, steps=1, **QUIET)


# -----------------------------------------------------------------------------
# evaluation


def test_eval_fn_every_n_steps_and_at_the_end_without_grad_in_eval_mode():
    x, y = make_data(64)
    calls, modes_after = [], []

    def eval_fn(model):
        calls.append((torch.is_grad_enabled(), model.training))
        return {"val_loss": mse(model, (x, y)), "acc": 0.5}  # a tensor and a float

    def loss_fn(model, batch):
        modes_after.append(model.training)
        return mse(model, batch)

    h = train(make_model(), as_batches(x, y), loss_fn, steps=25, eval_fn=eval_fn, eval_every=10, **QUIET)
    assert [e["step"] for e in h.evals] == [10, 20, 25]
    assert calls == [(False, False)] * 3
    assert all(modes_after)  # the train mode came back after every evaluation
    assert torch.is_grad_enabled()
    assert all(isinstance(e["val_loss"], float) and e["acc"] == 0.5 for e in h.evals)
    assert h.last_eval() is h.evals[-1]


def test_eval_at_the_end_is_not_repeated_and_defaults_to_end_only():
    x, y = make_data(64)
    h = train(make_model(), as_batches(x, y), mse, steps=20, eval_fn=lambda m: {"a": 1.0},
              eval_every=10, **QUIET)
    assert [e["step"] for e in h.evals] == [10, 20]
    h = train(make_model(), as_batches(x, y), mse, steps=7, eval_fn=lambda m: {"a": 1.0}, **QUIET)
    assert [e["step"] for e in h.evals] == [7]


def test_eval_restores_eval_mode_when_model_was_in_eval_mode():
    # the mode eval_fn found is restored; and train restores the mode it found
    model = make_model().eval()
    x, y = make_data(32)
    train(model, [(x, y)], mse, steps=2, eval_fn=lambda m: {"a": 1.0}, eval_every=1, **QUIET)
    assert model.training is False


def test_eval_fn_must_return_a_dict_of_numbers():
    x, y = make_data(32)
    with pytest.raises(TypeError, match="eval_fn must return a dict"):
        train(make_model(), [(x, y)], mse, steps=1, eval_fn=lambda m: 0.5, **QUIET)
    with pytest.raises(TypeError, match="acc"):
        train(make_model(), [(x, y)], mse, steps=1, eval_fn=lambda m: {"acc": "high"}, **QUIET)


def test_progress_bar_shows_loss_and_eval(capsys):
    x, y = make_data(32)
    train(make_model(), [(x, y)], mse, steps=3, eval_fn=lambda m: {"val_loss": 0.25},
          live_plot=False, desc="tiny run")
    err = capsys.readouterr().err
    assert "tiny run" in err and "loss=" in err and "val_loss=0.25" in err


# -----------------------------------------------------------------------------
# argument checking


@pytest.mark.parametrize("kwargs, name", [
    (dict(steps=0), "steps"),
    (dict(steps=-3), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(steps=True), "steps"),
    (dict(steps=5, lr=0), "lr"),
    (dict(steps=5, lr=-1e-3), "lr"),
    (dict(steps=5, lr=float("nan")), "lr"),
    (dict(steps=5, weight_decay=-0.1), "weight_decay"),
    (dict(steps=5, clip_grad_norm=0), "clip_grad_norm"),
    (dict(steps=5, eval_fn=lambda m: {}, eval_every=0), "eval_every"),
    (dict(steps=5, eval_every=10), "eval_every"),
    (dict(steps=5, plot_every=0), "plot_every"),
    (dict(steps=5, seed=-1), "seed"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    x, y = make_data(32)
    kwargs = {"progress": False, "live_plot": False, **kwargs}
    with pytest.raises(ValueError, match=name) as info:
        train(make_model(), [(x, y)], mse, **kwargs)
    assert "got" in str(info.value)


@pytest.mark.parametrize("args, kwargs, name", [
    (("not a model", None, mse), {}, "model"),
    ((None, None, "mse"), {}, "loss_fn"),
    ((None, None, mse), dict(optimizer="adam"), "optimizer"),
    ((None, None, mse), dict(eval_fn=3), "eval_fn"),
    ((None, None, mse), dict(live_plot="yes"), "live_plot"),
])
def test_bad_argument_types_raise_type_error_naming_them(args, kwargs, name):
    x, y = make_data(32)
    model, _, loss_fn = args
    model = make_model() if model is None else model
    with pytest.raises(TypeError, match=name):
        train(model, [(x, y)], loss_fn, steps=5, **QUIET, **kwargs)


def test_non_scalar_loss_raises_naming_loss_fn():
    x, y = make_data(32)
    per_example = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(dim=1)  # noqa: E731
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar tensor.*\(32,\)"):
        train(make_model(), [(x, y)], per_example, steps=3, **QUIET)
    with pytest.raises(TypeError, match="loss_fn must return a scalar tensor, got float"):
        train(make_model(), [(x, y)], lambda m, b: 0.5, steps=3, **QUIET)
    with pytest.raises(ValueError, match="does not require grad"):
        train(make_model(), [(x, y)], lambda m, b: mse(m, b).detach(), steps=3, **QUIET)


def test_nan_loss_raises_floating_point_error_naming_the_step():
    x, y = make_data(32)

    def loss_fn(model, batch):
        calls.append(1)
        loss = mse(model, batch)
        return loss * float("nan") if len(calls) == 4 else loss  # the 4th call is step 3

    calls = []
    with pytest.raises(FloatingPointError, match=r"step 3.*lower learning rate"):
        train(make_model(), [(x, y)], loss_fn, steps=10, **QUIET)


def test_diverging_training_raises_floating_point_error():
    x, y = make_data(32)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1e3)
    with pytest.raises(FloatingPointError, match="learning rate"):
        train(model, [(x * 100, y)], mse, steps=200, optimizer=opt, clip_grad_norm=None, **QUIET)


# -----------------------------------------------------------------------------
# device awareness


class RecordingTensor(torch.Tensor):
    """A tensor that remembers the devices it was moved to."""

    moves = []

    def to(self, *args, **kwargs):
        RecordingTensor.moves.append(torch.device(args[0]) if args else kwargs.get("device"))
        return self.as_subclass(torch.Tensor).to(*args, **kwargs)


def test_nested_batches_are_moved_to_the_models_device():
    RecordingTensor.moves = []
    x, y = make_data(32)
    batch = {"pair": (x.as_subclass(RecordingTensor), [y.as_subclass(RecordingTensor)]), "tag": "a"}
    seen = []

    def loss_fn(model, b):
        seen.append(b)
        return nn.functional.mse_loss(model(b["pair"][0]), b["pair"][1][0])

    model = make_model()
    train(model, [batch], loss_fn, steps=2, **QUIET)
    device = next(model.parameters()).device
    assert RecordingTensor.moves == [device] * 4  # two tensors, two steps
    b = seen[0]
    assert isinstance(b["pair"], tuple) and isinstance(b["pair"][1], list) and b["tag"] == "a"
    assert type(b["pair"][0]) is torch.Tensor  # the moved copy, not the original


def test_explicit_device_moves_model_and_batches():
    x, y = make_data(32)
    seen = []

    def loss_fn(model, b):
        seen.append((b[0].device, next(model.parameters()).device))
        return mse(model, b)

    train(make_model(), [(x, y)], loss_fn, steps=1, device="cpu", **QUIET)
    assert seen == [(torch.device("cpu"), torch.device("cpu"))]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cpu_batches_follow_a_gpu_model():
    x, y = make_data(32)
    model = make_model().cuda()
    h = train(model, [(x, y)], mse, steps=5, **QUIET)
    assert len(h.losses) == 5


# -----------------------------------------------------------------------------
# live plot


def test_live_plot_updates_its_lines_in_place():
    n_figs = len(plt.get_fignums())
    plot = LiveLossPlot(display=False)
    fig, raw, ema = plot.fig, plot.raw_line, plot.ema_line
    for n in (5, 40):
        steps = list(range(n))
        losses = [1.0 / (s + 1) + 0.05 * (s % 3) for s in steps]
        plot.update(steps, losses)
        assert plot.fig is fig and plot.raw_line is raw and plot.ema_line is ema
        assert list(raw.get_xdata()) == steps and list(raw.get_ydata()) == losses
        assert len(ema.get_xdata()) == len(ema.get_ydata()) == n
        assert ema.get_ydata()[0] == losses[0]
        (x0, x1), (y0, y1) = plot.ax.get_xlim(), plot.ax.get_ylim()
        assert x0 <= 0 and x1 >= n - 1 and y0 <= min(losses) and y1 >= max(losses)
        assert len(plt.get_fignums()) == n_figs
    plot.close()


def test_live_plot_bold_line_is_a_moving_average():
    plot = LiveLossPlot(display=False)
    losses = [1.0, 0.0] * 50  # pure noise around 0.5
    plot.update(range(100), losses)
    ema = plot.ema_line.get_ydata()
    assert all(0.3 < v < 0.7 for v in ema[20:])  # smooth where the raw losses jump 0 <-> 1


def test_live_plot_draws_eval_losses_and_floor():
    plot = LiveLossPlot(floor=0.25, display=False)
    assert plot.floor_line is not None and list(plot.floor_line.get_ydata()) == [0.25, 0.25]
    evals = [{"step": 10, "val_loss": 0.9, "acc": 0.1}, {"step": 20, "val_loss": 0.7, "acc": 0.2}]
    plot.update(range(20), [1.0] * 20, evals)
    assert set(plot.eval_lines) == {"val_loss"}  # "acc" has no "loss" in its name
    assert list(plot.eval_lines["val_loss"].get_xdata()) == [10, 20]
    assert list(plot.eval_lines["val_loss"].get_ydata()) == [0.9, 0.7]
    y0, y1 = plot.ax.get_ylim()
    assert y0 <= 0.25 and y1 >= 1.0  # the floor stays in view
    assert LiveLossPlot(display=False).floor_line is None


def test_live_plot_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        LiveLossPlot(display=False).update([0, 1, 2], [1.0])


def test_train_draws_into_a_given_live_plot():
    x, y = make_data(32)
    plot = LiveLossPlot(display=False)
    h = train(make_model(), [(x, y)], mse, steps=30, plot_every=25, progress=False, live_plot=plot,
              eval_fn=lambda m: {"val_loss": 0.5}, eval_every=10)
    assert list(plot.raw_line.get_xdata()) == h.steps  # the final update happened
    assert list(plot.eval_lines["val_loss"].get_xdata()) == [10, 20, 30]


def test_live_plot_is_off_by_default_outside_a_notebook():
    assert LiveLossPlot().display is False
    n_figs = len(plt.get_fignums())
    x, y = make_data(32)
    train(make_model(), [(x, y)], mse, steps=3, progress=False)
    assert len(plt.get_fignums()) == n_figs


def test_cosine_schedule_warms_up_then_decays():
    factors = [cosine_factor(s, 100) for s in range(100)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == pytest.approx(1.0)  # 5 warm-up steps
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))  # then never increases
    assert factors[-1] == pytest.approx(0.1, abs=0.01)


def test_train_applies_the_schedule():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = (torch.randn(8, 2), torch.randn(8, 1))
    train(model, [batch], lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), steps=20, optimizer=opt,
          schedule="cosine", progress=False, live_plot=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.1, rel=0.05)
    with pytest.raises(ValueError, match="schedule"):
        train(model, [batch], lambda m, b: m(b[0]).mean(), steps=1, schedule="linear", progress=False)
