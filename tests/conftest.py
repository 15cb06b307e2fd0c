import json
import os
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# The browser tests' screenshots and timings land here; the terminal summary prints the folder.
E2E_ARTIFACTS = Path(os.environ.get("COURSE_E2E_ARTIFACTS", ROOT / "build" / "e2e"))

# `python -m pytest` runs two test processes side by side (pyproject: -n 2). Each then keeps to
# one torch thread, and so do the notebook kernels it starts (they inherit OMP_NUM_THREADS):
# two processes on two threads each would fight over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# Longest first, so that the two processes finish together: the browser tests, then the
# notebooks under nbval (slowest first), then the unit tests.
_NOTEBOOK_ORDER = ["03_gpt", "04_bert", "06_frameworks", "02_transformer", "01_attention", "05_pytorch_basics"]


def _rank(item) -> tuple:
    path = Path(str(item.path))
    if "e2e" in path.parts:
        return (0, 0)
    if path.suffix == ".ipynb":
        return (1, _NOTEBOOK_ORDER.index(path.stem) if path.stem in _NOTEBOOK_ORDER else 99)
    return (2, 0)


def pytest_collection_modifyitems(items):
    items[:] = [item for _, item in sorted(enumerate(items), key=lambda pair: (_rank(pair[1]), pair[0]))]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser tests save screenshots and timings."""
    E2E_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return E2E_ARTIFACTS


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread.

    Their tensors are tiny: extra threads only add overhead, and they stall badly when
    another process keeps a core busy. Opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_sessionstart(session):
    session.config._course_started = time.time()


def pytest_terminal_summary(terminalreporter, config):
    """After the browser tests: where their screenshots are, and how long each notebook took."""
    started = getattr(config, "_course_started", 0)
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(E2E_ARTIFACTS.glob("*.json"))
            if p.stat().st_mtime >= started]
    if not runs:
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebooks in JupyterLab (Chromium)")
    write(f"screenshots and timings: {E2E_ARTIFACTS}")
    write(f"{'notebook':<20}{'ready':>8}{'1st widget':>12}{'run all':>9}{'usable':>9}  widget changes (median, max ms)")
    for r in sorted(runs, key=lambda r: r["notebook"]):
        first = f"{r['open_to_first_widget_s']:.1f} s" if r["open_to_first_widget_s"] is not None else "-"
        ms = sorted(i["latency_ms"] for i in r["interactions"])
        latency = f"{len(ms)}: {ms[len(ms) // 2]:.0f}, {ms[-1]:.0f}" if ms else "-"
        write(f"{r['notebook']:<20}{r['open_to_ready_s']:>6.1f} s{first:>12}{r['run_all_s']:>7.0f} s"
              f"{r['open_to_usable_s']:>7.0f} s  {latency}")
    write(f"whole course in the browser: {sum(r['run_all_s'] for r in runs):.0f} s of Run All Cells")
