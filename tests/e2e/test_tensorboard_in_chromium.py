"""The real TensorBoard, the way a learner meets it: logs written with SummaryWriter, the board started
with ``tensorboard --logdir ... --port ...``, opened in Chromium.

Checks that the board lists the scalar tag ``loss/train`` and draws its chart (the chart's canvas
has pixels of its own), and that the time-series dashboard shows the image tags ``insects`` and
``attention/head0`` with pictures the browser has loaded. Then the board is stopped with
``course_lib.logs.stop_tensorboard`` and must be gone.

The screenshot goes to the test's temporary folder; with ``COURSE_REFRESH_FIGURES=1`` it replaces
``figures/tensorboard_board.png``, the picture notebook 05 shows to readers on GitHub.
"""

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from course_lib.logs import free_port, stop_tensorboard

pytest.importorskip("tensorboard", reason="tensorboard is not installed: no board to open")

ROOT = Path(__file__).resolve().parents[2]
FIGURE = ROOT / "figures" / "tensorboard_board.png"
START_TIMEOUT_S = 90      # two busy cores: TensorBoard usually answers in 1 to 3 s
PAGE_TIMEOUT_MS = 45_000  # the dashboard's first load, its tags, its pictures
IMAGE_TAGS = ["attention/head0", "insects"]

# Pixels that the chart's canvas itself contributes: screenshot the chart area with the canvas
# shown and hidden (the grid and axes are SVG around and under it) and count what differs.
TOGGLE_CANVAS_JS = "(canvas, shown) => { canvas.style.visibility = shown ? 'visible' : 'hidden'; }"


def _get(url: str, timeout: float = 2.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    with opener.open(url, timeout=timeout) as reply:
        return json.load(reply)


def _insect_pictures(n: int) -> list[np.ndarray]:
    """n small RGB pictures, (H, W, 3) uint8: the course's drawn insects when available."""
    rng = np.random.default_rng(0)
    try:
        from course_lib.data.images import draw_insect

        return [np.asarray(draw_insect(("ants", "bees")[i % 2], rng, 32)) for i in range(n)]
    except ImportError:  # any RGB picture will do for what is checked here
        y, x = np.mgrid[0:32, 0:32]
        return [np.stack([(x * 8 + 40 * i) % 256, y * 8, np.full_like(x, 60 * i)], -1).astype(np.uint8)
                for i in range(n)]


def _write_logs(runs: Path) -> None:
    """The kind of logs notebook 05 writes: two runs' training losses, pictures, an attention map."""
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    for name, rate in (("lr_0.5", 12.0), ("lr_0.05", 45.0)):
        with SummaryWriter(runs / name) as writer:
            for step in range(60):
                loss = 0.69 * np.exp(-step / rate) + 0.05 + 0.03 * rng.standard_normal()
                writer.add_scalar("loss/train", float(loss), step)
    with SummaryWriter(runs / "pictures") as writer:
        for step, picture in enumerate(_insect_pictures(4)):
            writer.add_image("insects", picture, step, dataformats="HWC")
        # an attention map: softmax(q k^T / sqrt(d)) of 6 words, each weight drawn as a 16x16 square
        keys = rng.standard_normal((6, 8))
        scores = 2 * keys @ keys.T / np.sqrt(8)
        weights = np.exp(scores - scores.max(1, keepdims=True))
        weights /= weights.sum(1, keepdims=True)
        writer.add_image("attention/head0", np.kron(weights, np.ones((16, 16))), 0, dataformats="HW")


@pytest.fixture
def board(tmp_path):
    """A TensorBoard on a free port serving tmp_path/runs, started as in a terminal; stopped after."""
    runs = tmp_path / "runs"
    _write_logs(runs)
    port = free_port()
    log = open(tmp_path / "tensorboard.log", "w", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(runs),
                                "--port", str(port), "--host", "127.0.0.1"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"tensorboard exited with {process.returncode}: "
                            f"{(tmp_path / 'tensorboard.log').read_text()[-2000:]}")
            try:
                if sorted(_get(url + "data/runs")) == ["lr_0.05", "lr_0.5", "pictures"]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not answer on port {port} within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        yield url
        stopped = stop_tensorboard(runs)
        assert [info.pid for info in stopped] == [process.pid]
        assert process.wait(timeout=20) is not None
        with pytest.raises(OSError):
            _get(url + "data/runs", timeout=1.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def _filter_tags(page, regex: str) -> None:
    box = page.locator("input[placeholder*='Filter tags']")
    box.fill(regex)
    box.press("Escape")  # close the tag suggestions that would cover the cards


def _wait_for_lines(page, card) -> float:
    """Wait until the chart of a scalar card shows its lines; the fraction of its pixels they cover."""
    canvas = card.locator(".series-view canvas")
    canvas.wait_for()
    chart = card.locator(".series-view")
    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    while True:  # the lines appear once the data has arrived: poll, no fixed sleep
        drawn = _pixels(chart)
        canvas.evaluate(TOGGLE_CANVAS_JS, False)
        without = _pixels(chart)
        canvas.evaluate(TOGGLE_CANVAS_JS, True)
        changed = (np.abs(drawn - without).sum(axis=2) > 30).mean()
        if changed > 0.002 or time.monotonic() > deadline:
            return changed
        page.wait_for_timeout(250)


def _pixels(locator) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def test_board_shows_the_logged_scalars_and_images(board, page, tmp_path):
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.set_viewport_size({"width": 1200, "height": 800})
    page.goto(board + "#timeseries")

    # every run is listed in the runs table
    for run in ("lr_0.05", "lr_0.5", "pictures"):
        page.locator("runs-selector").get_by_text(run, exact=True).wait_for()
    # the settings pane would squeeze the cards: close it, as one would to look at the charts
    close = page.locator("button[aria-label='Close side pane']")
    if close.count():
        close.click()

    # SCALARS: the tag is listed as a card, and its chart is drawn
    # (a tag filter shows the matching cards in one grid, "metrics-filtered-view"; without one, cards
    # are drawn only once scrolled into view)
    _filter_tags(page, "loss")
    card = page.locator("metrics-filtered-view scalar-card").filter(has=page.locator("[title='loss/train']"))
    card.wait_for()
    changed = _wait_for_lines(page, card)
    assert changed > 0.002, f"the loss/train chart's canvas is empty ({changed:.2%} of its pixels drawn)"
    # both runs' lines are there: each run's last value is listed under the chart
    for run in ("lr_0.05", "lr_0.5"):
        card.locator("scalar-card-data-table").get_by_text(run, exact=True).wait_for()

    # IMAGES: each image tag has a card whose picture the browser has loaded
    _filter_tags(page, "insects|attention")
    for tag in IMAGE_TAGS:
        image_card = page.locator("metrics-filtered-view image-card").filter(has=page.locator(f"[title='{tag}']"))
        picture = image_card.locator("img")
        picture.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        width, height = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert (width, height) == ((96, 96) if tag == "attention/head0" else (32, 32)), tag
    # the insects card has a slider over the 4 steps, on the last one
    insects = page.locator("metrics-filtered-view image-card").filter(has=page.locator("[title='insects']"))
    insects.get_by_text("Step 3").wait_for()

    _screenshot(page, tmp_path)


def _screenshot(page, tmp_path) -> None:
    """The picture for readers on GitHub: the loss chart and the pictures side by side."""
    # wide enough for the three cards side by side (the tags sort as attention, insects, loss)
    page.set_viewport_size({"width": 1480, "height": 610})
    _filter_tags(page, "loss|insects|attention")
    for tag in ("loss/train", *IMAGE_TAGS):
        page.locator(f"metrics-filtered-view [title='{tag}']").wait_for()
    _wait_for_lines(page, page.locator("metrics-filtered-view scalar-card"))
    page.wait_for_function("() => [...document.querySelectorAll('image-card img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    page.mouse.move(0, 0)  # no hover tooltip on the chart
    refresh = os.environ.get("COURSE_REFRESH_FIGURES") == "1"
    path = FIGURE if refresh else tmp_path / FIGURE.name
    page.screenshot(path=path)
    print(f"screenshot: {path}")
