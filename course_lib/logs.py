"""Reading training logs back: what ``SummaryWriter`` wrote, as plain lists a notebook can plot.

Notebook 05 logs with ``torch.utils.tensorboard.SummaryWriter`` and plots the logs with
matplotlib, so no TensorBoard server is needed to see them.
"""

from __future__ import annotations

import pathlib

__all__ = ["read_scalars"]


def read_scalars(logdir) -> dict[str, tuple[list[int], list[float]]]:
    """Everything ``SummaryWriter.add_scalar`` wrote under ``logdir``: tag -> (steps, values)."""
    # tensorboard is an optional dependency: it loads only when logs are read
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = pathlib.Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(f"no log folder at {logdir}")
    events = EventAccumulator(str(logdir))
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        out[tag] = ([p.step for p in points], [p.value for p in points])
    return out
