"""Heatmaps of attention, and the widgets built on them.

Plotting functions are pure: they take numbers and labels, draw on a figure, return artists.
Widgets are thin wrappers that call the same functions, and redraw by *updating* artists
(``set_data``, ``set_height``) instead of re-creating figures, so they stay fast.

Chinese labels need a font with Chinese glyphs: the course ships a small subset of
Noto Sans CJK SC (SIL Open Font License) in ``course_lib/fonts`` and registers it here,
so figures look the same on every machine.
"""

from __future__ import annotations

import io
import pathlib
import sys
import time
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = [
    "CJK_FONT",
    "plot_heatmap",
    "show_heatmaps",
    "plot_attention_grid",
    "TranslationAttentionView",
    "AttentionExplorer",
    "figure_to_png",
    "canvas_to_png",
    "widget_figure",
    "FigureWidget",
]

_FONT_DIR = pathlib.Path(__file__).parent / "fonts"


def _register_fonts() -> str | None:
    """Register the bundled CJK font with matplotlib; return its family name."""
    family = None
    for path in sorted(_FONT_DIR.glob("*.otf")) + sorted(_FONT_DIR.glob("*.ttf")):
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
    if family:
        # Latin text keeps DejaVu Sans; characters it lacks (汉字) fall back to the CJK font.
        plt.rcParams["font.family"] = ["DejaVu Sans", family]
    return family


CJK_FONT = _register_fonts()


def _as_array(matrix) -> np.ndarray:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().float().numpy()
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D (rows, columns), got shape {matrix.shape}")
    return matrix


def _check_labels(name: str, labels, n: int) -> None:
    if labels is not None and len(labels) != n:
        raise ValueError(f"{name} must have one label per {'column' if name == 'xlabels' else 'row'} "
                         f"({n}), got {len(labels)}")


def plot_heatmap(ax, matrix, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                 title: str | None = None, cmap: str = "Blues", vmin: float | None = 0.0,
                 vmax: float | None = None, annotate: bool = False, colorbar: bool = False):
    """Draw ``matrix`` (rows, columns) on ``ax``; rows are queries, columns are keys.

    Returns the ``AxesImage``; call ``image.set_data(new)`` to update it in place.
    """
    m = _as_array(matrix)
    _check_labels("xlabels", xlabels, m.shape[1])
    _check_labels("ylabels", ylabels, m.shape[0])
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=m.max() if vmax is None and vmin is not None else vmax,
                      aspect="auto", interpolation="nearest")
    _set_ticks(ax, xlabels, ylabels, m.shape)
    if title:
        ax.set_title(title, fontsize=10)
    if annotate:
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 * (m.max() or 1) else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return image


def _set_ticks(ax, xlabels, ylabels, shape) -> None:
    rows, cols = shape
    ax.set_xticks(range(cols))
    ax.set_xticklabels(list(xlabels) if xlabels is not None else [str(j) for j in range(cols)], fontsize=9)
    ax.set_yticks(range(rows))
    ax.set_yticklabels(list(ylabels) if ylabels is not None else [str(i) for i in range(rows)], fontsize=9)
    ax.tick_params(length=0)


def show_heatmaps(matrices, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                  titles: Sequence[str] | None = None, cols: int | None = None, size: float = 2.6,
                  cmap: str = "Blues", suptitle: str | None = None):
    """Draw several heatmaps side by side (e.g. the heads of multi-head attention).

    matrices: a tensor (n, rows, columns) or a list of 2-D matrices. Returns the Figure.
    """
    mats = [_as_array(m) for m in matrices]
    if not mats:
        raise ValueError("matrices must contain at least one matrix")
    cols = cols or len(mats)
    rows = -(-len(mats) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False,
                             constrained_layout=True)
    vmax = max(m.max() for m in mats)
    for k, ax in enumerate(axes.flat):
        if k >= len(mats):
            ax.axis("off")
            continue
        plot_heatmap(ax, mats[k], xlabels, ylabels, title=titles[k] if titles else None, cmap=cmap, vmax=vmax)
        if k % cols:
            ax.set_yticklabels([])
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_attention_grid(weights: Sequence, sources: Sequence[Sequence[str]], targets: Sequence[Sequence[str]],
                        title: str | None = None, size: float = 3.8):
    """One heatmap per sentence: weights[k] (len(targets[k]), len(sources[k])). Returns the Figure."""
    if not (len(weights) == len(sources) == len(targets)) or not weights:
        raise ValueError(f"weights, sources and targets must be non-empty and of equal length, "
                         f"got {len(weights)}, {len(sources)}, {len(targets)}")
    widths = [max(3, len(src)) for src in sources]  # long sentences get wider panels
    fig, axes = plt.subplots(1, len(weights), figsize=(0.42 * sum(widths) + 1.2 * len(weights), size),
                             squeeze=False, constrained_layout=True, gridspec_kw={"width_ratios": widths})
    for ax, w, src, tgt in zip(axes[0], weights, sources, targets):
        plot_heatmap(ax, w, src, tgt, vmax=1.0)
    if title:
        fig.suptitle(title)
    return fig


def figure_to_png(fig, dpi: int | None = None) -> bytes:
    """The PNG bytes of ``fig`` (what a notebook displays); no timestamps, so reproducible."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


# ---------------------------------------------------------------------------
# The translation attention view: one figure, updated in place
# ---------------------------------------------------------------------------

class TranslationAttentionView:
    """Attention of a translation, one decoder step at a time.

    Left: the whole alignment matrix a (output words x source words), the current step framed.
    Top right: a_i for the current step, as bars over the source words.
    Bottom right: the context vector of that step, context = sum_i a_i h_i, as a colour strip.

    The figure is created once. A new sentence redraws everything (labels change); a new step
    only redraws the artists that change (frame, bars, step title, context strip) on top of a
    saved background ("blitting"), which keeps a step redraw to a few milliseconds.
    """

    def __init__(self, figsize=(9.0, 3.6), dpi: int = 80):
        self.fig = widget_figure(figsize, dpi)
        grid = self.fig.add_gridspec(2, 2, width_ratios=[1.1, 1], height_ratios=[3, 1], wspace=0.25,
                                     hspace=0.9, left=0.1, right=0.98, top=0.86, bottom=0.12)
        self.ax_map = self.fig.add_subplot(grid[:, 0])
        self.ax_bar = self.fig.add_subplot(grid[0, 1])
        self.ax_ctx = self.fig.add_subplot(grid[1, 1])
        self._image = self._frame = self._ctx_image = self._step_text = None
        self._bars = []
        self._source = self._output = self._title = None
        self._background = None

    def update(self, source: Sequence[str], output: Sequence[str], weights, contexts=None,
               step: int = 0, title: str | None = None) -> None:
        """source: S words; output: T words; weights (T, S); contexts (T, d) or None; step in [0, T)."""
        w = _as_array(weights)
        if w.shape != (len(output), len(source)):
            raise ValueError(f"weights must have shape (len(output), len(source)) = "
                             f"({len(output)}, {len(source)}), got {w.shape}")
        if not 0 <= step < len(output):
            raise ValueError(f"step must be in [0, {len(output)}), got {step}")
        c = None if contexts is None else _as_array(contexts)
        if self._image is None or (list(source), list(output), title) != (self._source, self._output, self._title) \
                or not np.array_equal(self._image.get_array(), w):
            self._draw_sentence(list(source), list(output), w, c, title)
        # the current step: frame its row, set the bar heights, show its context
        row = w[step]
        self._frame.set_y(step - 0.5)
        for bar, value in zip(self._bars, row):
            bar.set_height(value)
            bar.set_color("#d62728" if value == row.max() else "#1f77b4")
        self._step_text.set_text(f"step {step + 1}: emits '{output[step]}'")
        if c is not None:
            self._ctx_image.set_data(c[step:step + 1])
        self._blit()

    def _draw_sentence(self, source, output, w, contexts, title) -> None:
        """Redraw the parts that change only with the sentence, and save them as the background."""
        for ax in (self.ax_map, self.ax_bar, self.ax_ctx):
            ax.clear()
        self._image = plot_heatmap(self.ax_map, w, source, output, vmin=0.0, vmax=1.0)
        self.ax_map.set_xlabel("source words (keys h_i)", fontsize=9)
        self.ax_map.set_ylabel("output words (one query per step)", fontsize=9)
        self._frame = Rectangle((-0.5, -0.5), len(source), 1, fill=False, edgecolor="#d62728", linewidth=2,
                                animated=True)
        self.ax_map.add_patch(self._frame)
        self._bars = list(self.ax_bar.bar(range(len(source)), np.zeros(len(source)), animated=True))
        self.ax_bar.set_ylim(0, 1)
        self.ax_bar.set_xticks(range(len(source)))
        self.ax_bar.set_xticklabels(source, fontsize=9)
        self.ax_bar.set_ylabel("a_i", fontsize=9)
        self.ax_bar.set_title("a = softmax(s(h_i, q))", fontsize=10, loc="right")
        self._step_text = self.ax_bar.text(0.0, 1.04, "", transform=self.ax_bar.transAxes, fontsize=10,
                                           ha="left", va="bottom", color="#d62728", animated=True)
        self.ax_ctx.set_yticks([])
        if contexts is not None:
            lim = float(np.abs(contexts).max()) or 1.0
            self._ctx_image = self.ax_ctx.imshow(contexts[:1], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto",
                                                 animated=True)
            self.ax_ctx.set_xlabel(f"context = Σ a_i h_i   ({contexts.shape[1]} numbers)", fontsize=9)
        else:
            self.ax_ctx.axis("off")
        if title is not None:
            self.fig.suptitle(title, fontsize=11)
        self._source, self._output, self._title = source, output, title
        self.fig.canvas.draw()  # animated artists are left out of this full draw ...
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)  # ... and drawn per step

    def _blit(self) -> None:
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        self.ax_map.draw_artist(self._frame)
        for bar in self._bars:
            self.ax_bar.draw_artist(bar)
        self.ax_bar.draw_artist(self._step_text)
        if self._ctx_image is not None and self._ctx_image.axes is self.ax_ctx:
            self.ax_ctx.draw_artist(self._ctx_image)

    def to_png(self) -> bytes:
        """The PNG of the current state (what the notebook shows)."""
        return canvas_to_png(self.fig)


def canvas_to_png(fig) -> bytes:
    """The PNG of what ``fig``'s Agg canvas holds now, without drawing it again (fast: for widgets)."""
    from PIL import Image

    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def widget_figure(figsize, dpi: int = 80) -> Figure:
    """A figure outside pyplot, with an Agg canvas: only its widget shows it, never the inline backend."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


class FigureWidget:
    """Base of the course's widgets: controls (``self.widget``) above one picture replaced in place.

    A subclass builds its controls and figure, and implements :meth:`render` (draw the current
    state, return PNG bytes). :meth:`redraw` renders and swaps the displayed picture; it works,
    and is timed, outside a notebook too, so tests and benchmarks exercise the real path.
    """

    widget = None  # the ipywidgets box of controls, set by the subclass

    def render(self) -> bytes:
        raise NotImplementedError

    # Blitting: draw the parts that never move once, save them, and per redraw paint only the
    # artists that change (created with animated=True) on top: a few ms instead of a full draw.
    def save_background(self) -> None:
        """Draw ``self.fig`` fully (animated artists are skipped) and keep it as the background."""
        self.fig.canvas.draw()
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

    def blit(self, artists) -> bytes:
        """Paint ``artists`` over the saved background; return the PNG."""
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for artist in artists:
            (artist.axes or self.fig).draw_artist(artist)
        return canvas_to_png(self.fig)

    def redraw(self) -> float:
        """Draw the current state and show it; returns the time taken in ms (PNG included)."""
        start = time.perf_counter()
        png = self.render()
        handle = getattr(self, "_handle", None)
        if handle is not None:
            from IPython.display import Image

            handle.update(Image(data=png, format="png"))
        ms = 1000 * (time.perf_counter() - start)
        self.__dict__.setdefault("redraw_ms", []).append(ms)  # every redraw's time, for the benchmarks
        return ms

    def show(self):
        """Display the controls and the picture (in a notebook)."""
        from IPython.display import Image, display

        display(self.widget)
        self._handle = display(Image(data=self.render(), format="png"), display_id=True)
        return self


class AttentionExplorer(FigureWidget):
    """Widget: pick a sentence (or type one), a scoring function, and step through the decoder.

    The work is done by ``trace_fn(score_name, zh_words) -> dict`` with keys ``source``,
    ``output`` (words, ``<eos>`` included), ``weights`` (T, S) and ``contexts`` (T, d); it is a
    plain function, testable without a browser. The widget only moves controls and calls
    :meth:`TranslationAttentionView.update`.
    """

    def __init__(self, trace_fn: Callable[[str, list[str]], dict], sentences: Sequence[Sequence[str]],
                 score_names: Sequence[str], segment: Callable[[str], list[str]] | None = None):
        import ipywidgets as widgets

        if not sentences:
            raise ValueError("sentences must not be empty")
        self.trace_fn = trace_fn
        self.segment = segment or str.split
        self.view = TranslationAttentionView()
        self.sentence = widgets.Dropdown(options=[(" ".join(s), tuple(s)) for s in sentences],
                                         description="sentence", layout=widgets.Layout(width="420px"))
        self.typed = widgets.Text(placeholder="or type Chinese here, e.g. 我昨天在公园里看见了一只猫",
                                  description="your own", continuous_update=False,
                                  layout=widgets.Layout(width="420px"))
        self.score = widgets.Dropdown(options=list(score_names), description="s(h, q)")
        self.step = widgets.IntSlider(min=1, max=1, value=1, description="step")
        self.status = widgets.HTML()
        self._trace = None
        self._handle = None
        self.redraw_ms: list[float] = []  # time of every redraw (update + PNG), for the benchmark
        for control in (self.sentence, self.score):
            control.observe(self._on_sentence, names="value")
        self.typed.observe(self._on_typed, names="value")
        self.step.observe(self._on_step, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.sentence, self.score]), self.typed, self.step, self.status])
        self._words = list(sentences[0])
        self._compute()

    # --- callbacks -----------------------------------------------------------
    def _on_sentence(self, change=None) -> None:
        if change is not None and change["owner"] is self.sentence:
            self._words = list(self.sentence.value)
        self._compute()

    def _on_typed(self, change) -> None:
        words = self.segment(change["new"])
        if words:
            self._words = words
            self._compute()

    def _on_step(self, change) -> None:
        self.redraw()

    # --- work -----------------------------------------------------------------
    def _compute(self) -> None:
        self._trace = self.trace_fn(self.score.value, self._words)
        n = len(self._trace["output"])
        self.step.max = n
        self.step.value = min(self.step.value, n)
        self.status.value = (f"<b>{' '.join(self._trace['source'])}</b> → "
                             f"<b>{' '.join(w for w in self._trace['output'] if w != '<eos>')}</b>")
        self.redraw()

    def render(self) -> bytes:
        t = self._trace
        self.view.update(t["source"], t["output"], t["weights"], t.get("contexts"), step=self.step.value - 1,
                         title=f"score s(h, q): {self.score.value}")
        return self.view.to_png()


# ---------------------------------------------------------------------------
# The live loss plot that train() draws in a notebook

# Smoothing of the loss shown in the progress bar and drawn bold in the live plot:
# ema <- EMA_BETA * ema + (1 - EMA_BETA) * loss, i.e. an average over roughly the last 10 steps.
EMA_BETA = 0.9


def in_notebook() -> bool:
    """True only inside a Jupyter (IPython kernel) session, not in a terminal IPython or pytest."""
    ipython = sys.modules.get("IPython")
    if ipython is None:  # never imported, so certainly not running in a kernel
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def ema(values: list[float], beta: float = EMA_BETA) -> list[float]:
    """Exponential moving average of ``values``, starting at the first value (same length)."""
    out, avg = [], None
    for v in values:
        avg = v if avg is None else beta * avg + (1 - beta) * v
        out.append(avg)
    return out


class LiveLossPlot:
    """A loss curve that updates in place in a notebook.

    The figure is created once; ``update`` changes the data of its lines (``set_data``)
    and, inside a notebook, re-renders the same output cell
    (``display(fig, display_id=True)`` the first time, ``handle.update(fig)`` after), so
    a long training leaves one plot behind, not hundreds.

    Outside an IPython kernel (a script, pytest) nothing is displayed, but the lines are
    still updated, so the plot can be inspected and tested.

    Attributes: ``fig`` (matplotlib Figure), ``ax`` (its Axes), ``raw_line`` (every loss,
    faint), ``ema_line`` (their moving average, bold), ``floor_line`` (None without
    ``floor``), ``eval_lines`` (dict metric name -> Line2D, created when first seen).
    """

    def __init__(self, title="training loss", ylabel="loss", floor: float | None = None,
                 display: bool | None = None):
        """
        title:   str, the title of the axes
        ylabel:  str, the label of the y axis
        floor:   optional float, drawn as a dashed horizontal line (e.g. the entropy of the
                 data, the lowest loss any model can reach)
        display: True / False to force showing the plot or not; None (default) shows it
                 only inside an IPython kernel
        """
        self.display = in_notebook() if display is None else bool(display)
        if self.display:
            # pyplot sets up the notebook's figure rendering; closing the figure right away
            # keeps the inline backend from showing a second, static copy at the end of the cell.
            self.fig, self.ax = plt.subplots(figsize=(7, 3.5))
            plt.close(self.fig)
        else:
            # A bare Figure is invisible to pyplot: no window, nothing to leak between tests.
            self.fig = Figure(figsize=(7, 3.5))
            self.ax = self.fig.subplots()
        self._handle = None  # IPython DisplayHandle, created by the first update

        ax = self.ax
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        (self.raw_line,) = ax.plot([], [], color="C0", alpha=0.25, linewidth=1, label="loss")
        (self.ema_line,) = ax.plot([], [], color="C0", linewidth=2, label="loss (smoothed)")
        self.floor_line = None
        if floor is not None:
            self.floor_line = ax.axhline(float(floor), color="gray", linestyle="--", linewidth=1,
                                         label=f"floor {float(floor):.3g}")
        self.eval_lines = {}
        ax.legend(loc="upper right")

    def update(self, steps, losses, evals=None):
        """Redraw with new data.

        steps:  sequence of int, x values of the losses
        losses: sequence of float, same length as ``steps``
        evals:  optional list of dicts ``{"step": int, **metrics}`` (as in ``History.evals``);
                every metric whose name contains "loss" is drawn as markers
        """
        steps, losses = list(steps), [float(x) for x in losses]
        if len(steps) != len(losses):
            raise ValueError(f"LiveLossPlot.update: steps and losses must have the same length, "
                             f"got {len(steps)} steps and {len(losses)} losses")
        self.raw_line.set_data(steps, losses)
        self.ema_line.set_data(steps, ema(losses))

        for name in sorted({k for e in (evals or []) for k in e if k != "step" and "loss" in k}):
            if name not in self.eval_lines:
                color = f"C{1 + len(self.eval_lines)}"
                (self.eval_lines[name],) = self.ax.plot([], [], "o-", color=color, markersize=4,
                                                        linewidth=1, label=name)
                self.ax.legend(loc="upper right")  # the legend has to learn about the new line
            points = [(e["step"], float(e[name])) for e in evals if name in e]
            self.eval_lines[name].set_data([p[0] for p in points], [p[1] for p in points])

        # Fit the axes to the data (the floor line counts for the y range).
        self.ax.relim()
        self.ax.autoscale_view()

        if self.display:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(self.fig, display_id=True)
            else:
                self._handle.update(self.fig)

    def close(self):
        """Release the figure (the picture already shown in the notebook stays)."""
        plt.close(self.fig)
