"""Pure plotting: heatmaps of attention, PNG bytes of a figure, and the live loss plot of training.

Plotting functions take numbers and labels, draw on a figure and return the artists (no widget,
no model here: the widgets in :mod:`course_lib.widgets` are built on these functions). They
refuse what they cannot draw before drawing anything: a matrix that is not 2-D real, finite
numbers, label lists of the wrong length, an ``ax`` that is not an Axes (``ValueError`` /
``TypeError`` naming the argument).
:class:`LiveLossPlot` is the loss curve that :func:`course_lib.training.train` updates in place.

Chinese labels need a font with Chinese glyphs: the course ships a small subset of
Noto Sans CJK SC (SIL Open Font License) in ``course_lib/fonts`` and registers it here,
so figures look the same on every machine.
"""

from __future__ import annotations

import io
import numbers
import pathlib
import sys
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import _checks

__all__ = [
    "CJK_FONT",
    "as_matrix",
    "plot_heatmap",
    "add_colorbar",
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


def as_matrix(matrix, name: str = "matrix") -> np.ndarray:
    """A tensor, array or nested list of real numbers as a 2-D float array (rows, columns).

    Refused, with ``name`` in the message: anything but real numbers (strings, objects, complex
    numbers: ``TypeError``), ragged lists, another rank than 2, no rows or no columns, and NaN or
    infinite entries (``ValueError``).
    """
    if isinstance(matrix, torch.Tensor):
        if matrix.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {matrix.dtype}")
        matrix = matrix.detach().cpu().float().numpy()
    elif isinstance(matrix, (str, bytes)) or matrix is None:
        raise TypeError(f"{name} must be a 2-D tensor, array or nested list of numbers, got {type(matrix).__name__}")
    try:
        matrix = np.asarray(matrix)
    except ValueError as error:  # numpy: "inhomogeneous shape"
        raise ValueError(f"{name} must be rectangular (every row as long as the others): {error}") from None
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got {_what(matrix)}")
    matrix = matrix.astype(float, copy=False)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, columns), got shape {matrix.shape}")
    if 0 in matrix.shape:
        raise ValueError(f"{name} must have at least one row and one column, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        bad = int((~np.isfinite(matrix)).sum())
        raise ValueError(f"{name} must hold finite numbers, got {bad} NaN or infinite entr{'y' if bad == 1 else 'ies'} "
                         f"in shape {matrix.shape}")
    return matrix


def _what(array: np.ndarray) -> str:
    """How an array of non-numbers reads in a message: its dtype, or the type of its first element."""
    if array.dtype.kind == "O" and array.size:
        return f"elements of type {type(array.flat[0]).__name__}"
    return f"dtype {array.dtype}"


def _check_ax(ax) -> None:
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")


def _check_labels(name: str, labels, n: int, per: str | None = None) -> None:
    """``labels`` must be None or a list of ``n`` labels, one ``per`` column (xlabels) or row (ylabels)."""
    if labels is None:
        return
    per = per or ("column" if name.startswith("x") else "row")
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(f"{name} must be a list of labels (one per {per}), got {type(labels).__name__}")
    if len(labels) != n:
        raise ValueError(f"{name} must have one label per {per} ({n}), got {len(labels)}")


def _real(name: str, value, allow_none: bool = True):
    """``value`` as a finite real number (a 0-d tensor or array counts: its number is returned), or None
    when ``allow_none``; anything else is a ValueError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0 and value.dtype != bool \
            and not (isinstance(value, torch.Tensor) and value.is_complex()):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number{' or None' if allow_none else ''}, got {value!r}")
    return value


def _check_positive_real(name: str, value) -> None:
    value = _real(name, value, allow_none=False)
    if value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def plot_heatmap(ax, matrix, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                 title: str | None = None, cmap: str = "Blues", vmin: float | None = 0.0,
                 vmax: float | None = None, annotate: bool = False, colorbar: bool = True,
                 colorbar_label: str | None = None):
    """Draw ``matrix`` (rows, columns) on ``ax``; rows are queries, columns are keys.

    With ``colorbar`` (the default) a colour bar beside ``ax`` says which number each colour is,
    labelled ``colorbar_label`` (e.g. "attention weight"); pass ``colorbar=False`` when several
    heatmaps share one bar (:func:`add_colorbar`, as :func:`show_heatmaps` does).

    Returns the ``AxesImage``; call ``image.set_data(new)`` to update it in place. Refused before
    anything is drawn: see :func:`as_matrix`; labels that are not one per column (``xlabels``) or
    row (``ylabels``); ``vmin`` / ``vmax`` that are not finite numbers, or ``vmin > vmax``;
    ``colorbar`` not a bool, ``colorbar_label`` not a str or None.
    """
    _check_ax(ax)
    m = as_matrix(matrix)
    _check_labels("xlabels", xlabels, m.shape[1])
    _check_labels("ylabels", ylabels, m.shape[0])
    _checks.check_bool("colorbar", colorbar)
    _check_label_text("colorbar_label", colorbar_label)
    vmin, vmax = _real("vmin", vmin), _real("vmax", vmax)
    if vmin is not None and vmax is not None and vmin > vmax:
        raise ValueError(f"vmin must not be larger than vmax, got vmin={vmin!r}, vmax={vmax!r}")
    if vmax is None and vmin is not None:  # the matrix's largest value (never below vmin: an empty scale)
        vmax = max(m.max(), vmin)
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    label_heatmap(ax, xlabels, ylabels, m.shape)
    if title:
        ax.set_title(title, fontsize=10)
    if annotate:
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 * (m.max() or 1) else "black")
    if colorbar:
        add_colorbar(image, ax, colorbar_label)
    return image


def _check_label_text(name: str, text) -> None:
    if text is not None and not isinstance(text, str):
        raise TypeError(f"{name} must be a str or None, got {type(text).__name__}")


def add_colorbar(image, axes, label: str | None = None):
    """One colour bar for ``image`` beside ``axes`` (an Axes, or a list of Axes that share it, e.g.
    heatmaps drawn with the same vmin and vmax); ``label`` names the numbers. Returns the Colorbar,
    or None for an empty scale (vmin == vmax: a bar would say nothing, and would widen the scale)."""
    _check_label_text("label", label)
    for ax in axes if isinstance(axes, (list, tuple)) else [axes]:
        _check_ax(ax)
    norm = image.norm
    if norm.vmin is not None and norm.vmin == norm.vmax:
        return None
    bar = image.axes.figure.colorbar(image, ax=axes, shrink=0.8, fraction=0.05, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    if label:
        bar.set_label(label, fontsize=8)
    return bar


def label_heatmap(ax, xlabels: Sequence[str] | None, ylabels: Sequence[str] | None, shape, *,
                  parse_math: bool = True) -> None:
    """One tick per column and per row of a heatmap of ``shape`` (rows, columns), labelled with
    the words (their indices when None), without tick marks.

    ``parse_math=False`` draws labels exactly as written (a typed ``$x$`` stays ``$x$``, never TeX).
    """
    rows, cols = shape
    _check_labels("xlabels", xlabels, cols)
    _check_labels("ylabels", ylabels, rows)
    ax.set_xticks(range(cols))
    ax.set_xticklabels(list(xlabels) if xlabels is not None else [str(j) for j in range(cols)], fontsize=9,
                       parse_math=parse_math)
    ax.set_yticks(range(rows))
    ax.set_yticklabels(list(ylabels) if ylabels is not None else [str(i) for i in range(rows)], fontsize=9,
                       parse_math=parse_math)
    ax.tick_params(length=0)


def show_heatmaps(matrices, xlabels: Sequence[str] | None = None, ylabels: Sequence[str] | None = None,
                  titles: Sequence[str] | None = None, cols: int | None = None, size: float = 2.6,
                  cmap: str = "Blues", suptitle: str | None = None, colorbar_label: str | None = "weight"):
    """Draw several heatmaps side by side (e.g. the heads of multi-head attention).

    matrices: a tensor (n, rows, columns) or a list of 2-D matrices. Returns the Figure. Every
    heatmap uses one scale, from 0 to the largest entry of all, shown by one colour bar on the
    right labelled ``colorbar_label``.
    Refused before a figure is made: another rank, an element :func:`as_matrix` refuses, no
    matrix at all, ``titles`` not one per matrix, ``cols`` not a positive int, ``size`` not > 0.
    """
    mats = _matrices(matrices)
    _check_label_text("colorbar_label", colorbar_label)
    if titles is not None:
        _check_labels("titles", titles, len(mats), per="matrix")
    _checks.check_positive_int("cols", cols, allow_none=True)
    _check_positive_real("size", size)
    for m in mats:  # the labels are shared: they must fit every matrix
        _check_labels("xlabels", xlabels, m.shape[1])
        _check_labels("ylabels", ylabels, m.shape[0])
    cols = cols or len(mats)
    rows = -(-len(mats) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.7, size * rows), squeeze=False,
                             constrained_layout=True)  # + 0.7 inch: the colour bar
    vmax = max(max(m.max() for m in mats), 0.0)  # one scale from 0 (vmin) to the largest value
    for k, ax in enumerate(axes.flat):
        if k >= len(mats):
            ax.axis("off")
            continue
        image = plot_heatmap(ax, mats[k], xlabels, ylabels, title=titles[k] if titles else None, cmap=cmap,
                             vmax=vmax, colorbar=False)
        if k % cols:
            ax.set_yticklabels([])
    add_colorbar(image, list(axes.flat), colorbar_label)  # one bar: every map has the same scale
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _matrices(matrices) -> list[np.ndarray]:
    """show_heatmaps' ``matrices`` as a list of 2-D arrays, each checked (its index in the messages)."""
    what = "a tensor (n, rows, columns) or a list of 2-D matrices"
    if isinstance(matrices, (torch.Tensor, np.ndarray)):
        if matrices.ndim != 3:
            raise ValueError(f"matrices must be {what}, got shape {tuple(matrices.shape)}")
    elif isinstance(matrices, (str, bytes)) or not hasattr(matrices, "__iter__"):
        raise TypeError(f"matrices must be {what}, got {type(matrices).__name__}")
    mats = [as_matrix(m, f"matrices[{k}]") for k, m in enumerate(matrices)]
    if not mats:
        raise ValueError("matrices must contain at least one matrix")
    return mats


def plot_attention_grid(weights: Sequence, sources: Sequence[Sequence[str]], targets: Sequence[Sequence[str]],
                        title: str | None = None, size: float = 3.8):
    """One heatmap per sentence: weights[k] (len(targets[k]), len(sources[k])). Returns the Figure.

    Every panel uses the fixed scale 0 to 1 (attention weights lie in it), shown by one colour bar.

    Refused before a figure is made: lists of different lengths or empty ones, and a weights[k]
    that :func:`as_matrix` refuses or whose shape is not (len(targets[k]), len(sources[k])).
    """
    for name, value in (("weights", weights), ("sources", sources), ("targets", targets)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be a list (one entry per sentence), got {type(value).__name__}")
    if not (len(weights) == len(sources) == len(targets)) or not len(weights):
        raise ValueError(f"weights, sources and targets must be non-empty and of equal length, "
                         f"got {len(weights)}, {len(sources)}, {len(targets)}")
    for k, (w, src, tgt) in enumerate(zip(weights, sources, targets)):
        rows, columns = as_matrix(w, f"weights[{k}]").shape
        _check_labels(f"sources[{k}]", src, columns, per=f"column of weights[{k}]")
        _check_labels(f"targets[{k}]", tgt, rows, per=f"row of weights[{k}]")
    widths = [max(3, len(src)) for src in sources]  # long sentences get wider panels
    fig, axes = plt.subplots(1, len(weights), figsize=(0.42 * sum(widths) + 1.2 * len(weights) + 0.8, size),
                             squeeze=False, constrained_layout=True, gridspec_kw={"width_ratios": widths})
    for ax, w, src, tgt in zip(axes[0], weights, sources, targets):
        image = plot_heatmap(ax, w, src, tgt, vmax=1.0, colorbar=False)
    # weights lie in [0, 1]: every panel uses that fixed scale, so one bar serves them all
    add_colorbar(image, list(axes[0]), "attention weight (0 to 1)")
    if title:
        fig.suptitle(title)
    return fig


def figure_to_png(fig, dpi: int | None = None) -> bytes:
    """The PNG bytes of ``fig`` (what a notebook displays); no timestamps, so reproducible."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if dpi is not None:
        _check_positive_real("dpi", dpi)
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
    """Exponential moving average of ``values``, starting at the first value (same length).

    beta: a number in [0, 1] (0: no smoothing; 1: the first value forever).
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be a number in [0, 1], got {beta!r}")
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
        try:
            steps, losses = list(steps), [float(x) for x in losses]
        except (TypeError, ValueError):
            raise TypeError(f"LiveLossPlot.update: steps and losses must be sequences of numbers, got "
                            f"{type(steps).__name__} and {type(losses).__name__}") from None
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
