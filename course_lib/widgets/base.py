"""The base of every widget: controls above one view, redrawn in place when a control moves.

- :class:`Widget` owns the controls (``self.widget``, an ipywidgets box), the wiring from a control
  to a redraw (:meth:`Widget.watch`, :meth:`Widget.holding`), and :meth:`Widget.redraw`, which
  renders the current state, shows it and times it (outside a notebook too, so tests and
  benchmarks exercise the real path). A control's callback never raises: what goes wrong (a
  typed text the model cannot read) becomes a short message in the status line
  (:meth:`Widget.tell`, escaped), and the view keeps its last good picture.
- :class:`HTMLWidget`: the view is an HTML element under the controls.
- :class:`FigureWidget`: the view is the PNG of one matplotlib figure, replaced in place
  (``display(..., display_id=True)`` once, ``handle.update`` after).
- :class:`Blitter`: blitting, the one fast way to redraw a figure. The parts that do not move are
  drawn once and kept as a picture (the background); each redraw restores it and paints only the
  artists that change (created with ``animated=True``, so a full draw leaves them out).
- :func:`widget_figure`, :func:`canvas_to_png`: a figure that only its widget shows, and its PNG.
"""

from __future__ import annotations

import html
import io
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from contextlib import contextmanager

import ipywidgets
import numpy as np
from IPython.display import Image, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from .. import viz  # noqa: F401  (importing viz registers the bundled Chinese font the labels need)

__all__ = ["Widget", "HTMLWidget", "FigureWidget", "Blitter", "Memo", "widget_figure", "canvas_to_png",
           "MESSAGE_CHARS", "MAX_TYPED_WORDS", "short_text", "status_note"]

# A status message longer than this is cut (with "…"): a 5,000-character text is never echoed whole.
MESSAGE_CHARS = 240

# The most words of a typed sentence the translation widgets (notebooks 01, 02) read: more than the
# corpus's longest sentence (14 words), few enough that a new sentence is drawn within the 150 ms a
# typed text may take (benchmarks/widgets.py). The rest is cut, and the status line says so.
MAX_TYPED_WORDS = 20


def short_text(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with "…" (plain text: escape it before showing)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def status_note(message: str, color: str = "#d62728") -> str:
    """A status-line message as HTML: ``message`` (plain text) shortened, escaped and coloured."""
    return f"<span style='color:{color}'>{html.escape(short_text(message), quote=False)}</span>"


def _describe(error: Exception) -> str:
    """What a learner reads when a callback fails: the message of a ValueError or TypeError (the
    library's answers to bad input), the kind of error as well for anything else."""
    if isinstance(error, (ValueError, TypeError)):
        return str(error)
    return f"{type(error).__name__}: {error}"


def widget_figure(figsize, dpi: int = 80) -> Figure:
    """A figure outside pyplot, with an Agg canvas: only its widget shows it, never the inline backend.

    Its text falls back to the course's CJK font (``viz.CJK_FONT``) for Chinese characters.
    """
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def canvas_to_png(fig: Figure) -> bytes:
    """The PNG of what ``fig``'s Agg canvas holds now, without drawing it again (fast: for widgets)."""
    if not isinstance(fig, Figure) or not isinstance(fig.canvas, FigureCanvasAgg):
        raise TypeError(f"fig must be a matplotlib Figure with an Agg canvas (widget_figure()), got {fig!r}")
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Memo:
    """The last ``size`` results of an expensive call, by key (oldest forgotten first).

    Widgets keep what a control's earlier values cost (a translation, a model's attention, a
    drawn background), so going back to one of them is as fast as a view change.
    """

    def __init__(self, size: int = 32):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size = size
        self._items: OrderedDict = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], object]):
        """The value stored under ``key``, computing and storing it the first time."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return self.put(key, compute())

    def put(self, key: Hashable, value):
        """Store ``value`` under ``key`` (replacing what was there); returns ``value``."""
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __getitem__(self, key: Hashable):
        self._items.move_to_end(key)
        return self._items[key]

    def clear(self) -> None:
        self._items.clear()


class Blitter:
    """Blitting for one figure, with one background per layout.

    :meth:`save` draws the figure fully (artists made with ``animated=True`` are left out) and keeps
    the picture as the background of a layout ``key`` (e.g. the words of the labels); :meth:`paint`
    restores that background and draws only the given artists on top: a few milliseconds instead
    of a full draw. Up to ``keep`` backgrounds are remembered, so coming back to a layout seen
    before needs no full draw either.
    """

    def __init__(self, fig: Figure, keep: int = 16):
        self.fig = fig
        self.background = None
        self.key = None
        self._saved = Memo(keep)

    def use(self, key: Hashable) -> bool:
        """Make the saved background of ``key`` current; False when there is none."""
        if key not in self._saved:
            return False
        self.background, self.key = self._saved[key], key
        return True

    def save(self, key: Hashable = None, over=None, paint: Iterable = ()) -> None:
        """Make and keep the background of ``key``.

        Without ``over``: draw the whole figure (animated artists are skipped). With ``over`` (a
        background saved before, e.g. the axes without any data): restore it and paint the
        ``paint`` artists on top, which is cheaper when only they differ from it.
        """
        if over is None:
            self.fig.canvas.draw()
        else:
            self._paint_over(over, paint)
        self.background, self.key = self.fig.canvas.copy_from_bbox(self.fig.bbox), key
        if key is not None:
            self._saved.put(key, self.background)

    def paint(self, artists: Iterable) -> None:
        """Restore the current background and draw ``artists`` over it, in the order given."""
        self._paint_over(self.background, artists)

    def _paint_over(self, background, artists: Iterable) -> None:
        self.fig.canvas.restore_region(background)
        for artist in artists:
            (artist.axes or self.fig).draw_artist(artist)

    def png(self, artists: Iterable) -> bytes:
        """:meth:`paint` the ``artists``, then the PNG of the result."""
        self.paint(artists)
        return canvas_to_png(self.fig)


class Widget:
    """Controls above one view, redrawn whenever a control changes.

    A subclass builds its controls into ``self.widget``, calls :meth:`watch` on them and
    implements :meth:`render` (the current state -> what the view shows) and :meth:`present`
    (put that on screen). Every redraw's time, in ms, is appended to ``redraw_ms``.

    ``self.status`` (an ``ipywidgets.HTML`` among the controls, set by the subclass) is where
    :meth:`tell` says why a change was refused; ``self.message`` holds that reason as plain text
    ("" when the last change worked; notes about a text that was used, e.g. that it was cut, are
    only in the status line).
    """

    widget = None  # the ipywidgets box of controls, set by the subclass
    status = None  # the ipywidgets.HTML status line, set by the subclass (None: messages are only kept)

    def __init__(self):
        self.redraw_ms: list[float] = []
        self.message = ""
        self._held = 0

    # --- wiring -----------------------------------------------------------------------------
    def watch(self, controls: Iterable, action: Callable[[], None] | None = None) -> None:
        """Call ``action`` (default :meth:`redraw`) when the value of any of ``controls`` changes.

        The call is guarded (:meth:`guarded`): an error becomes a message, never a traceback.
        """
        act = action or self.redraw

        def on_change(change) -> None:
            if not self._held:  # see holding(): whoever holds redraws once, afterwards
                self.guarded(act)

        for control in controls:
            control.observe(on_change, names="value")

    def guarded(self, action: Callable[[], None]) -> bool:
        """Run ``action``; if it raises, show the error in the status line and return False.

        A control's callback must never raise (in a notebook the learner would get a traceback
        and a widget in a half-changed state). The view is only replaced when a redraw finishes,
        so after an error it keeps the last good picture.
        """
        self.message = ""
        try:
            action()
        except Exception as error:  # noqa: BLE001 (a callback's error is shown, whatever it is)
            self.tell(_describe(error))
            return False
        return True

    def typed_words(self, text: str, segment: Callable[[str], list[str]], max_words: int):
        """The words of a text typed into a box, cut to ``max_words``: ``(words, note)``.

        ``note`` says when the text was cut ("" otherwise). An empty box returns None after
        saying so in the status line, so the caller keeps its last picture.
        """
        words = list(segment(text))
        if not words:
            self.tell("the box is empty: type a sentence and press Enter")
            return None
        if len(words) > max_words:
            return words[:max_words], f"only the first {max_words} words are used"
        return words, ""

    def tell(self, message: str) -> None:
        """Say why a change was refused: ``message`` (plain text: escaped here, cut to ``MESSAGE_CHARS``) in red
        in the status line, kept in ``self.message``; the view keeps its last good picture."""
        self.message = short_text(message)
        if self.status is not None:
            self.status.value = status_note(message)
            self.status.layout.display = None  # a status line hidden while empty shows itself

    @contextmanager
    def holding(self):
        """Inside ``with self.holding():`` control changes call no action: set several controls (e.g. a
        slider's range and value), then redraw once."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    # --- drawing ------------------------------------------------------------------------------
    def render(self):
        """The view's content for the current state of the controls."""
        raise NotImplementedError

    def present(self, content) -> None:
        """Show ``content`` (what :meth:`render` returned) in the view."""
        raise NotImplementedError

    def redraw(self) -> float:
        """Render the current state and show it; returns the time taken in ms."""
        start = time.perf_counter()
        self.present(self.render())
        ms = 1000 * (time.perf_counter() - start)
        self.redraw_ms.append(ms)
        return ms

    def show(self):
        """Display the controls and the view (in a notebook); returns the widget."""
        display(self.widget)
        return self


class HTMLWidget(Widget):
    """A widget whose view is HTML: ``self.output``, an ``ipywidgets.HTML`` placed among the controls."""

    def __init__(self):
        super().__init__()
        self.output = ipywidgets.HTML()

    def present(self, content: str) -> None:
        self.output.value = content

    @property
    def picture(self) -> str:
        """What the view shows now (the HTML of the last good redraw)."""
        return self.output.value


class FigureWidget(Widget):
    """A widget whose view is one matplotlib figure, shown as a PNG replaced in place.

    ``fig`` is made with :func:`widget_figure`; ``self.blitter`` redraws it by blitting.
    :meth:`render` returns the PNG bytes; ``self.picture`` is the PNG the view shows now (the
    last good redraw).
    """

    def __init__(self, fig: Figure, keep_backgrounds: int = 16):
        super().__init__()
        self.fig = fig
        self.blitter = Blitter(fig, keep_backgrounds)
        self.picture: bytes | None = None
        self._handle = None

    def present(self, png: bytes) -> None:
        self.picture = png
        if self._handle is not None:
            self._handle.update(Image(data=png, format="png"))

    def show(self):
        """Display the controls, then the picture (a display handle, updated in place from now on)."""
        display(self.widget)
        self.picture = self.render()
        self._handle = display(Image(data=self.picture, format="png"), display_id=True)
        return self
