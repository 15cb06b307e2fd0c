"""The widget of notebook 01: where a translator's attention looks at each decoder step.

- :class:`TranslationAttentionView`: one figure of a translation's attention (the alignment
  matrix, a_i of one step as bars, that step's context vector), updated in place;
- :class:`AttentionExplorer`: a sentence (chosen or typed), a score function and the step,
  over ``trace_fn`` (:func:`course_lib.tasks.translation.trace_translation` with a model bound).
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Callable, Sequence

import ipywidgets
import numpy as np
from matplotlib.patches import Rectangle

from .. import _checks
from ..viz import as_matrix, label_heatmap
from .base import MAX_TYPED_WORDS, Blitter, FigureWidget, Memo, canvas_to_png, status_note, widget_figure

__all__ = ["TranslationAttentionView", "AttentionExplorer"]

_CURRENT, _OTHER = "#d62728", "#1f77b4"


class TranslationAttentionView:
    """Attention of a translation, one decoder step at a time.

    Left: the whole alignment matrix a (output words x source words), the current step framed,
    and its colour bar (the fixed scale 0 to 1 of attention weights).
    Top right: a_i for the current step, as bars over the source words.
    Bottom right: the context vector of that step, context = sum_i a_i h_i, as a colour strip.

    The figure and its artists are made once, and redrawn in three layers (blitting):
    new words set the labels and bar count and draw the figure once, kept as the background of
    those words (the last 16 are kept); new weights or a new title paint the matrix and title over
    it (another score function that translates a sentence the same way costs no full draw); a new
    step paints only the frame, the bars, the step title and the context strip: a few milliseconds.
    """

    def __init__(self, figsize=(10.0, 3.6), dpi: int = 80):
        self.fig = widget_figure(figsize, dpi)
        grid = self.fig.add_gridspec(2, 2, width_ratios=[1.15, 1], height_ratios=[3, 1], wspace=0.36,
                                     hspace=0.9, left=0.1, right=0.98, top=0.86, bottom=0.12)
        self.ax_map = self.fig.add_subplot(grid[:, 0])
        self.ax_bar = self.fig.add_subplot(grid[0, 1])
        self.ax_ctx = self.fig.add_subplot(grid[1, 1])
        self.blitter = Blitter(self.fig)
        self._words_key = self._matrix_key = None
        self._words_background = None
        self._bars = None
        self._build()

    def _build(self) -> None:
        """The artists every sentence shares; :meth:`_set_sentence` fills them in."""
        ax = self.ax_map
        self._image = ax.imshow(np.zeros((1, 1)), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto",
                                interpolation="nearest", animated=True)
        for spine in ax.spines.values():  # drawn over the matrix, so repainted after it
            spine.set_animated(True)
        ax.set_autoscale_on(False)  # the limits follow the sentence (set in _set_sentence)
        ax.tick_params(length=0)
        ax.set_xlabel("source words (keys h_i)", fontsize=9)
        ax.set_ylabel("output words (one query per step)", fontsize=9)
        # weights lie in [0, 1]: a fixed scale, so the bar is drawn once, into the background
        self.colorbar = self.fig.colorbar(self._image, ax=ax, fraction=0.05, pad=0.02)
        self.colorbar.set_label("weight a_i (0 to 1)", fontsize=8)
        self.colorbar.ax.tick_params(labelsize=7)
        self._frame = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=_CURRENT, linewidth=2, animated=True)
        ax.add_patch(self._frame)
        self.ax_bar.set_ylim(0, 1)
        self.ax_bar.set_ylabel("a_i", fontsize=9)
        self.ax_bar.set_title("a = softmax(s(h_i, q))", fontsize=10, loc="right")
        self._step_text = self.ax_bar.text(0.0, 1.04, "", transform=self.ax_bar.transAxes, fontsize=10,
                                           ha="left", va="bottom", color=_CURRENT, animated=True)
        self.ax_ctx.set_yticks([])
        self.ax_ctx.set_autoscale_on(False)
        self._ctx_image = self.ax_ctx.imshow(np.zeros((1, 1)), cmap="RdBu_r", aspect="auto", animated=True)
        self._title = self.fig.suptitle("", fontsize=11, animated=True)

    def update(self, source: Sequence[str], output: Sequence[str], weights, contexts=None,
               step: int = 0, title: str | None = None) -> None:
        """source: S words; output: T words; weights (T, S); contexts (T, d) or None; step in [0, T)."""
        w = as_matrix(weights, "weights")
        if w.shape != (len(output), len(source)):
            raise ValueError(f"weights must have shape (len(output), len(source)) = "
                             f"({len(output)}, {len(source)}), got {w.shape}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= step < len(output):
            raise ValueError(f"step must be an int in [0, {len(output)}), got {step!r}")
        c = None if contexts is None else as_matrix(contexts, "contexts")
        if c is not None and c.shape[0] != len(output):
            raise ValueError(f"contexts must have one row per output word ({len(output)}, d), got {c.shape}")
        words_key = (tuple(source), tuple(output), None if c is None else c.shape[1])
        if words_key != self._words_key:
            self._set_words(list(source), list(output), None if c is None else c.shape[1])
            if not self.blitter.use(words_key):
                self.blitter.save(words_key)  # animated artists are left out of this full draw ...
            self._words_key, self._words_background, self._matrix_key = words_key, self.blitter.background, None
        matrix_key = (w.tobytes(), title)
        if matrix_key != self._matrix_key:  # ... the matrix and title are painted over it ...
            self._image.set_data(w)
            self._title.set_text(title or "")
            self.blitter.save(over=self._words_background,
                              paint=[self._image, *self.ax_map.spines.values(), self._title])
            self._matrix_key = matrix_key
        # ... and the current step over that: frame its row, set the bar heights, show its context
        row = w[step]
        self._frame.set_y(step - 0.5)
        for bar, value in zip(self._bars, row):
            bar.set_height(value)
            bar.set_color(_CURRENT if value == row.max() else _OTHER)
        self._step_text.set_text(f"step {step + 1}: emits '{output[step]}'")
        moving = [self._frame, *self._bars, self._step_text]
        if c is not None:
            lim = float(np.abs(c).max()) or 1.0
            self._ctx_image.set_clim(-lim, lim)
            self._ctx_image.set_data(c[step:step + 1])
            moving.append(self._ctx_image)
        self.blitter.paint(moving)

    def _set_words(self, source, output, d) -> None:
        """Set what changes only with the words (labels, limits, bar count) and the context width d; no drawing."""
        S, T = len(source), len(output)
        self._image.set_extent((-0.5, S - 0.5, T - 0.5, -0.5))
        self.ax_map.set_xlim(-0.5, S - 0.5)
        self.ax_map.set_ylim(T - 0.5, -0.5)
        label_heatmap(self.ax_map, source, output, (T, S), parse_math=False)  # typed words are text, not TeX
        self._frame.set_width(S)
        if self._bars is not None:
            self._bars.remove()
            self.ax_bar.relim()  # forget the old bars' extent: the x range fits this sentence's bars
        self._bars = self.ax_bar.bar(range(S), np.zeros(S), animated=True)
        self.ax_bar.autoscale_view()  # now, not at the next full draw: blitting may come first
        self.ax_bar.set_xticks(range(S))
        self.ax_bar.set_xticklabels(source, fontsize=9, parse_math=False)
        if d is not None:
            self._ctx_image.set_extent((-0.5, d - 0.5, 0.5, -0.5))
            self.ax_ctx.set_xlim(-0.5, d - 0.5)
            self.ax_ctx.set_ylim(0.5, -0.5)
            self.ax_ctx.set_xlabel(f"context = Σ a_i h_i   ({d} numbers)", fontsize=9)
        self.ax_ctx.set_axis_on() if d is not None else self.ax_ctx.set_axis_off()

    def to_png(self) -> bytes:
        """The PNG of the current state (what the notebook shows)."""
        return canvas_to_png(self.fig)


class AttentionExplorer(FigureWidget):
    """Widget: pick a sentence (or type one), a scoring function, and step through the decoder.

    The work is done by ``trace_fn(score_name, zh_words) -> dict`` with keys ``source``,
    ``output`` (words, ``<eos>`` included), ``weights`` (T, S) and ``contexts`` (T, d); it is a
    plain function, testable without a browser. The widget only moves controls and calls
    :meth:`TranslationAttentionView.update`. The last 64 traces are kept: going back to a
    sentence or a score function seen before translates nothing again.

    A typed text is split by ``segment``; only its first ``max_words`` words are used (the status
    line says so). An empty box, or a sentence the model refuses, leaves the picture as it was
    and shows why in the status line.
    """

    def __init__(self, trace_fn: Callable[[str, list[str]], dict], sentences: Sequence[Sequence[str]],
                 score_names: Sequence[str], segment: Callable[[str], list[str]] | None = None,
                 max_words: int = MAX_TYPED_WORDS):
        if not sentences:
            raise ValueError("sentences must not be empty")
        if not score_names:
            raise ValueError("score_names must not be empty")
        _checks.check_positive_int("max_words", max_words)
        self.max_words = int(max_words)
        self.view = TranslationAttentionView()
        super().__init__(self.view.fig)
        self.blitter = self.view.blitter  # the view blits its own figure
        self.trace_fn = trace_fn
        self.segment = segment or str.split
        self._traces = Memo(64)
        self.sentence = ipywidgets.Dropdown(options=[(" ".join(s), tuple(s)) for s in sentences],
                                            description="sentence", layout=ipywidgets.Layout(width="420px"))
        self.typed = ipywidgets.Text(placeholder="or type Chinese here, e.g. 我昨天在公园里看见了一只猫",
                                     description="your own", continuous_update=False,
                                     layout=ipywidgets.Layout(width="420px"))
        self.score = ipywidgets.Dropdown(options=list(score_names), description="s(h, q)")
        self.step = ipywidgets.IntSlider(min=1, max=1, value=1, description="step")
        self.status = ipywidgets.HTML()
        self._trace = None
        self._note = ""  # what the status line adds about the words shown (e.g. that a text was cut)
        self.watch([self.sentence], self._on_sentence)
        self.watch([self.score], self._compute)  # the same words, another trained model
        self.watch([self.typed], self._on_typed)
        self.watch([self.step])
        self.widget = ipywidgets.VBox([ipywidgets.HBox([self.sentence, self.score]), self.typed, self.step,
                                       self.status])
        self._words = list(sentences[0])
        self._compute()

    # --- callbacks -----------------------------------------------------------
    def _on_sentence(self) -> None:
        self._compute(list(self.sentence.value))

    def _on_typed(self) -> None:
        typed = self.typed_words(self.typed.value, self.segment, self.max_words)
        if typed is not None:
            words, note = typed
            self._compute(words, note)

    # --- work -----------------------------------------------------------------
    def _compute(self, words: list[str] | None = None, note: str | None = None) -> None:
        """Translate ``words`` (default: the words shown now) with the chosen score function and redraw.

        The words become the widget's only once their translation worked.
        """
        score = self.score.value
        words, note = (list(self._words), self._note) if words is None else (words, note or "")
        self._trace = self._traces.get((score, tuple(words)), lambda: self.trace_fn(score, words))
        self._words, self._note = words, note
        n = len(self._trace["output"])
        with self.holding():  # a shorter translation clamps the step: one redraw, below
            self.step.max = n
            self.step.value = min(self.step.value, n)
        source = " ".join(self._trace["source"])
        output = " ".join(w for w in self._trace["output"] if w != "<eos>")
        self.status.value = (f"<b>{html.escape(source, quote=False)}</b> → <b>{html.escape(output, quote=False)}</b>"
                             + (f"<br>{status_note(note)}" if note else ""))
        self.redraw()

    def render(self) -> bytes:
        t = self._trace
        self.view.update(t["source"], t["output"], t["weights"], t.get("contexts"), step=self.step.value - 1,
                         title=f"score s(h, q): {self.score.value}")
        return self.view.to_png()
