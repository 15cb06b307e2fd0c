"""Every notebook, the way a learner meets it: in JupyterLab, in Chromium.

For each notebook: open it, clear its outputs, *Run > Run All Cells*, wait for every code cell,
and fail on any error, on a widget that does not render, on an output wider than the notebook
or on a picture shown twice. Then move every control of every widget as a person would (drag
or key a slider, pick a dropdown option, type and press Enter, click a toggle button) and check
that what the widget drives visibly changes: the picture's pixels, or the printed text. One
screenshot per widget state, and the timings, are saved under ``build/e2e/`` (printed at the end).
"""

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lab_driver import CONTROLS, Interaction, NotebookPage, NotebookRun

# Heaviest first, so that when tests run side by side (pytest -n 2) the long ones start early.
NOTEBOOKS = ["03_gpt", "04_bert", "06_frameworks", "02_transformer", "01_attention", "05_pytorch_basics"]
RUN_TIMEOUT_S = 900

# What to type into each text box, by its label: words each model knows.
TYPED = {
    "your own": "我昨天在公园里看见了一只猫",                        # the translators' Chinese
    "prompt": "the girl went to the park . she",                    # the story world's words
    "text": "anna went to the [MASK] . she read a book about [MASK] .",
    "sentence A": "the cat sat on the mat .",                      # MiniLM's WordPiece: any English
    "sentence B": "it was happy to be home .",
}

# README's gallery: these widget states, copied to $COURSE_E2E_GALLERY when it is set
# (COURSE_E2E_GALLERY=figures/jupyterlab python -m pytest tests/e2e refreshes them).
GALLERY = {"01_attention-w1-3": "attention_explorer.png", "02_transformer-w3-5": "transformer_attention.png",
           "03_gpt-w1-4": "generation_explorer.png", "04_bert-w3-4": "model_view.png",
           "04_bert-w1-4": "masking_explorer.png"}

# A change must reach the screen quickly; measured medians are far lower (see README).
MAX_LATENCY_MS = 5000

FLICKER_WATCH_JS = """cell => {
  const area = cell.querySelector('.jp-OutputArea');
  const h = area.getBoundingClientRect().height;
  cell.__watch = {start: h, min: h};
  cell.__observer = new ResizeObserver(() => {
    cell.__watch.min = Math.min(cell.__watch.min, area.getBoundingClientRect().height); });
  cell.__observer.observe(area);
}"""
FLICKER_READ_JS = """cell => {
  cell.__observer.disconnect();
  return {...cell.__watch, end: cell.querySelector('.jp-OutputArea').getBoundingClientRect().height};
}"""


def _save(run: NotebookRun, artifacts) -> None:
    path = artifacts / f"{run.notebook}.json"
    path.write_text(json.dumps(dataclasses.asdict(run), indent=1, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_its_widgets_respond(name, lab, page, artifacts):
    run = NotebookRun(notebook=name)
    shots = artifacts / name
    shots.mkdir(exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    notebook = NotebookPage(page, lab, f"{name}.ipynb")

    opened = time.monotonic()
    notebook.open()
    run.open_to_ready_s = time.monotonic() - opened

    def first_widget():
        if run.open_to_first_widget_s is None and notebook.first_control_visible():
            run.open_to_first_widget_s = time.monotonic() - opened

    started = time.monotonic()
    notebook.run_all(RUN_TIMEOUT_S, on_poll=first_widget)
    run.run_all_s = time.monotonic() - started
    run.code_cells = notebook.state()["code"]
    time.sleep(1.0)  # let the last widgets and pictures render

    assert notebook.layout_problems() == []

    run.widget_cells = notebook.widget_cells()
    for w, index in enumerate(run.widget_cells):
        cell = notebook.cells().nth(index)
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=shots / f"{name}-w{w + 1}-0-initial.png")
        controls = cell.locator(".jp-OutputArea").locator(CONTROLS)
        dragged = False
        for c in range(controls.count()):
            control = controls.nth(c)
            before, pixels_before = notebook.shown(cell), notebook.picture_pixels(cell)
            cell.evaluate(FLICKER_WATCH_JS)
            is_slider = "widget-slider" in control.get_attribute("class")
            # The first slider of each widget is dragged with the mouse; the others keyed.
            if is_slider and not dragged and _room_to_drag(control):
                action, dragged = notebook.drag(control), True
            else:
                action = notebook.change(control, TYPED)
            latency = notebook.wait_for_change(cell, before)
            if run.open_to_usable_s == 0.0:
                run.open_to_usable_s = time.monotonic() - opened
            heights = cell.evaluate(FLICKER_READ_JS)
            after, pixels_after = notebook.shown(cell), notebook.picture_pixels(cell)
            changed = _changed_fraction(pixels_before, pixels_after)
            shot = shots / f"{name}-w{w + 1}-{c + 1}-{_slug(action)}.png"
            cell.screenshot(path=shot)
            _to_gallery(f"{name}-w{w + 1}-{c + 1}", shot)
            run.interactions.append(Interaction(name, index, notebook.label(control), action, round(latency, 1),
                                                round(changed, 4), before["html"] != after["html"],
                                                str(shot.relative_to(artifacts))))
            assert changed > 0 or before["html"] != after["html"], f"{name} cell {index}: {action} changed nothing"
            # A picture replaced in place must not collapse first (the page would jump and flicker).
            assert heights["min"] >= min(heights["start"], heights["end"]) - 4, \
                f"{name} cell {index}: {action}: the output collapsed while redrawing: {heights}"
            assert latency < MAX_LATENCY_MS, f"{name} cell {index}: {action} took {latency:.0f} ms to show"
    if not run.widget_cells:
        run.open_to_usable_s = time.monotonic() - opened
    _save(run, artifacts)


def _to_gallery(state: str, shot: Path) -> None:
    folder = os.environ.get("COURSE_E2E_GALLERY")
    if folder and state in GALLERY:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(folder) / GALLERY[state])


def _room_to_drag(control) -> bool:
    handle = control.locator(".noUi-handle").first
    now, low, top = (float(handle.get_attribute(a)) for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax"))
    return top > low and (now - low) / (top - low) < 0.6


def _changed_fraction(a, b) -> float:
    """Fraction of pixels that differ between two pictures (1.0 if their sizes differ)."""
    if a is None or b is None:
        return 0.0
    if a.shape != b.shape:
        return 1.0
    return float(np.any(a != b, axis=-1).mean())


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.split(":")[0].strip().lower())[:30]
