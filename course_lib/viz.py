"""Pure plotting: heatmaps of attention, PNG bytes of a figure, and the live loss plot of training.

Plotting functions take numbers and labels, draw on a figure and return the artists (no widget,
no model here: the widgets in :mod:`course_lib.widgets` are built on these functions).
:class:`LiveLossPlot` is the loss curve that :func:`course_lib.training.train` updates in place.

Chinese labels need a font with Chinese glyphs: the course ships a small subset of
Noto Sans CJK SC (SIL Open Font License) in ``course_lib/fonts`` and registers it here,
so figures look the same on every machine.
"""

from __future__ import annotations

import io
import pathlib
import sys
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from matplotlib import font_manager
from matplotlib.figure import Figure

__all__ = [
    "CJK_FONT",
    "as_matrix",
    "plot_heatmap",
    "label_heatmap",
    "show_heatmaps",
    "plot_attention_grid",
    "figure_to_png",
    "EMA_BETA",
    "ema",
    "in_notebook",
    "LiveLossPlot",
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


def as_matrix(matrix) -> np.ndarray:
    """A tensor, array or nested list as a 2-D float array (rows, columns); anything else is an error."""
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
    m = as_matrix(matrix)
    _check_labels("xlabels", xlabels, m.shape[1])
    _check_labels("ylabels", ylabels, m.shape[0])
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=m.max() if vmax is None and vmin is not None else vmax,
                      aspect="auto", interpolation="nearest")
    label_heatmap(ax, xlabels, ylabels, m.shape)
    if title:
        ax.set_title(title, fontsize=10)
    if annotate:
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 * (m.max() or 1) else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return image


def label_heatmap(ax, xlabels: Sequence[str] | None, ylabels: Sequence[str] | None, shape) -> None:
    """One tick per column and per row of a heatmap of ``shape`` (rows, columns), labelled with
    the words (their indices when None), without tick marks."""
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
    mats = [as_matrix(m) for m in matrices]
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
# The live loss plot that train() draws in a notebook
# ---------------------------------------------------------------------------

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
            if self._handle is None:
                self._handle = display(self.fig, display_id=True)
            else:
                self._handle.update(self.fig)

    def close(self):
        """Release the figure (the picture already shown in the notebook stays)."""
        plt.close(self.fig)
