"""Reading training logs back: what ``SummaryWriter`` wrote, as plain lists a notebook can plot.

Notebook 05 logs with ``torch.utils.tensorboard.SummaryWriter`` and plots the logs with
matplotlib, so no TensorBoard server is needed to see them.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["read_scalars"]

_EVENTS = "events.out.tfevents.*"  # the names SummaryWriter gives its files


def read_scalars(logdir) -> dict[str, tuple[list[int], list[float]]]:
    """Everything ``SummaryWriter.add_scalar`` wrote under ``logdir``: tag -> (steps, values).

    ``logdir`` is the folder given to ``SummaryWriter`` (a str or a path). Refused: another type
    (``TypeError``), a missing folder (``FileNotFoundError``), a file, and a folder without
    event files (``ValueError``, naming the sub-folders that have some: a run's own folder is
    read, not its parent).
    """
    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(f"logdir must be a str or a pathlib.Path naming a log folder, "
                        f"got {type(logdir).__name__} {logdir!r}")
    logdir = pathlib.Path(logdir)
    if not logdir.exists():
        raise FileNotFoundError(f"no log folder at {logdir}")
    if not logdir.is_dir():
        raise ValueError(f"logdir={str(logdir)!r} is a file: pass the folder that SummaryWriter wrote into")
    if not any(logdir.glob(_EVENTS)):
        runs = sorted({str(p.parent.relative_to(logdir)) for p in logdir.glob("*/" + _EVENTS)})
        inside = (f"; its sub-folders {', '.join(map(repr, runs[:5]))} have some: read one of those"
                  if runs else ": was anything logged into it with SummaryWriter?")
        raise ValueError(f"logdir={str(logdir)!r} holds no TensorBoard event files ({_EVENTS}){inside}")

    # tensorboard is an optional dependency: it loads only when logs are read
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir))
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        out[tag] = ([p.step for p in points], [p.value for p in points])
    return out
