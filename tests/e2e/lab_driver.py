"""Drive JupyterLab in Chromium the way a learner does: open a notebook, run it, move its widgets.

Two pieces, both used by ``test_notebooks_in_jupyterlab.py``:

* :class:`LabServer`: a real JupyterLab server on 127.0.0.1 with a random token, serving a
  throwaway copy of ``notebooks/`` (so nothing the browser does can touch the committed files),
  with its own settings, workspaces and runtime folders (news, update checks and autosave off).
* :class:`NotebookPage`: one notebook open in a Playwright page, with the few actions and
  probes the test needs (menus, cell states, widget controls, what a widget shows).
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

# JupyterLab user settings for a quiet, deterministic session.
LAB_SETTINGS = {
    # No "Jupyter news" toast and no update check: nothing may reach the network.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    # Render every cell, not only those on screen, so every output can be inspected.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # Never write the executed notebook back (it is a copy anyway).
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A JupyterLab server for one test session; use as a context manager."""

    def __init__(self, notebooks: Path, workdir: Path):
        self.workdir = Path(workdir)
        self.root = self.workdir / "notebooks"
        shutil.copytree(notebooks, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = self.workdir / "jupyterlab.log"
        self._process = None

    def _environment(self) -> dict:
        env = dict(os.environ)
        for name in ("config", "runtime", "data", "settings", "workspaces"):
            (self.workdir / name).mkdir(exist_ok=True)
        env.update(JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
                   JUPYTER_DATA_DIR=str(self.workdir / "data"),
                   JUPYTERLAB_SETTINGS_DIR=str(self.workdir / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "workspaces"))
        for name, value in LAB_SETTINGS.items():
            path = self.workdir / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value), encoding="utf-8")
        return env

    def __enter__(self) -> "LabServer":
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
                   "--ServerApp.port_retries=0"]
        self._log = open(self.log_path, "w", encoding="utf-8")
        self._process = subprocess.Popen(command, env=self._environment(), cwd=self.root,
                                         stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self._process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within 120 s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._log.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        """Address that opens ``notebook`` alone in a fresh workspace."""
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"


# --- probes evaluated in the page ------------------------------------------------------------

# The open notebook's model: how many code cells ran, errors, kernel state.
NOTEBOOK_STATE_JS = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.model.cells;
  const state = {code: 0, done: 0, errors: [], kernel: kernel ? kernel.status : 'none',
                 ready: panel.sessionContext.isReady, cells: cells.length};
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    state.code++;
    if (cell.executionCount !== null) state.done++;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error')
        state.errors.push({cell: i, ename: out.ename, evalue: out.evalue,
                           traceback: (out.traceback || []).join('\\n')});
    }
  }
  return state;
}"""

# Layout problems a learner would see: outputs wider than the notebook, widgets that failed to
# render, labels cut off ("temperat..."), and the same picture shown twice in one cell.
LAYOUT_PROBLEMS_JS = """() => {
  const problems = [];
  const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
  cells.forEach((cell, i) => {
    cell.querySelectorAll('.jp-OutputArea-output').forEach(out => {
      if (out.scrollWidth > out.clientWidth + 2)
        problems.push(`cell ${i}: output is ${out.scrollWidth}px wide in a ${out.clientWidth}px column`);
      if (out.getAttribute('data-mime-type') === 'application/vnd.jupyter.widget-view+json'
          && !out.querySelector('.jupyter-widgets'))
        problems.push(`cell ${i}: a widget did not render: "${out.innerText.slice(0, 80)}"`);
      if (/Error displaying widget|Error rendering output/.test(out.innerText))
        problems.push(`cell ${i}: ${out.innerText.slice(0, 120)}`);
    });
    cell.querySelectorAll('.jp-OutputArea .widget-label').forEach(label => {
      if (label.scrollWidth > label.clientWidth + 1)
        problems.push(`cell ${i}: the label "${label.innerText}" is cut off`);
    });
    const srcs = [...cell.querySelectorAll('.jp-OutputArea-output img')].map(img => img.src);
    if (new Set(srcs).size < srcs.length) problems.push(`cell ${i}: the same picture is shown twice`);
  });
  return problems;
}"""

CONTROLS = ".widget-slider, .widget-dropdown, .widget-text, .widget-toggle-buttons"


@dataclass
class Interaction:
    """One change of one control, and what it did to the picture or text the widget drives."""
    notebook: str
    cell: int
    control: str
    action: str
    latency_ms: float
    changed_pixels: float = 0.0          # fraction of the picture's pixels that changed
    text_changed: bool = False
    screenshot: str = ""


@dataclass
class NotebookRun:
    notebook: str
    open_to_ready_s: float = 0.0          # page opened -> kernel idle, ready to run
    open_to_first_widget_s: float | None = None   # page opened -> first widget control on screen
    run_all_s: float = 0.0                # "Run All Cells" -> every code cell finished
    open_to_usable_s: float = 0.0         # page opened -> the first widget answers a change
    code_cells: int = 0
    widget_cells: list = field(default_factory=list)
    interactions: list = field(default_factory=list)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class NotebookPage:
    """One notebook open in JupyterLab."""

    def __init__(self, page, lab: LabServer, notebook: str):
        self.page, self.lab, self.notebook = page, lab, notebook

    # --- opening and running -------------------------------------------------------------------
    def state(self) -> dict | None:
        return self.page.evaluate(NOTEBOOK_STATE_JS)

    def open(self, timeout_s: float = 120) -> None:
        self.page.goto(self.lab.url(self.notebook))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.state()
            if state and state["ready"] and state["kernel"] == "idle" and state["cells"] > 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.notebook}: the kernel was not ready after {timeout_s} s: {self.state()}")

    def menu(self, top: str, item: str) -> None:
        """Click ``top`` in the menu bar, then ``item`` in the menu it opens."""
        self.page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile(rf"^{top}$")).click()
        self.page.locator(".lm-Menu .lm-Menu-item:visible",
                          has_text=re.compile(rf"^{re.escape(item)}")).first.click()

    def run_all(self, timeout_s: float, on_poll=None) -> None:
        """Clear every output, then Run > Run All Cells, and wait until every code cell has run.

        Fails at once, with the traceback, when a cell raises (JupyterLab then stops running).
        ``on_poll()`` is called between polls (to time the first widget).
        """
        self.menu("Edit", "Clear Outputs of All Cells")
        state = self.state()
        assert state["done"] == 0, f"{self.notebook}: outputs were not cleared: {state}"
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout_s
        idle_polls = 0
        while time.monotonic() < deadline:
            state = self.state()
            if state["errors"]:
                e = state["errors"][0]
                raise AssertionError(f"{self.notebook}, cell {e['cell']}: {e['ename']}: {e['evalue']}\n"
                                     + _strip_ansi(e["traceback"]))
            if on_poll:
                on_poll()
            # idle flickers between cells: require every cell done and idle twice in a row
            idle_polls = idle_polls + 1 if state["done"] == state["code"] and state["kernel"] == "idle" else 0
            if idle_polls >= 2:
                return
            time.sleep(0.25)
        raise AssertionError(f"{self.notebook}: not finished after {timeout_s} s: {state}")

    def layout_problems(self) -> list[str]:
        return self.page.evaluate(LAYOUT_PROBLEMS_JS)

    # --- widgets -------------------------------------------------------------------------------
    def cells(self):
        return self.page.locator(".jp-Notebook .jp-Cell")

    def widget_cells(self) -> list[int]:
        """Indices of cells whose outputs hold at least one control (progress bars are not widgets to move)."""
        return self.page.evaluate(f"""() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]
            .map((cell, i) => cell.querySelector('.jp-OutputArea')?.querySelectorAll('{CONTROLS}').length ? i : -1)
            .filter(i => i >= 0)""")

    def first_control_visible(self) -> bool:
        return self.page.locator(".jp-OutputArea").locator(CONTROLS).count() > 0

    def shown(self, cell) -> dict:
        """What a widget cell shows besides its controls: its pictures and its HTML text."""
        return {"images": cell.locator(".jp-OutputArea-output img").evaluate_all("els => els.map(e => e.src)"),
                "html": cell.locator(".widget-html-content").evaluate_all("els => els.map(e => e.innerText)")}

    def picture_pixels(self, cell):
        """The cell's pictures as one RGB array (their screenshots stacked), or None without pictures."""
        import numpy as np
        from PIL import Image

        images = cell.locator(".jp-OutputArea-output img")
        if images.count() == 0:
            return None
        shots = [np.asarray(Image.open(io.BytesIO(images.nth(k).screenshot())).convert("RGB"))
                 for k in range(images.count())]
        width = max(s.shape[1] for s in shots)
        return np.concatenate([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in shots])

    def wait_for_change(self, cell, before: dict, timeout_s: float = 30) -> float:
        """Wait until what ``cell`` shows differs from ``before`` and the kernel is idle; return ms."""
        start = time.monotonic()
        changed_at = None
        while time.monotonic() - start < timeout_s:
            now = self.shown(cell)
            if changed_at is None and now != before:
                changed_at = time.monotonic()
            if changed_at is not None and self.state()["kernel"] == "idle":
                # settle: one update can arrive as several messages (picture, then status text)
                settled = self.shown(cell)
                time.sleep(0.3)
                if self.shown(cell) == settled:
                    return 1000 * (changed_at - start)
            time.sleep(0.03)
        raise AssertionError(f"{self.notebook}: nothing the widget shows changed within {timeout_s} s")

    # --- changing a control as a person would ---------------------------------------------------
    def change(self, control, typed: dict[str, str]) -> str:
        """Move one control: key a slider's handle three steps, pick another dropdown option, type
        and press Enter, or click another toggle button. Returns what was done, for the report."""
        kind = control.get_attribute("class")
        label = self.label(control)
        if "widget-slider" in kind:
            handle = control.locator(".noUi-handle").first
            now, top = float(handle.get_attribute("aria-valuenow")), float(handle.get_attribute("aria-valuemax"))
            key = "ArrowLeft" if now >= top else "ArrowRight"
            handle.focus()
            for _ in range(3):  # three steps: one step of top-k (0 -> 1) would make sampling greedy
                handle.press(key)
            return f"{label}: {key} x3"
        if "widget-dropdown" in kind:
            select = control.locator("select")
            options = select.locator("option").all_inner_texts()
            index = select.evaluate("s => s.selectedIndex")
            select.select_option(index=(index + 1) % len(options))
            return f"{label}: chose {options[(index + 1) % len(options)]!r}"
        if "widget-text" in kind:
            if label not in typed:
                raise AssertionError(f"{self.notebook}: no text to type into the box {label!r}: add one to TYPED")
            box = control.locator("input")
            box.fill(typed[label])
            box.press("Enter")
            return f"{label}: typed {typed[label]!r}"
        if "widget-toggle-buttons" in kind:
            button = control.locator("button:not(.mod-active)").last
            name = button.inner_text()
            button.click()
            return f"{label}: clicked {name!r}"
        raise AssertionError(f"unknown control {kind}")

    def drag(self, control) -> str:
        """Drag a slider's handle a quarter of the track to the right with the mouse."""
        handle = control.locator(".noUi-handle").first
        track = control.locator(".noUi-target").first.bounding_box()
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        for k in range(1, 6):
            self.page.mouse.move(x + k * track["width"] / 20, y)
        self.page.mouse.up()
        return f"{self.label(control)}: dragged"

    @staticmethod
    def label(control) -> str:
        labels = control.locator(".widget-label")
        return labels.first.inner_text().strip() if labels.count() else "?"
