"""The widgets of notebook 04 (BERT), each over plain, tested functions.

- :class:`MaskingExplorer`: the MLM rule on a sentence, the three kinds of change coloured
  (:func:`masking_html`);
- :class:`FillMaskExplorer`: what a BERT puts in the [MASK] (:func:`fill_mask`);
- :class:`ModelView`: every head of every layer of a BERT for a sentence or a pair
  (:func:`attention_grid`), one enlarged;
- :func:`head_roles`: how much attention each head gives to a few kinds of key, over many sentences.
"""

from __future__ import annotations

import html
import numbers

import ipywidgets
import numpy as np
import torch
from matplotlib.patches import Rectangle

from .. import _checks
from ..batching import IGNORE_INDEX
from ..bert import BertForPreTraining, BertModel, mask_tokens
from ..batching import model_device
from ..training import evaluating
from .base import FigureWidget, HTMLWidget, Memo, canvas_to_png, status_note, widget_figure

__all__ = ["masking_html", "MaskingExplorer", "fill_mask", "FillMaskExplorer", "bert_attentions", "attention_grid",
           "ModelView", "head_roles", "MAX_MASKING_TOKENS", "MAX_VIEW_TOKENS"]

# The most tokens a widget reads from typed text; the rest is cut and the status line says so.
MAX_MASKING_TOKENS = 512  # what BERT reads: its positional table (max_position_embeddings)
MAX_VIEW_TOKENS = 48      # the model view: beyond it the labels overlap and a redraw takes more than 150 ms


def _encode(tokenizer, text_a: str, text_b: str | None, max_length: int | None) -> tuple[dict, bool]:
    """``tokenizer.encode(text_a, text_b)``, cut to ``max_length`` tokens (the longer sentence first,
    as ``encode`` cuts); and whether anything was cut."""
    for name, text in (("text_a", text_a), ("text_b", text_b)):
        if not isinstance(text, str) and not (name == "text_b" and text is None):
            raise TypeError(f"{name} must be a str{' or None' if name == 'text_b' else ''}, got {type(text).__name__}")
    _checks.check_positive_int("max_length", max_length, allow_none=True)
    encoded = tokenizer.encode(text_a, text_b)
    if max_length is None or len(encoded["input_ids"]) <= max_length:
        return encoded, False
    return tokenizer.encode(text_a, text_b, max_length=max_length), True


def _a_is_empty(encoded: dict) -> bool:
    """True when sentence A gave no token: only [CLS] and its [SEP] are in segment 0."""
    return encoded["token_type_ids"].count(0) == 2


def _cut_note(max_length: int) -> str:
    return f"only the first {max_length} tokens are used (the longer sentence is cut first)"

_KIND_STYLE = {
    "mask": ("#d62728", "→ [MASK] (80%)"),
    "random": ("#ff7f0e", "→ a random token (10%)"),
    "kept": ("#2ca02c", "kept unchanged, still predicted (10%)"),
}


def masking_html(tokenizer, text_a: str, text_b: str | None = None, rate: float = 0.15, seed: int = 0,
                 max_length: int | None = None) -> tuple[str, dict]:
    """Apply the MLM rule to a sentence (pair) and colour what happened to each selected token.

    Returns (HTML, counts) with counts of "selected", "mask", "random", "kept" and "tokens" (ordinary ones).
    ``max_length``: use at most this many tokens (``tokenizer.encode``'s cut). Every token is
    escaped: typed HTML shows as text.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return _masking_html(tokenizer, _encode(tokenizer, text_a, text_b, max_length)[0], rate, seed)


def _masking_html(tokenizer, encoded: dict, rate: float, seed: int) -> tuple[str, dict]:
    ids = torch.tensor([encoded["input_ids"]])
    inputs, labels = mask_tokens(ids, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_id,
                                 special_token_ids=tokenizer.special_ids, mlm_probability=rate,
                                 generator=torch.Generator().manual_seed(seed))
    counts = {"tokens": int((~torch.isin(ids, torch.tensor(tokenizer.special_ids))).sum()), "selected": 0,
              "mask": 0, "random": 0, "kept": 0}
    cells = []
    for original, shown, label in zip(ids[0].tolist(), inputs[0].tolist(), labels[0].tolist()):
        word = html.escape(tokenizer.itos[original])
        if label == IGNORE_INDEX:
            cells.append(f"<span style='color:#555'>{word}</span>")
            continue
        kind = "mask" if shown == tokenizer.mask_id else "kept" if shown == original else "random"
        counts["selected"] += 1
        counts[kind] += 1
        color = _KIND_STYLE[kind][0]
        after = html.escape(tokenizer.itos[shown])
        cells.append(f"<span style='background:{color};color:white;padding:1px 4px;border-radius:3px' "
                     f"title='{word} → {after}'>{word} → {after}</span>" if kind != "kept" else
                     f"<span style='border:2px solid {color};padding:0 3px;border-radius:3px'>{word}</span>")
    legend = " ".join(f"<span style='color:{c}'>■</span> {label}" for c, label in _KIND_STYLE.values())
    summary = (f"{counts['selected']} of {counts['tokens']} ordinary tokens selected: {counts['mask']} [MASK], "
               f"{counts['random']} random, {counts['kept']} kept")
    return (f"<div style='line-height:2.2;font-size:14px'>{' '.join(cells)}</div>"
            f"<div style='font-size:12px'>{legend}<br>{summary}</div>"), counts


class MaskingExplorer(HTMLWidget):
    """Widget: a sentence (and an optional second one), the masking rate and the seed.

    The view is HTML (``self.output``, under the controls); ``self.counts`` holds the counts
    of the last redraw (see :func:`masking_html`). Only the first ``max_tokens`` tokens of the
    pair are used (BERT reads 512); a status line, shown only when it has something to say, tells
    when a text was cut or sentence A is empty.
    """

    def __init__(self, tokenizer, text_a: str = "the man went to the store", text_b: str = "he bought a gallon of milk",
                 max_tokens: int = MAX_MASKING_TOKENS):
        _checks.check_positive_int("max_tokens", max_tokens)
        super().__init__()
        self.tokenizer, self.max_tokens = tokenizer, int(max_tokens)
        layout = ipywidgets.Layout(width="480px")
        self.text_a = ipywidgets.Text(value=text_a, description="sentence A", continuous_update=False, layout=layout)
        self.text_b = ipywidgets.Text(value=text_b, description="sentence B", continuous_update=False, layout=layout)
        self.rate = ipywidgets.FloatSlider(value=0.15, min=0.05, max=0.5, step=0.05, description="rate")
        self.seed = ipywidgets.IntSlider(value=0, min=0, max=99, description="seed")
        self.status = ipywidgets.HTML(layout=ipywidgets.Layout(display="none"))  # shown only with a message
        self.watch([self.text_a, self.text_b, self.rate, self.seed])
        self.widget = ipywidgets.VBox([self.text_a, self.text_b, ipywidgets.HBox([self.rate, self.seed]),
                                       self.status, self.output])
        self.redraw()

    def render(self) -> str:
        encoded, cut = _encode(self.tokenizer, self.text_a.value, self.text_b.value or None, self.max_tokens)
        text, self.counts = _masking_html(self.tokenizer, encoded, self.rate.value, self.seed.value)
        notes = ["sentence A is empty"] * _a_is_empty(encoded) + [_cut_note(self.max_tokens)] * cut
        _show_notes(self, notes)
        return text


def _show_notes(widget, notes: list[str]) -> None:
    """Put ``notes`` (about a text that was used) in a status line that shows itself only when there is
    something to say; an empty list hides it."""
    widget.status.value = status_note("; ".join(notes)) if notes else ""
    widget.status.layout.display = None if notes else "none"


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top: int = 10,
              max_length: int | None = None) -> tuple[list[str], list[tuple[str, float]]]:
    """The tokens of ``text`` and the ``top`` predictions (token, probability) at its first [MASK].

    ``model`` is a :class:`~course_lib.bert.BertForPreTraining`; a second sentence may follow [SEP].
    ``max_length``: use at most this many tokens (``tokenizer.encode``'s cut). Refused
    (``ValueError`` / ``TypeError`` naming the argument): a text that is not a str, is empty,
    has more than one [SEP], has no [MASK] (in the tokens used), or is longer than the model's
    positional table; ``top`` not in [1, vocabulary size].
    """
    tokens, table, _ = _fill_mask(model, tokenizer, text, top, max_length)
    return tokens, table


def _fill_mask(model, tokenizer, text: str, top: int, max_length: int | None):
    """:func:`fill_mask`, and whether the text was cut to ``max_length`` tokens."""
    if not isinstance(model, BertForPreTraining):
        raise TypeError(f"model must be a course_lib.bert.BertForPreTraining, got {type(model).__name__}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    _checks.check_positive_int("top", top)
    if top > len(tokenizer):
        raise ValueError(f"top must be at most the vocabulary size {len(tokenizer)}, got {top}")
    parts = [p.strip() for p in text.split("[SEP]") if p.strip()]
    if not parts:
        raise ValueError("text is empty: write a sentence with [MASK] where a word should be predicted")
    if len(parts) > 2:
        raise ValueError(f"text must be one sentence, or two with one [SEP] between them; got {len(parts)} "
                         f"sentences")
    encoded, cut = _encode(tokenizer, parts[0], parts[1] if len(parts) > 1 else None, max_length)
    ids = torch.tensor([encoded["input_ids"]])
    positions = model.bert.config.max_position_embeddings
    if ids.shape[1] > positions:
        raise ValueError(f"text has {ids.shape[1]} tokens, more than the model's max_position_embeddings="
                         f"{positions}: shorten it, or pass max_length")
    where = (ids[0] == tokenizer.mask_id).nonzero()
    if len(where) == 0:
        raise ValueError(f"text has no [MASK] in its first {max_length} tokens, all that is used" if cut else
                         "write [MASK] where a word should be predicted")
    device = model_device(model)  # the model runs where it is; its scores come back to the CPU
    with evaluating(model):
        logits, _, _ = model(ids.to(device), torch.tensor([encoded["token_type_ids"]], device=device))
    probs = torch.softmax(logits[0, int(where[0])].cpu(), -1)
    best = torch.topk(probs, top)
    tokens = [tokenizer.itos[i] for i in ids[0].tolist()]
    return tokens, [(tokenizer.itos[i], p) for i, p in zip(best.indices.tolist(), best.values.tolist())], cut


class FillMaskExplorer(FigureWidget):
    """Widget: type a sentence with [MASK]; bars show what the model would put there.

    Only the first ``max_position_embeddings`` tokens of a text are used (the status line says
    when it was cut); a text the model cannot read keeps the last picture and says why.
    """

    def __init__(self, model, tokenizer, text: str = "the man went to [MASK] store . he bought a gallon of milk .",
                 top: int = 10):
        if not isinstance(model, BertForPreTraining):
            raise TypeError(f"model must be a course_lib.bert.BertForPreTraining, got {type(model).__name__}")
        _checks.check_positive_int("top", top)
        super().__init__(widget_figure((6.5, 3.0)))
        self.model, self.tokenizer, self.top = model, tokenizer, top
        self.max_tokens = model.bert.config.max_position_embeddings
        self.text = ipywidgets.Text(value=text, description="text", continuous_update=False,
                                    layout=ipywidgets.Layout(width="560px"))
        self.status = ipywidgets.HTML()
        self.watch([self.text])
        self.widget = ipywidgets.VBox([self.text, self.status])
        self.ax = self.fig.add_axes((0.22, 0.15, 0.73, 0.75))
        self.bars = self.ax.barh(np.arange(top), np.zeros(top), color="#1f77b4")
        self.ax.set_yticks(np.arange(top))
        self.ax.invert_yaxis()
        self.ax.set_xlim(0, 1)
        self.ax.set_xlabel("probability at the first [MASK]", fontsize=9)
        self.redraw()

    def render(self) -> bytes:
        try:
            tokens, table, cut = _fill_mask(self.model, self.tokenizer, self.text.value, self.top, self.max_tokens)
        except ValueError as error:
            self.tell(str(error))
            return canvas_to_png(self.fig)  # the last good picture
        for bar, (_, p) in zip(self.bars, table):
            bar.set_width(p)
        self.ax.set_yticklabels([w for w, _ in table], fontsize=9)
        unknown = [t for t in tokens if t == "[UNK]"]
        self.status.value = (f"model input: {html.escape(' '.join(tokens))}"
                             + (" <span style='color:#d62728'>(a word is not in the vocabulary)</span>"
                                if unknown else "")
                             + (f"<br>{status_note(_cut_note(self.max_tokens))}" if cut else ""))
        self.fig.canvas.draw()
        return canvas_to_png(self.fig)


@torch.no_grad()
def bert_attentions(model: BertModel, tokenizer, text_a: str, text_b: str | None = None,
                    max_length: int | None = None):
    """Tokens and every attention map of ``model`` for one sentence (pair): (tokens, tensor (L, h, T, T)).

    ``max_length``: use at most this many tokens (``tokenizer.encode``'s cut). Refused: texts that
    are not str, and a pair longer than the model's max_position_embeddings.
    """
    if not isinstance(model, BertModel):
        raise TypeError(f"model must be a course_lib.bert.BertModel, got {type(model).__name__}")
    return _attentions(model, tokenizer, _encode(tokenizer, text_a, text_b, max_length)[0])


@torch.no_grad()
def _attentions(model: BertModel, tokenizer, encoded: dict):
    positions = model.config.max_position_embeddings
    if len(encoded["input_ids"]) > positions:
        raise ValueError(f"text_a and text_b make {len(encoded['input_ids'])} tokens, more than the model's "
                         f"max_position_embeddings={positions}: shorten them, or pass max_length")
    device = model_device(model)  # the model runs where it is; the maps come back to the CPU (to draw)
    with evaluating(model):
        out = model(torch.tensor([encoded["input_ids"]], device=device),
                    torch.tensor([encoded["token_type_ids"]], device=device))
    return [tokenizer.itos[i] for i in encoded["input_ids"]], torch.stack([a[0] for a in out.attentions]).cpu()


def attention_grid(attentions: torch.Tensor, gap: int = 1) -> np.ndarray:
    """All heads side by side in one image: (L, h, T, T) -> (L*(T+gap)-gap, h*(T+gap)-gap), gaps NaN.

    One image instead of L*h small ones: drawing it costs one ``imshow``, whatever the number of heads.
    """
    if not isinstance(attentions, torch.Tensor):
        raise TypeError(f"attentions must be a tensor (L, h, T, T), got {type(attentions).__name__}")
    if attentions.dim() != 4 or attentions.shape[-1] != attentions.shape[-2] or 0 in attentions.shape:
        raise ValueError(f"attentions must have shape (L, h, T, T), got {tuple(attentions.shape)}")
    if isinstance(gap, bool) or not isinstance(gap, numbers.Integral) or gap < 0:
        raise ValueError(f"gap must be an int >= 0, got {gap!r}")
    L, h, T, _ = attentions.shape
    grid = np.full((L * (T + gap) - gap, h * (T + gap) - gap), np.nan)
    for layer in range(L):
        for head in range(h):
            grid[layer * (T + gap):layer * (T + gap) + T, head * (T + gap):head * (T + gap) + T] = \
                attentions[layer, head].numpy()
    return grid


class ModelView(FigureWidget):
    """Widget: the attention of every layer (rows) and head (columns) of a BERT; one head enlarged.

    Controls: sentence A, sentence B (optional), layer and head of the enlarged map. One colour
    bar serves both maps (attention weights, fixed scale 0 to 1). The axes, ticks and bar are drawn once; a new text paints its grid and word labels over them and keeps that as the
    background; choosing a layer or head then only repaints the enlarged map and the frame. The
    attention and background of the last 16 texts are kept: going back to one runs no model.

    Only the first ``max_tokens`` tokens of the pair are shown (the longer sentence is cut first).
    The status line under the controls shows itself only with something to say: that a text was
    cut, that sentence A is empty, or why a text could not be shown (the picture stays as it was).
    """

    def __init__(self, model: BertModel, tokenizer, text_a: str = "the man went to the store",
                 text_b: str = "he bought a gallon of milk", max_tokens: int = MAX_VIEW_TOKENS):
        if not isinstance(model, BertModel):
            raise TypeError(f"model must be a course_lib.bert.BertModel, got {type(model).__name__}")
        _checks.check_positive_int("max_tokens", max_tokens)
        if max_tokens < 3:
            raise ValueError(f"max_tokens must leave room for [CLS] and two [SEP], got {max_tokens}")
        super().__init__(widget_figure((12.0, 5.0)))
        self.model, self.tokenizer = model, tokenizer
        self.max_tokens = min(int(max_tokens), model.config.max_position_embeddings)
        self._attentions = Memo(16)
        L, h = model.config.num_hidden_layers, model.config.num_attention_heads
        layout = ipywidgets.Layout(width="420px")
        self.text_a = ipywidgets.Text(value=text_a, description="sentence A", continuous_update=False, layout=layout)
        self.text_b = ipywidgets.Text(value=text_b, description="sentence B", continuous_update=False, layout=layout)
        self.layer = ipywidgets.IntSlider(value=1, min=1, max=L, description="layer")
        self.head = ipywidgets.IntSlider(value=1, min=1, max=h, description="head")
        self.watch([self.text_a, self.text_b], self._new_text)
        self.watch([self.layer, self.head])
        self.status = ipywidgets.HTML(layout=ipywidgets.Layout(display="none"))  # shown only with a message
        self.widget = ipywidgets.VBox([self.text_a, self.text_b, ipywidgets.HBox([self.layer, self.head]),
                                       self.status])

        # made once: the grid (one image, in head x layer units, so its ticks never change) and the
        # enlarged map (no axes: its word labels are plain text, cheaper than ticks)
        self.ax_grid = self.fig.add_axes((0.05, 0.1, 0.47, 0.8))
        self.grid = self.ax_grid.imshow(np.zeros((1, 1)), cmap="Blues", vmin=0, vmax=1, interpolation="nearest",
                                        extent=(0, h, L, 0), aspect="auto", animated=True)
        # both maps show weights on the fixed scale [0, 1]: one bar, drawn once with the axes
        self.colorbar = self.fig.colorbar(self.grid, cax=self.fig.add_axes((0.53, 0.1, 0.01, 0.8)))
        self.colorbar.set_label("attention weight (0 to 1)", fontsize=8)
        self.colorbar.ax.tick_params(labelsize=7)
        self.ax_grid.set_xticks(np.arange(h) + 0.5)
        self.ax_grid.set_xticklabels([str(m + 1) for m in range(h)], fontsize=8)
        self.ax_grid.set_yticks(np.arange(L) + 0.5)
        self.ax_grid.set_yticklabels([str(layer + 1) for layer in range(L)], fontsize=8)
        self.ax_grid.set_xlabel("head", fontsize=9)
        self.ax_grid.set_ylabel("layer", fontsize=9)
        self.ax_grid.tick_params(length=0)
        self.frame = Rectangle((0, 0), 1, 1, fill=False, edgecolor="#d62728", linewidth=2, animated=True)
        self.ax_grid.add_patch(self.frame)
        self.ax_big = self.fig.add_axes((0.66, 0.22, 0.32, 0.68))
        self.ax_big.set_axis_off()
        self.big = self.ax_big.imshow(np.zeros((1, 1)), cmap="Blues", vmin=0, vmax=1, interpolation="nearest",
                                      animated=True)
        self.big_title = self.ax_big.set_title("", fontsize=10, animated=True)
        self.labels = []
        self.blitter.save()
        self._base = self.blitter.background  # axes, ticks and titles: drawn once, whatever the text
        self._new_text(redraw=False)
        self.redraw()

    def _read(self, text_a: str, text_b: str | None):
        """Tokens, attention (L, h, T, T) and notes for a typed pair (at most ``max_tokens`` tokens)."""
        encoded, cut = _encode(self.tokenizer, text_a, text_b, self.max_tokens)
        tokens, attn = _attentions(self.model, self.tokenizer, encoded)
        notes = ["sentence A is empty"] * _a_is_empty(encoded) + [_cut_note(self.max_tokens)] * cut
        return tokens, attn, notes

    def _new_text(self, redraw: bool = True) -> None:
        key = (self.text_a.value, self.text_b.value or None)
        self.tokens, self.attn, notes = self._attentions.get(key, lambda: self._read(*key))
        _show_notes(self, notes)
        T = self.attn.shape[-1]
        extent = (-0.5, T - 0.5, T - 0.5, -0.5)
        self.big.set_extent(extent)
        self.ax_big.set_xlim(extent[0], extent[1])
        self.ax_big.set_ylim(extent[2], extent[3])
        if not self.blitter.use(key):
            self.grid.set_data(attention_grid(self.attn))
            for text in self.labels:
                text.remove()
            # typed tokens are text, never TeX (parse_math=False)
            self.labels = [self.ax_big.text(j, T - 0.3, token, rotation=90, ha="center", va="top", fontsize=8,
                                            animated=True, parse_math=False) for j, token in enumerate(self.tokens)]
            self.labels += [self.ax_big.text(-0.7, i, token, ha="right", va="center", fontsize=8, animated=True,
                                             parse_math=False) for i, token in enumerate(self.tokens)]
            # the new background: the fixed parts, plus this text's grid and word labels painted on them
            self.blitter.save(key, over=self._base, paint=[self.grid, *self.labels])
        if redraw:
            self.redraw()

    def render(self) -> bytes:
        layer, head = self.layer.value - 1, self.head.value - 1
        T = self.attn.shape[-1]
        cell = T / (T + 1)  # a head's share of its slot in the grid (the rest is the gap)
        self.frame.set_bounds(head, layer, cell, cell)
        self.big.set_data(self.attn[layer, head].numpy())
        self.big_title.set_text(f"layer {layer + 1}, head {head + 1}: row = query token, column = key token")
        return self.blitter.png([self.frame, self.big, self.big_title])


@torch.no_grad()
def head_roles(model: BertModel, tokenizer, pairs, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """How much attention each head gives, on average, to a few kinds of key.

    pairs: (sentence_a, sentence_b or None). For every real query token (padding excluded), the
    weight on: "[CLS]", "[SEP]" (either of them), "previous" token, "next" token, "itself", and
    "same word" (other positions holding the same token, for queries that have one). Returns
    role -> (L, h) mean weight. Refused: no pairs, a batch_size that is not a positive int, and a
    pair longer than the model's max_position_embeddings.
    """
    if not isinstance(model, BertModel):
        raise TypeError(f"model must be a course_lib.bert.BertModel, got {type(model).__name__}")
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__len__"):
        raise TypeError(f"pairs must be a list of (sentence_a, sentence_b or None), got {type(pairs).__name__}")
    if len(pairs) == 0:
        raise ValueError("pairs must hold at least one (sentence_a, sentence_b or None) pair, got none")
    _checks.check_positive_int("batch_size", batch_size)
    L, h = model.config.num_hidden_layers, model.config.num_attention_heads
    sums = {role: torch.zeros(L, h) for role in ("[CLS]", "[SEP]", "previous", "next", "itself", "same word")}
    counts = {role: 0 for role in sums}
    special = torch.tensor(tokenizer.special_ids)
    device = model_device(model)
    with evaluating(model):
        for i in range(0, len(pairs), batch_size):
            batch = tokenizer.encode_batch(*zip(*pairs[i:i + batch_size]))            # each (B, T)
            ids, real = batch["input_ids"], batch["attention_mask"].bool()
            T = ids.shape[1]
            if T > model.config.max_position_embeddings:
                raise ValueError(f"pairs[{i}:{i + batch_size}] has a pair of {T} tokens, more than the model's "
                                 f"max_position_embeddings={model.config.max_position_embeddings}")
            # the model runs where it is; its maps come back to the CPU, where the counting happens
            attn = torch.stack(model(*(batch[k].to(device) for k in ("input_ids", "token_type_ids", "attention_mask"))
                                     ).attentions, 1).cpu()
            # attn: (B, L, h, T, T)
            keys = {"[CLS]": ids == tokenizer.cls_id, "[SEP]": ids == tokenizer.sep_id}
            for role, is_key in keys.items():
                mass = (attn * is_key[:, None, None, None, :]).sum(-1)          # (B, L, h, T)
                sums[role] += (mass * real[:, None, None, :]).sum((0, 3))
                counts[role] += int(real.sum())
            positions = torch.arange(T)
            for role, offset in (("previous", -1), ("next", 1), ("itself", 0)):
                target = positions + offset
                valid = real & (target >= 0)[None] & (target < T)[None]
                valid &= real.gather(1, target.clamp(0, T - 1).expand_as(real))
                w = attn.gather(-1, target.clamp(0, T - 1).view(1, 1, 1, T, 1).expand(*attn.shape[:-1], 1))[..., 0]
                sums[role] += (w * valid[:, None, None, :]).sum((0, 3))
                counts[role] += int(valid.sum())
            same = (ids[:, :, None] == ids[:, None, :]) & ~torch.eye(T, dtype=torch.bool)[None] & real[:, None, :]
            same &= real[:, :, None] & ~torch.isin(ids, special)[:, :, None]
            has_same = same.any(-1)                                              # (B, T)
            mass = (attn * same[:, None, None]).sum(-1)                          # (B, L, h, T)
            sums["same word"] += (mass * has_same[:, None, None, :]).sum((0, 3))
            counts["same word"] += int(has_same.sum())
    return {role: sums[role] / max(counts[role], 1) for role in sums}
