"""Training logs: what ``SummaryWriter`` wrote, read back offline, and the real TensorBoard started and stopped.

Notebook 05 logs with ``torch.utils.tensorboard.SummaryWriter``. Two ways to look at the logs:

- offline, with no server: :func:`read_scalars` and :func:`read_images` return plain Python
  values and NumPy arrays a notebook can plot and check with ``assert``;
  :func:`repeated_steps` finds the classic mistake of two runs written into one folder;
- the real board, in a browser: ``tensorboard --logdir runs --port 6006`` in a terminal, or
  ``%load_ext tensorboard`` then ``%tensorboard --logdir runs --port 6006`` in a notebook.
  :func:`find_tensorboard`, :func:`free_port` and :func:`stop_tensorboard` make that work the
  same on every machine: the magic finds the ``tensorboard`` command, two notebooks never fight
  over one port, and no server is left running when the lesson is over.

Only the standard library is imported at the top: ``tensorboard`` (and PIL) load when used.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import numbers
import os
import pathlib
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections import Counter

__all__ = ["read_scalars", "read_images", "repeated_steps", "free_port", "find_tensorboard",
           "stop_tensorboard"]

_EVENTS = "events.out.tfevents.*"  # the names SummaryWriter gives its files


def _log_folder(logdir) -> pathlib.Path:
    """``logdir`` checked: an existing folder holding event files (the errors say what to pass instead)."""
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
    return logdir


def read_scalars(logdir) -> dict[str, tuple[list[int], list[float]]]:
    """Everything ``SummaryWriter.add_scalar`` wrote under ``logdir``: tag -> (steps, values).

    ``logdir`` is the folder given to ``SummaryWriter`` (a str or a path). Refused: another type
    (``TypeError``), a missing folder (``FileNotFoundError``), a file, and a folder without
    event files (``ValueError``, naming the sub-folders that have some: a run's own folder is
    read, not its parent).

    All event files in the folder are read, oldest first, and their points are returned in
    that order, as TensorBoard draws them. If two runs wrote into the same folder, the steps
    go 0, 1, ..., 59 and then 0, 1, ..., 59 again, and the line zig-zags back:
    :func:`repeated_steps` finds that. One folder per run avoids it.
    """
    logdir = _log_folder(logdir)
    # tensorboard is an optional dependency: it loads only when logs are read
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir))
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        out[tag] = ([p.step for p in points], [p.value for p in points])
    return out


def read_images(logdir) -> dict:
    """Every picture ``SummaryWriter.add_image`` wrote under ``logdir``: tag -> [(step, image), ...].

    Each image is a NumPy uint8 array of shape (H, W, C), exactly the pixels TensorBoard
    shows: ``add_image`` scaled a float picture by 255 (floats are expected in [0, 1]), cut
    what fell outside [0, 255], rounded down, and stored the result as a PNG. C is 3 for RGB,
    4 for RGBA, 1 for a grey picture. Every picture is kept (TensorBoard itself keeps only a
    sample of 10 per tag when there are many), in the order they were written.

    ``logdir`` is checked as in :func:`read_scalars`.
    """
    logdir = _log_folder(logdir)
    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    # size_guidance 0 = keep everything; the default keeps a random sample of 4 images per tag
    events = EventAccumulator(str(logdir), size_guidance={IMAGES: 0})
    events.Reload()
    out = {}
    for tag in events.Tags()["images"]:
        pictures = []
        for event in events.Images(tag):
            with Image.open(io.BytesIO(event.encoded_image_string)) as png:
                pixels = np.asarray(png.convert("RGB") if png.mode == "P" else png, dtype=np.uint8)
            if pixels.ndim == 2:  # a grey picture: keep the channel axis so every image is (H, W, C)
                pixels = pixels[:, :, None]
            pictures.append((event.step, pixels))
        out[tag] = pictures
    return out


def repeated_steps(logdir) -> dict[str, list[int]]:
    """The tags logged more than once at the same step in ``logdir``: tag -> those steps, sorted.

    An empty dict means every (tag, step) was written once: one run, one folder. A tag
    listed here usually means two runs wrote into the same folder: the same script run twice
    with the same ``SummaryWriter("runs/x")``, or a notebook cell run again. ``SummaryWriter``
    never overwrites: each writer adds a new event file beside the old ones, and TensorBoard
    reads them all as one run, so the loss curve runs 0..59, jumps back to step 0 and runs
    again (a zig-zag), and the image slider holds two pictures per step. The cure: one folder
    per run (``runs/<name>``, a new name or an emptied folder each time).

    Counts every kind of summary (scalars, images, histograms, text) in the folder's own event
    files, not in its sub-folders (those are other runs). ``logdir`` is checked as in
    :func:`read_scalars`.
    """
    logdir = _log_folder(logdir)
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    seen = Counter()
    for path in sorted(logdir.glob(_EVENTS)):
        for event in LegacyEventFileLoader(str(path)).Load():
            if event.HasField("summary"):
                seen.update((value.tag, event.step) for value in event.summary.value)
    repeats = {}
    for (tag, step), count in seen.items():
        if count > 1:
            repeats.setdefault(tag, []).append(step)
    return {tag: sorted(steps) for tag, steps in sorted(repeats.items())}


# ---------------------------------------------------------------------------
# the real board
# ---------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that no program is listening on right now, e.g. for ``--port``.

    TensorBoard's usual port 6006 may be taken: another board, another notebook, the same
    notebook run by the tests at the same time. The operating system picks a free port when
    asked for port 0; the socket is closed at once, so the port is free for the board (another
    program could take it in that instant; that is very unlikely, and TensorBoard would then
    say the port is in use).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _script_beside_python() -> pathlib.Path | None:
    """The ``tensorboard`` command installed with this Python's packages, if there is one."""
    name = "tensorboard.exe" if os.name == "nt" else "tensorboard"
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    for folder in folders:
        if folder and os.path.isfile(os.path.join(folder, name)):
            return pathlib.Path(folder, name)
    return None


def find_tensorboard() -> str:
    """Where the ``tensorboard`` command is, and make sure ``%tensorboard`` uses that one.

    The ``%tensorboard`` magic starts the command named ``tensorboard`` found on the PATH (or
    the one the environment variable ``TENSORBOARD_BINARY`` names). When JupyterLab was started
    without activating the course's environment (``.venv/bin/python -m jupyterlab``, or a
    kernel registered from it), the PATH does not hold ``.venv/bin`` (``.venv\\Scripts`` on
    Windows), and the magic fails with "Could not find `tensorboard`" although the package is
    installed. This points ``TENSORBOARD_BINARY`` at the command installed with this Python
    (the notebook's own environment), unless it is set already. Returns the command's path.

    Raises ``ModuleNotFoundError`` when the ``tensorboard`` package is not installed, and
    ``FileNotFoundError`` when it is but no ``tensorboard`` command can be found.
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise ModuleNotFoundError("the tensorboard package is not installed in this Python "
                                  f"({sys.executable}): pip install tensorboard")
    if os.environ.get("TENSORBOARD_BINARY"):
        return os.environ["TENSORBOARD_BINARY"]
    beside = _script_beside_python()
    on_path = shutil.which("tensorboard")
    if beside is not None:
        if on_path is None or os.path.normcase(os.path.realpath(on_path)) != \
                os.path.normcase(os.path.realpath(beside)):
            # another Python's tensorboard first on the PATH (or none): use this environment's
            os.environ["TENSORBOARD_BINARY"] = str(beside)
        return str(beside)
    if on_path is not None:
        return on_path
    raise FileNotFoundError(f"the tensorboard package is installed but no tensorboard command was found "
                            f"beside {sys.executable} nor on the PATH; "
                            f"start the board with: {sys.executable} -m tensorboard.main --logdir ...")


def _served_folder(info) -> str:
    """The absolute, normalised folder a running board (a ``TensorBoardInfo``) serves."""
    logdir = info.logdir
    if not os.path.isabs(logdir):
        # a relative --logdir is relative to the folder the board was started from, which
        # tensorboard.manager records (base64 JSON) in the cache key
        try:
            start = json.loads(base64.b64decode(info.cache_key))["working_directory"]
        except (ValueError, KeyError, TypeError):
            start = os.getcwd()
        logdir = os.path.join(start, logdir)
    return os.path.normcase(os.path.realpath(logdir))


def _answers(info, timeout: float = 2.0) -> bool:
    """True when the board ``info`` describes answers HTTP on its port and serves its logdir."""
    url = f"http://localhost:{info.port}{info.path_prefix.rstrip('/')}/data/logdir"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=timeout) as reply:
            return json.load(reply).get("logdir") == info.logdir
    except (OSError, ValueError):
        return False


def _info_file(pid: int) -> str:
    # where tensorboard.manager keeps one small file per running board
    return os.path.join(tempfile.gettempdir(), ".tensorboard-info", f"pid-{pid}.info")


def _our_child_running(pid: int) -> bool:
    """True while ``pid`` is a child of this process that has not exited; collects it once it has.

    A board started by ``%tensorboard`` is a child of the notebook's kernel: once it exits it
    must be collected (``waitpid``), or it stays listed as a defunct ("zombie") process.
    """
    if os.name == "nt":
        return False  # no zombies on Windows
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # not our child (or already collected): its own parent collects it
    return done == 0


def stop_tensorboard(logdir, timeout: float = 10.0) -> list:
    """Stop every TensorBoard serving ``logdir`` on this machine; returns what was stopped.

    Works for boards started by ``%tensorboard``, by ``tensorboard --logdir ...`` in a terminal
    or by ``python -m tensorboard.main``: each running board leaves a small file in the
    temporary folder saying its process id, port and logdir (``tensorboard.manager.get_all()``
    reads them; ``%tensorboard`` uses them to reuse a board started with the same arguments).
    Stop a board when you are done: one started from a terminal, or by ``python -m
    tensorboard.main``, keeps running until stopped. (One started by ``%tensorboard`` is a child
    of the notebook's kernel: ipykernel also stops it when the kernel is interrupted, restarted
    or shut down, but not when the kernel dies, nor when the notebook is only closed.)

    A board is stopped only if it answers on its port and serves ``logdir`` (so a stale
    record can never make this stop an unrelated process that got the same id). It is asked to
    stop (SIGTERM; on Windows the process is ended), and this waits up to ``timeout`` seconds
    until its port no longer answers; on Linux and macOS a board still answering then is
    killed (SIGKILL). Records of boards that are gone (killed, machine restarted) are deleted,
    so that ``%tensorboard`` does not "reuse" a dead board.

    Returns the ``TensorBoardInfo`` records (``.pid``, ``.port``, ``.logdir``) of the boards
    stopped, an empty list when none was running. ``logdir`` is a str or path, compared as an
    absolute path (a relative ``--logdir`` is taken relative to the folder its board started
    in); the folder need not exist any more. Raises ``RuntimeError`` if a board still answers
    after all that.
    """
    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(f"logdir must be a str or a pathlib.Path naming the folder the board serves, "
                        f"got {type(logdir).__name__} {logdir!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    from tensorboard import manager

    target = os.path.normcase(os.path.realpath(os.fspath(logdir)))
    stopped = []
    for info in manager.get_all():
        if _served_folder(info) != target:
            continue
        if _answers(info):
            _terminate(info, timeout)
            stopped.append(info)
        try:  # the board removes its record when it exits cleanly; not when killed, nor on Windows
            os.remove(_info_file(info.pid))
        except OSError:
            pass
    return stopped


def _terminate(info, timeout: float) -> None:
    """Ask the board to stop, then insist; return once its port is closed and it has exited."""
    signals = [signal.SIGTERM] + ([signal.SIGKILL] if hasattr(signal, "SIGKILL") else [])
    for sig in signals:
        try:
            os.kill(info.pid, sig)  # on Windows: TerminateProcess
        except OSError:
            pass  # already gone
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _our_child_running(info.pid) and not _answers(info, timeout=1.0):
                return
            time.sleep(0.1)
    raise RuntimeError(f"TensorBoard (pid {info.pid}) still answers on port {info.port} after "
                       f"{timeout:g} s; stop it by hand (Linux/macOS: kill {info.pid}; "
                       f"Windows: taskkill /PID {info.pid} /F)")
