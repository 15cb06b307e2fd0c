"""Exact resume: a run saved half way and resumed from scratch ends bit for bit where an
uninterrupted run ends, even though its model uses dropout and its batches are drawn at random,
because the checkpoint also holds the random states (``save_checkpoint(rng=True)``, the default,
and ``load_checkpoint(restore_rng=True)``). Without them it does not: the test of the old way
shows the new feature is what makes the others pass.

Every model here is a tiny MLP (4 -> 32 -> 2) on a synthetic regression: the file runs in seconds.
"""

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from regression_task import IN, OUT, make_data

from course_lib.checkpoints import load_checkpoint, save_checkpoint
from course_lib.training import set_seed, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS, HALF = 40, 20
X, Y = make_data(256)


def make_model() -> nn.Module:
    """Dropout draws a new random mask at every training step: the resume test's hard part."""
    return nn.Sequential(nn.Linear(IN, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, OUT))


def fresh_run(seed=0):
    """Everything built from scratch: seeded model, new AdamW (its moments start empty)."""
    set_seed(seed)
    model = make_model()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)


def draw_batch():
    """A random batch that uses all three global random sources: torch picks the rows, NumPy adds
    noise to the inputs, Python's random decides whether to flip their sign (an 'augmentation')."""
    rows = torch.randint(len(X), (16,))
    noise = torch.from_numpy(np.random.standard_normal((16, IN)).astype(np.float32))
    sign = -1.0 if random.random() < 0.5 else 1.0
    return sign * (X[rows] + 0.05 * noise), Y[rows]


def loss_of(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def run(model, optimizer, steps):
    """``steps`` updates in train mode; returns the losses."""
    model.train()
    losses = []
    for _ in range(steps):
        loss = loss_of(model, draw_batch())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def disturb_every_global_rng():
    """What happens between saving and resuming (another cell, another process): different states."""
    random.seed(12345)
    np.random.seed(12345)
    torch.manual_seed(12345)
    torch.rand(7), np.random.rand(3), random.random()


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def assert_identical(a: nn.Module, b: nn.Module):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), f"{name} differs by up to {(p - q).abs().max().item():.3g}"


def resumed(tmp_path, *, rng: bool):
    """HALF steps, save, rebuild everything, disturb the global RNGs, load, HALF more steps."""
    model, optimizer = fresh_run()
    first = run(model, optimizer, HALF)
    save_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, step=HALF, rng=rng)
    del model, optimizer

    model, optimizer = fresh_run(seed=7)  # another seed: nothing of the first run survives in memory
    disturb_every_global_rng()
    info = load_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, restore_rng=rng)
    assert info["step"] == HALF
    return model, optimizer, first + run(model, optimizer, STEPS - HALF)


def test_resume_with_dropout_and_random_batches_is_bit_for_bit(tmp_path):
    straight, straight_opt = fresh_run()
    straight_losses = run(straight, straight_opt, STEPS)
    next_draws = (torch.rand(3), np.random.rand(), random.random())

    model, optimizer, losses = resumed(tmp_path, rng=True)
    assert losses == straight_losses  # every float, exactly
    assert_identical(straight, model)
    for p, q in zip(straight.parameters(), model.parameters()):  # AdamW's moments too
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(straight_opt.state[p][key], optimizer.state[q][key])
    # and every random stream continues after the resumed run as after the straight one
    assert torch.equal(torch.rand(3), next_draws[0])
    assert (np.random.rand(), random.random()) == next_draws[1:]


def test_resume_without_the_random_states_is_not_bit_for_bit(tmp_path):
    """The old way (model, optimizer and step only): after the resume, dropout masks and batches
    differ from the uninterrupted run's, so the weights do too."""
    straight, straight_opt = fresh_run()
    straight_losses = run(straight, straight_opt, STEPS)

    model, _, losses = resumed(tmp_path, rng=False)
    assert losses[:HALF] == straight_losses[:HALF]  # identical up to the save ...
    assert losses[HALF] != straight_losses[HALF]  # ... then another batch and another mask
    assert max_difference(straight, model) > 1e-4


@pytest.mark.parametrize("source", ["python", "numpy", "torch"])
def test_each_global_random_state_is_needed(tmp_path, source):
    """Restore the states, then disturb one source only: the resume is no longer exact. So each
    of the three sources matters here, and the exact test above really checks all three."""
    straight, straight_opt = fresh_run()
    run(straight, straight_opt, STEPS)

    model, optimizer = fresh_run()
    run(model, optimizer, HALF)
    save_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, step=HALF)
    model, optimizer = fresh_run(seed=7)
    load_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, restore_rng=True)
    {"python": lambda: random.random(), "numpy": lambda: np.random.rand(),
     "torch": lambda: torch.rand(1)}[source]()  # one extra draw from one source
    run(model, optimizer, STEPS - HALF)
    assert max_difference(straight, model) > 0


# -----------------------------------------------------------------------------
# a DataLoader that shuffles with its own generator


def loader_run(generator_seed=0):
    """Model, optimizer and a shuffling DataLoader with its own seeded generator."""
    model, optimizer = fresh_run()
    g = torch.Generator().manual_seed(generator_seed)
    loader = DataLoader(TensorDataset(X, Y), batch_size=64, shuffle=True, generator=g)  # 4 batches per epoch
    return model, optimizer, loader, g


def epochs(model, optimizer, loader, n):
    model.train()
    losses = []
    for _ in range(n):
        for batch in loader:
            loss = loss_of(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def test_resume_with_a_shuffling_dataloader_restores_its_generator(tmp_path):
    model, optimizer, loader, _ = loader_run()
    straight_losses = epochs(model, optimizer, loader, 10)  # 40 steps
    straight = model

    model, optimizer, loader, g = loader_run()
    first = epochs(model, optimizer, loader, 5)  # 20 steps: saved at an epoch's end
    save_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, step=20, generators={"loader": g})

    model, optimizer, loader, g = loader_run(generator_seed=999)  # a new loader, another order
    disturb_every_global_rng()
    load_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, restore_rng=True, generators={"loader": g})
    assert first + epochs(model, optimizer, loader, 5) == straight_losses
    assert_identical(straight, model)

    # without the loader's state (same file, global states restored) the order differs
    model, optimizer, loader, g = loader_run(generator_seed=999)
    load_checkpoint(tmp_path / "half.pt", model, optimizer=optimizer, restore_rng=True, generators={"loader": g})
    g.manual_seed(999)  # what a resume that forgot the generator would have
    epochs(model, optimizer, loader, 5)
    assert max_difference(straight, model) > 0


# -----------------------------------------------------------------------------
# through the course's train()


def test_resume_through_train_is_bit_for_bit(tmp_path):
    quiet = dict(progress=False, live_plot=False)
    batches = lambda step: draw_batch()  # noqa: E731  random batches from the global states

    model, optimizer = fresh_run()
    straight = train(model, batches, loss_of, steps=STEPS, optimizer=optimizer, seed=0, **quiet)
    straight_model = model

    model, optimizer = fresh_run()
    first = train(model, batches, loss_of, steps=HALF, optimizer=optimizer, seed=0,
                  checkpoint_path=tmp_path / "run.pt", **quiet)  # saves the random states too
    model, optimizer = fresh_run(seed=7)
    disturb_every_global_rng()
    load_checkpoint(tmp_path / "run.pt", model, optimizer=optimizer, restore_rng=True)
    second = train(model, batches, loss_of, steps=STEPS - HALF, optimizer=optimizer, seed=None, **quiet)

    assert first.losses + second.losses == straight.losses
    assert_identical(straight_model, model)
