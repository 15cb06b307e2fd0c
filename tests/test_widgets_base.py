"""What every widget shares: the wiring of controls, blitting, and remembered results."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from course_lib.widgets.base import (  # noqa: E402
    Blitter,
    FigureWidget,
    HTMLWidget,
    Memo,
    canvas_to_png,
    widget_figure,
)


def test_memo_computes_once_and_forgets_the_oldest():
    memo, calls = Memo(size=2), []

    def compute(key):
        calls.append(key)
        return key * 10

    assert memo.get(1, lambda: compute(1)) == 10
    assert memo.get(1, lambda: compute(1)) == 10 and calls == [1]
    memo.get(2, lambda: compute(2))
    memo.get(1, lambda: compute(1))  # 1 is now the most recent ...
    memo.get(3, lambda: compute(3))  # ... so 2 is forgotten
    assert 1 in memo and 2 not in memo and 3 in memo


class Boxes(FigureWidget):
    """A square that moves along a line: the square is blitted, the line is background."""

    def __init__(self):
        super().__init__(widget_figure((3, 2)))
        self.x = ipywidgets.IntSlider(value=0, min=0, max=9)
        self.width = ipywidgets.IntSlider(value=10, min=5, max=20)
        self.widget = ipywidgets.VBox([self.x, self.width])
        self.watch([self.x])
        self.watch([self.width], self._relayout)
        self.ax = self.fig.add_subplot()
        self.ax.plot([0, 20], [0, 1])
        self.box = Rectangle((0, 0.4), 1, 0.2, animated=True)
        self.ax.add_patch(self.box)
        self.layouts = 0
        self._relayout()

    def _relayout(self):
        self.ax.set_xlim(0, self.width.value)
        if not self.blitter.use(self.width.value):
            self.layouts += 1
            self.blitter.save(self.width.value)
        self.redraw()

    def render(self):
        self.box.set_x(self.x.value)
        return self.blitter.png([self.box])


def test_figure_widget_blits_over_one_background_per_layout():
    w = Boxes()
    shown = []
    w._handle = type("Handle", (), {"update": lambda self, image: shown.append(image.data)})()
    start = w.render()
    w.x.value = 5
    assert shown[-1] != start and w.layouts == 1  # a move repaints the box, draws nothing else
    w.x.value = 0
    assert shown[-1] == start  # blitting gives back exactly the first picture
    w.width.value = 20
    w.width.value = 10  # seen before: its background is reused
    assert w.layouts == 2 and shown[-1] == start
    assert len(w.redraw_ms) == 5 and all(ms > 0 for ms in w.redraw_ms)


def test_holding_redraws_once():
    w = Boxes()
    before = len(w.redraw_ms)
    with w.holding():
        w.x.value = 3
        w.x.value = 4
    assert len(w.redraw_ms) == before
    w.redraw()
    assert len(w.redraw_ms) == before + 1


def test_blitter_paints_over_a_saved_background():
    fig = widget_figure((2, 2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    dot = ax.plot([0.5], [0.5], "o", animated=True)[0]
    blitter = Blitter(fig)
    blitter.save()
    empty = canvas_to_png(fig)
    blitter.paint([dot])
    assert canvas_to_png(fig) != empty
    blitter.paint([])
    assert canvas_to_png(fig) == empty
    assert blitter.key is None and not blitter.use("never saved")
    pixels = np.asarray(fig.canvas.buffer_rgba())
    assert pixels.shape == (160, 160, 4)


class Echo(HTMLWidget):
    def __init__(self):
        super().__init__()
        self.text = ipywidgets.Text(value="a")
        self.widget = ipywidgets.VBox([self.text, self.output])
        self.watch([self.text])
        self.redraw()

    def render(self):
        return f"<b>{self.text.value}</b>"


def test_html_widget_shows_its_render_in_its_output():
    w = Echo()
    assert w.output.value == "<b>a</b>"
    w.text.value = "b"
    assert w.output.value == "<b>b</b>" and len(w.redraw_ms) == 2
