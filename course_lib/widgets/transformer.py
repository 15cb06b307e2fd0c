"""The widgets of notebook 02 (the Transformer), each a thin layer over a pure function.

- :class:`ScalingExplorer`: why Attention divides by sqrt(d_k) (``diagnostics.softmax_saturation``);
- :class:`PositionExplorer`: the sinusoidal positional table and how similar two positions are;
- :class:`TransformerAttentionExplorer`: every attention map of a trained encoder-decoder
  (:func:`course_lib.tasks.translation.trace_transformer`): sentence, layer, head, and kind of attention.

Each renders into one figure outside pyplot and swaps a PNG in place (see :mod:`course_lib.widgets.base`).
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Callable, Sequence

import ipywidgets
import numpy as np
import torch
from matplotlib.patches import Rectangle

from .. import _checks
from ..diagnostics import softmax_saturation
from ..transformer import sinusoidal_positional_encoding
from .base import MAX_TYPED_WORDS, FigureWidget, Memo, status_note, widget_figure

__all__ = ["ScalingExplorer", "PositionExplorer", "TransformerAttentionExplorer", "position_similarity",
           "ATTENTION_KINDS"]

_UNSCALED, _SCALED = "#d62728", "#1f77b4"


def _check_sizes(name: str, values, allow_empty: bool = False) -> list[int]:
    """``values`` as a list of positive ints (a list of widths or key dimensions); refused otherwise."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of positive ints, got {type(values).__name__}")
    values = list(values)
    if not values and not allow_empty:
        raise ValueError(f"{name} must hold at least one size, got none")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must hold positive ints, got {v!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a size, got {values}")
    return [int(v) for v in values]


class ScalingExplorer(FigureWidget):
    """Widget: choose d_k; see softmax(q·k) and softmax(q·k / sqrt(d_k)) side by side.

    Left: the weights of one random query (the first of ``num_queries``) over ``n_keys`` random
    keys, unscaled (red) and scaled (blue), titled as one query; its largest weights are in the status line.
    Right: attention entropy and the size of the softmax's gradient against d_k, each the mean over
    the ``num_queries`` queries, with the chosen d_k marked. The figure's title gives means over
    the same queries, and says so: every number names what it is computed from.
    """

    def __init__(self, d_ks: Sequence[int] = tuple(2 ** i for i in range(11)), n_keys: int = 16,
                 num_queries: int = 256, seed: int = 0):
        d_ks = _check_sizes("d_ks", d_ks)
        _checks.check_positive_int("n_keys", n_keys)
        _checks.check_positive_int("num_queries", num_queries)
        if n_keys < 2:
            raise ValueError(f"n_keys must be at least 2 (softmax over one key is always 1), got {n_keys}")
        super().__init__(widget_figure((10.0, 3.3)))
        self.n_keys, self.num_queries, self.seed = n_keys, num_queries, seed
        self.d_ks = list(d_ks)
        self.curves = {scaled: [softmax_saturation(d, scaled=scaled, n_keys=n_keys, num_queries=num_queries,
                                                   seed=seed) for d in self.d_ks]
                       for scaled in (False, True)}
        self.d_k = ipywidgets.SelectionSlider(options=self.d_ks, value=64 if 64 in self.d_ks else self.d_ks[0],
                                              description="d_k", continuous_update=True)
        self.status = ipywidgets.HTML()
        self.watch([self.d_k])
        self.widget = ipywidgets.VBox([self.d_k, self.status])
        self._build_figure()
        self.redraw()

    def _build_figure(self) -> None:
        grid = self.fig.add_gridspec(1, 3, width_ratios=[1.4, 1, 1], wspace=0.35, left=0.06, right=0.98,
                                     top=0.84, bottom=0.17)
        self.ax_bar = self.fig.add_subplot(grid[0])
        x = np.arange(self.n_keys)
        self.bars = {False: self.ax_bar.bar(x - 0.2, np.zeros(self.n_keys), 0.4, color=_UNSCALED,
                                            label="softmax(q·k_j)", animated=True),
                     True: self.ax_bar.bar(x + 0.2, np.zeros(self.n_keys), 0.4, color=_SCALED,
                                           label="softmax(q·k_j / √d_k)", animated=True)}
        self.ax_bar.set_ylim(0, 1)
        self.ax_bar.set_xticks(x)
        self.ax_bar.set_xlabel("key j", fontsize=9)
        self.ax_bar.set_ylabel("weight a_j of query 1", fontsize=9)
        self.ax_bar.legend(fontsize=8, loc="upper left")
        self.ax_bar.tick_params(labelsize=7)
        # the bars are one query, and say so (the figure's title averages over all the queries); a fixed
        # title, drawn once into the background: a redraw paints no more text than before
        self.bar_title = self.ax_bar.set_title(f"one query (query 1 of {self.num_queries}): its weights", fontsize=9)
        self.markers = {}
        mean = f"mean of {self.num_queries} queries"
        for ax, key, label in ((self.fig.add_subplot(grid[1]), "entropy", f"entropy of a (nats), {mean}"),
                               (self.fig.add_subplot(grid[2]), "grad_norm", f"|d a / d scores|, {mean}")):
            for scaled, color in ((False, _UNSCALED), (True, _SCALED)):
                ax.plot(self.d_ks, [c[key] for c in self.curves[scaled]], "-", color=color, lw=1.5)
                self.markers[key, scaled], = ax.plot([], [], "o", color=color, ms=8, animated=True)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("d_k", fontsize=9)
            ax.set_title(label, fontsize=9)
            ax.set_ylim(bottom=0)
            ax.tick_params(labelsize=8)
        self.fig.axes[1].axhline(np.log(self.n_keys), color="gray", ls=":", lw=1)
        self.fig.axes[1].set_ylim(0, 1.25 * np.log(self.n_keys))
        self.fig.axes[1].text(self.d_ks[-1], np.log(self.n_keys), "uniform: log n ", fontsize=7, va="bottom",
                              ha="right", color="gray")
        self.title = self.fig.suptitle("", fontsize=10, animated=True)
        self.blitter.save()

    def render(self) -> bytes:
        i = self.d_ks.index(self.d_k.value)
        for scaled in (False, True):
            point = self.curves[scaled][i]
            for bar, value in zip(self.bars[scaled], point["example_weights"].tolist()):
                bar.set_height(value)
            for key in ("entropy", "grad_norm"):
                self.markers[key, scaled].set_data([self.d_k.value], [point[key]])
        raw, scaled = self.curves[False][i], self.curves[True][i]
        one_raw, one_scaled = float(raw["example_weights"].max()), float(scaled["example_weights"].max())
        self.title.set_text(f"d_k = {self.d_k.value}, over {self.num_queries} random queries: score std "
                            f"{raw['score_std']:.1f} unscaled vs {scaled['score_std']:.1f} scaled; mean largest "
                            f"weight {raw['max_weight']:.2f} vs {scaled['max_weight']:.2f}")
        self.status.value = (f"means over {self.num_queries} random queries, {self.n_keys} keys each: entropy "
                             f"{raw['entropy']:.2f} vs {scaled['entropy']:.2f} nats, gradient size "
                             f"{raw['grad_norm']:.3f} vs {scaled['grad_norm']:.3f}; the bars, query 1 alone: largest "
                             f"weight {one_raw:.2f} vs {one_scaled:.2f}")
        return self.blitter.png([*self.bars[False], *self.bars[True], *self.markers.values(), self.title])


def position_similarity(pe: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every two rows of a positional table: (max_len, d) -> (max_len, max_len).

    Refused: anything but a 2-D floating-point tensor (``TypeError`` / ``ValueError``), NaN or
    infinite entries, and an all-zero row (its cosine with anything is undefined).
    """
    if not isinstance(pe, torch.Tensor):
        raise TypeError(f"pe must be a 2-D tensor (max_len, d_model), got {type(pe).__name__}")
    if pe.dim() != 2 or 0 in pe.shape:
        raise ValueError(f"pe must be a 2-D tensor (max_len, d_model), got shape {tuple(pe.shape)}")
    if not pe.is_floating_point():
        raise TypeError(f"pe must be a floating-point tensor, got dtype {pe.dtype}")
    if not torch.isfinite(pe).all():
        raise ValueError("pe must hold finite numbers, got NaN or infinite entries")
    norms = pe.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError(f"pe must have no all-zero row (its cosine similarity is undefined), "
                         f"got one at row {int((norms[:, 0] == 0).nonzero()[0])}")
    unit = pe / norms
    return unit @ unit.T


class PositionExplorer(FigureWidget):
    """Widget: the sinusoidal table PE (positions x dimensions) and position p's similarity to all others.

    Controls: the position p, and the model width d_model (the table changes with it). The table
    of each width is drawn once and kept as that width's background; moving p repaints only the
    frame on row p, the similarity curve and its title.
    """

    def __init__(self, max_len: int = 64, d_models: Sequence[int] = (16, 32, 64, 128, 512), position: int = 10):
        _checks.check_positive_int("max_len", max_len)
        if max_len < 2:
            raise ValueError(f"max_len must be at least 2 (a position and its neighbour), got {max_len}")
        d_models = _check_sizes("d_models", d_models)
        if isinstance(position, bool) or not isinstance(position, numbers.Integral) or not 0 <= position < max_len:
            raise ValueError(f"position must be an int in [0, max_len={max_len}), got {position!r}")
        super().__init__(widget_figure((10.0, 3.4)))
        self.max_len = max_len
        self.position = ipywidgets.IntSlider(min=0, max=max_len - 1, value=position, description="position p")
        self.d_model = ipywidgets.Dropdown(options=list(d_models), value=64 if 64 in d_models else d_models[0],
                                           description="d_model")
        self.watch([self.position])
        self.watch([self.d_model], self._new_table)
        self.widget = ipywidgets.HBox([self.position, self.d_model])
        grid = self.fig.add_gridspec(1, 2, width_ratios=[1.2, 1], wspace=0.38, left=0.06, right=0.98,
                                     top=0.86, bottom=0.15)
        self.ax_pe = self.fig.add_subplot(grid[0])
        self.ax_sim = self.fig.add_subplot(grid[1])
        self._tables = Memo(len(d_models))
        self._build_figure()
        self._new_table()

    def _build_figure(self) -> None:
        """The artists every width shares; :meth:`_new_table` fills them in."""
        self.pe_image = self.ax_pe.imshow(np.zeros((1, 1)), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                                          interpolation="antialiased")
        self.ax_pe.set_autoscale_on(False)  # the limits follow the table (set in _new_table)
        self.colorbar = self.fig.colorbar(self.pe_image, ax=self.ax_pe, fraction=0.04, pad=0.02)  # fixed -1..1
        self.colorbar.set_label("PE value", fontsize=8)
        self.colorbar.ax.tick_params(labelsize=7)
        self.ax_pe.set_xlabel("dimension (2i: sin, 2i+1: cos)", fontsize=9)
        self.ax_pe.set_ylabel("position p", fontsize=9)
        self.pe_title = self.ax_pe.set_title("", fontsize=10)
        self.row = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5, animated=True)
        self.ax_pe.add_patch(self.row)
        self.sim_line, = self.ax_sim.plot(range(self.max_len), np.zeros(self.max_len), color=_SCALED, animated=True)
        self.sim_dot, = self.ax_sim.plot([], [], "o", color=_UNSCALED, animated=True)
        self.sim_title = self.ax_sim.set_title("", fontsize=10, animated=True)
        self.ax_sim.set_xlabel("position q", fontsize=9)
        self.ax_sim.set_ylabel("cos(PE[p], PE[q])", fontsize=9)
        self.ax_sim.grid(alpha=0.3)

    def _new_table(self) -> None:
        d = self.d_model.value

        def table():
            pe = sinusoidal_positional_encoding(self.max_len, d)
            return pe, position_similarity(pe).numpy()

        self.pe, self.similarity = self._tables.get(d, table)
        self.pe_image.set_data(self.pe.numpy())
        self.pe_image.set_extent((-0.5, d - 0.5, self.max_len - 0.5, -0.5))
        self.ax_pe.set_xlim(-0.5, d - 0.5)
        self.ax_pe.set_ylim(self.max_len - 0.5, -0.5)
        self.pe_title.set_text(f"PE, {self.max_len} positions x {d} dimensions")
        self.row.set_width(d)
        self.ax_sim.set_ylim(min(-0.2, float(self.similarity.min()) - 0.05), 1.05)
        if not self.blitter.use(d):
            self.blitter.save(d)
        self.redraw()

    def render(self) -> bytes:
        p = self.position.value
        self.row.set_y(p - 0.5)
        self.sim_line.set_ydata(self.similarity[p])
        self.sim_dot.set_data([p], [1.0])
        neighbours = [self.similarity[p, q] for q in (p - 1, p + 1) if 0 <= q < self.max_len]
        self.sim_title.set_text(f"position {p} against every position (next door: {np.mean(neighbours):.2f})")
        return self.blitter.png([self.row, self.sim_line, self.sim_dot, self.sim_title])


# kind of attention -> (key in trace["maps"], row labels, column labels, what a row is)
ATTENTION_KINDS = {
    "encoder self": ("encoder_self", "source", "source", "each Chinese word looks at the Chinese words"),
    "decoder self (masked)": ("decoder_self", "target_inputs", "target_inputs",
                              "each English input looks at itself and earlier inputs"),
    "cross": ("cross", "output", "source", "the step that writes each English word looks at the Chinese words"),
}


class TransformerAttentionExplorer(FigureWidget):
    """Widget: every attention map of a trained encoder-decoder, for any sentence.

    Controls: a test sentence (or typed Chinese), the kind of attention (encoder self, masked
    decoder self, cross), the layer, and the head (or the mean of the heads). Left: the chosen
    map, large, with word labels. Right: all heads of that layer and kind, the chosen one framed,
    and one colour bar for every map (attention weights, on the fixed scale 0 to 1).

    ``trace_fn(zh_words) -> dict`` is :func:`course_lib.tasks.translation.trace_transformer` with
    the model and vocabularies bound: keys ``source``, ``output``, ``target_inputs`` and ``maps``
    (kind -> (L, h, rows, columns)). The last 64 traces are kept, so a sentence seen before is
    not translated again.

    A typed text is split by ``segment``; only its first ``max_words`` words are used (keep it
    within the model's positional table, ``max_len``; the status line says when a text was cut).
    An empty box, or a sentence the model refuses, leaves the picture as it was and shows why
    in the status line.
    """

    def __init__(self, trace_fn: Callable[[list[str]], dict], sentences: Sequence[Sequence[str]],
                 segment: Callable[[str], list[str]] | None = None, kind: str = "cross",
                 max_words: int = MAX_TYPED_WORDS):
        if not sentences:
            raise ValueError("sentences must not be empty")
        if not isinstance(kind, str) or kind not in ATTENTION_KINDS:
            raise ValueError(f"kind must be one of {list(ATTENTION_KINDS)}, got {kind!r}")
        _checks.check_positive_int("max_words", max_words)
        super().__init__(widget_figure((10.0, 4.2)))
        self.trace_fn = trace_fn
        self.segment = segment or str.split
        self.max_words = int(max_words)
        self._note = ""  # what the status line adds about the words shown (e.g. that a text was cut)
        self._traces = Memo(64)
        self._trace = self._traced(list(sentences[0]))
        L, h = self._trace["maps"]["cross"].shape[:2]
        self.num_heads = h
        self.sentence = ipywidgets.Dropdown(options=[(" ".join(s), tuple(s)) for s in sentences],
                                            description="sentence", layout=ipywidgets.Layout(width="420px"))
        self.typed = ipywidgets.Text(placeholder="or type Chinese here, e.g. 我昨天在公园里看见了一只猫",
                                     description="your own", continuous_update=False,
                                     layout=ipywidgets.Layout(width="420px"))
        self.kind = ipywidgets.ToggleButtons(options=list(ATTENTION_KINDS), value=kind, description="attention")
        self.layer = ipywidgets.ToggleButtons(options=[(str(i + 1), i) for i in range(L)], value=L - 1,
                                              description="layer")
        self.head = ipywidgets.ToggleButtons(options=[(str(i + 1), i) for i in range(h)] + [("mean", -1)],
                                             value=0, description="head")
        for control in (self.kind, self.layer, self.head):
            control.style.button_width = "auto"
        self.watch([self.kind, self.layer, self.head])
        self.watch([self.sentence], lambda: self._new_sentence(list(self.sentence.value)))
        self.watch([self.typed], self._on_typed)
        self.status = ipywidgets.HTML()
        self.widget = ipywidgets.VBox([self.sentence, self.typed, self.kind, self.layer, self.head, self.status])
        self._build_figure()
        self.redraw()

    def _traced(self, words: list[str]) -> dict:
        return self._traces.get(tuple(words), lambda: self.trace_fn(list(words)))

    def _on_typed(self) -> None:
        typed = self.typed_words(self.typed.value, self.segment, self.max_words)
        if typed is not None:
            words, note = typed
            self._new_sentence(words, note)

    def _new_sentence(self, words: list[str], note: str = "") -> None:
        self._trace = self._traced(words)  # stays as it was when the model refuses the words
        self._note = note
        self.redraw()

    def selected(self) -> tuple[np.ndarray, list[str], list[str]]:
        """The chosen map (rows, columns) and its row and column labels."""
        key, rows, cols, _ = ATTENTION_KINDS[self.kind.value]
        maps = self._trace["maps"][key][self.layer.value]  # (h, rows, columns)
        w = maps.mean(0) if self.head.value < 0 else maps[self.head.value]
        return w.numpy(), self._trace[rows], self._trace[cols]

    def _build_figure(self) -> None:
        """The axes, images, frames and title, made once.

        Word labels belong to a layout (a sentence and kind): a new layout is drawn in full once and
        its picture kept as the background, on top of which head and layer changes only repaint the
        images (blitting). ``self.blitter`` keeps 16 layouts' backgrounds, so switching back to a kind
        already seen is as fast as changing the head.
        """
        h = self.num_heads
        grid = self.fig.add_gridspec(2, 1 + (h + 1) // 2, width_ratios=[2.2] + [1] * ((h + 1) // 2),
                                     left=0.11, right=0.9, top=0.9, bottom=0.17, wspace=0.3, hspace=0.35)
        self.ax_main = self.fig.add_subplot(grid[:, 0])
        self.small_axes = [self.fig.add_subplot(grid[m % 2, 1 + m // 2]) for m in range(h)]
        blank = np.zeros((1, 1))
        self.main_image = self.ax_main.imshow(blank, cmap="Blues", vmin=0, vmax=1, aspect="auto",
                                              interpolation="nearest", animated=True)
        # every map shows weights on the fixed scale [0, 1]: one bar, drawn once into the background
        self.colorbar = self.fig.colorbar(self.main_image, cax=self.fig.add_axes((0.925, 0.17, 0.013, 0.73)))
        self.colorbar.set_label("attention weight (0 to 1)", fontsize=8)
        self.colorbar.ax.tick_params(labelsize=7)
        self.small_images = [ax.imshow(blank, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest",
                                       animated=True) for ax in self.small_axes]
        for m, ax in enumerate(self.small_axes):
            ax.set_title(f"head {m + 1}", fontsize=8)
        for ax in (self.ax_main, *self.small_axes):
            ax.set_axis_off()  # no ticks to lay out: word labels are plain text
        self.frames = [Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor=_UNSCALED,
                                 linewidth=3, visible=False, animated=True, clip_on=False) for ax in self.small_axes]
        for ax, frame in zip(self.small_axes, self.frames):
            ax.add_patch(frame)
        self.title = self.fig.suptitle("", fontsize=11, animated=True)
        self.labels = []

    def _set_layout(self, rows: list[str], cols: list[str]) -> None:
        """Resize the images to (rows, columns); draw the word labels into the background."""
        key = (tuple(rows), tuple(cols))
        extent = (-0.5, len(cols) - 0.5, len(rows) - 0.5, -0.5)
        for image in (self.main_image, *self.small_images):
            image.set_extent(extent)
            image.axes.set_xlim(extent[0], extent[1])
            image.axes.set_ylim(extent[2], extent[3])
        if self.blitter.use(key):
            return
        for text in self.labels:
            text.remove()
        vertical = max(map(len, cols)) > 3
        # typed words are text, never TeX (parse_math=False: a typed "$x$" stays "$x$")
        self.labels = [self.ax_main.text(j, len(rows) - 0.3, word, rotation=90 if vertical else 0, ha="center",
                                         va="top", fontsize=9, parse_math=False) for j, word in enumerate(cols)]
        self.labels += [self.ax_main.text(-0.7, i, word, ha="right", va="center", fontsize=9, parse_math=False)
                        for i, word in enumerate(rows)]
        self.blitter.save(key)

    def render(self) -> bytes:
        w, rows, cols = self.selected()
        if self.blitter.key != (tuple(rows), tuple(cols)):
            self._set_layout(rows, cols)
        key, _, _, meaning = ATTENTION_KINDS[self.kind.value]
        self.main_image.set_data(w)
        maps = self._trace["maps"][key][self.layer.value]
        for m, (image, frame) in enumerate(zip(self.small_images, self.frames)):
            image.set_data(maps[m].numpy())
            frame.set_visible(self.head.value in (m, -1))
        head = "mean of the heads" if self.head.value < 0 else f"head {self.head.value + 1}"
        self.title.set_text(f"{self.kind.value} attention, layer {self.layer.value + 1}, {head}")
        source = html.escape(" ".join(self._trace["source"]), quote=False)
        output = html.escape(" ".join(w for w in self._trace["output"] if w != "<eos>"), quote=False)
        self.status.value = (f"<b>{source}</b> → <b>{output}</b><br>rows: {meaning}"
                             + (f"<br>{status_note(self._note)}" if self._note else ""))
        return self.blitter.png([self.main_image, *self.small_images, *self.frames, self.title])
