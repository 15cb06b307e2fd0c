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

import ipywidgets
import numpy as np
import torch
from matplotlib.patches import Rectangle

from ..batching import IGNORE_INDEX
from ..bert import BertModel, mask_tokens
from ..training import evaluating
from .base import FigureWidget, HTMLWidget, Memo, canvas_to_png, widget_figure

__all__ = ["masking_html", "MaskingExplorer", "fill_mask", "FillMaskExplorer", "bert_attentions", "attention_grid",
           "ModelView", "head_roles"]

_KIND_STYLE = {
    "mask": ("#d62728", "→ [MASK] (80%)"),
    "random": ("#ff7f0e", "→ a random token (10%)"),
    "kept": ("#2ca02c", "kept unchanged, still predicted (10%)"),
}


def masking_html(tokenizer, text_a: str, text_b: str | None = None, rate: float = 0.15, seed: int = 0) -> tuple[str, dict]:
    """Apply the MLM rule to a sentence (pair) and colour what happened to each selected token.

    Returns (HTML, counts) with counts of "selected", "mask", "random", "kept" and "tokens" (ordinary ones).
    """
    ids = torch.tensor([tokenizer.encode(text_a, text_b)["input_ids"]])
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
    of the last redraw (see :func:`masking_html`).
    """

    def __init__(self, tokenizer, text_a: str = "the man went to the store", text_b: str = "he bought a gallon of milk"):
        super().__init__()
        self.tokenizer = tokenizer
        layout = ipywidgets.Layout(width="480px")
        self.text_a = ipywidgets.Text(value=text_a, description="sentence A", continuous_update=False, layout=layout)
        self.text_b = ipywidgets.Text(value=text_b, description="sentence B", continuous_update=False, layout=layout)
        self.rate = ipywidgets.FloatSlider(value=0.15, min=0.05, max=0.5, step=0.05, description="rate")
        self.seed = ipywidgets.IntSlider(value=0, min=0, max=99, description="seed")
        self.watch([self.text_a, self.text_b, self.rate, self.seed])
        self.widget = ipywidgets.VBox([self.text_a, self.text_b, ipywidgets.HBox([self.rate, self.seed]),
                                       self.output])
        self.redraw()

    def render(self) -> str:
        text, self.counts = masking_html(self.tokenizer, self.text_a.value, self.text_b.value or None,
                                         self.rate.value, self.seed.value)
        return text


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top: int = 10) -> tuple[list[str], list[tuple[str, float]]]:
    """The tokens of ``text`` and the ``top`` predictions (token, probability) at its first [MASK].

    ``model`` is a :class:`~course_lib.bert.BertForPreTraining`; a second sentence may follow [SEP].
    """
    parts = [p.strip() for p in text.split("[SEP]") if p.strip()]
    if not parts:
        raise ValueError("text is empty")
    encoded = tokenizer.encode(parts[0], parts[1] if len(parts) > 1 else None)
    ids = torch.tensor([encoded["input_ids"]])
    where = (ids[0] == tokenizer.mask_id).nonzero()
    if len(where) == 0:
        raise ValueError("write [MASK] where a word should be predicted")
    with evaluating(model):
        logits, _, _ = model(ids, torch.tensor([encoded["token_type_ids"]]))
    probs = torch.softmax(logits[0, int(where[0])], -1)
    best = torch.topk(probs, top)
    tokens = [tokenizer.itos[i] for i in ids[0].tolist()]
    return tokens, [(tokenizer.itos[i], p) for i, p in zip(best.indices.tolist(), best.values.tolist())]


class FillMaskExplorer(FigureWidget):
    """Widget: type a sentence with [MASK]; bars show what the model would put there."""

    def __init__(self, model, tokenizer, text: str = "the man went to [MASK] store . he bought a gallon of milk .",
                 top: int = 10):
        super().__init__(widget_figure((6.5, 3.0)))
        self.model, self.tokenizer, self.top = model, tokenizer, top
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
            tokens, table = fill_mask(self.model, self.tokenizer, self.text.value, self.top)
        except ValueError as error:
            self.status.value = f"<span style='color:#d62728'>{html.escape(str(error))}</span>"
            return canvas_to_png(self.fig)
        for bar, (_, p) in zip(self.bars, table):
            bar.set_width(p)
        self.ax.set_yticklabels([w for w, _ in table], fontsize=9)
        unknown = [t for t in tokens if t == "[UNK]"]
        self.status.value = (f"model input: {html.escape(' '.join(tokens))}"
                             + (" <span style='color:#d62728'>(a word is not in the vocabulary)</span>"
                                if unknown else ""))
        self.fig.canvas.draw()
        return canvas_to_png(self.fig)


@torch.no_grad()
def bert_attentions(model: BertModel, tokenizer, text_a: str, text_b: str | None = None):
    """Tokens and every attention map of ``model`` for one sentence (pair): (tokens, tensor (L, h, T, T))."""
    encoded = tokenizer.encode(text_a, text_b)
    with evaluating(model):
        out = model(torch.tensor([encoded["input_ids"]]), torch.tensor([encoded["token_type_ids"]]))
    return [tokenizer.itos[i] for i in encoded["input_ids"]], torch.stack([a[0] for a in out.attentions])


def attention_grid(attentions: torch.Tensor, gap: int = 1) -> np.ndarray:
    """All heads side by side in one image: (L, h, T, T) -> (L*(T+gap)-gap, h*(T+gap)-gap), gaps NaN.

    One image instead of L*h small ones: drawing it costs one ``imshow``, whatever the number of heads.
    """
    L, h, T, _ = attentions.shape
    grid = np.full((L * (T + gap) - gap, h * (T + gap) - gap), np.nan)
    for layer in range(L):
        for head in range(h):
            grid[layer * (T + gap):layer * (T + gap) + T, head * (T + gap):head * (T + gap) + T] = \
                attentions[layer, head].numpy()
    return grid


class ModelView(FigureWidget):
    """Widget: the attention of every layer (rows) and head (columns) of a BERT; one head enlarged.

    Controls: sentence A, sentence B (optional), layer and head of the enlarged map. The axes and
    ticks are drawn once; a new text paints its grid and word labels over them and keeps that as the
    background; choosing a layer or head then only repaints the enlarged map and the frame. The
    attention and background of the last 16 texts are kept: going back to one runs no model.
    """

    def __init__(self, model: BertModel, tokenizer, text_a: str = "the man went to the store",
                 text_b: str = "he bought a gallon of milk"):
        super().__init__(widget_figure((12.0, 5.0)))
        self.model, self.tokenizer = model, tokenizer
        self._attentions = Memo(16)
        L, h = model.config.num_hidden_layers, model.config.num_attention_heads
        layout = ipywidgets.Layout(width="420px")
        self.text_a = ipywidgets.Text(value=text_a, description="sentence A", continuous_update=False, layout=layout)
        self.text_b = ipywidgets.Text(value=text_b, description="sentence B", continuous_update=False, layout=layout)
        self.layer = ipywidgets.IntSlider(value=1, min=1, max=L, description="layer")
        self.head = ipywidgets.IntSlider(value=1, min=1, max=h, description="head")
        self.watch([self.text_a, self.text_b], self._new_text)
        self.watch([self.layer, self.head])
        self.widget = ipywidgets.VBox([self.text_a, self.text_b, ipywidgets.HBox([self.layer, self.head])])

        # made once: the grid (one image, in head x layer units, so its ticks never change) and the
        # enlarged map (no axes: its word labels are plain text, cheaper than ticks)
        self.ax_grid = self.fig.add_axes((0.05, 0.1, 0.5, 0.8))
        self.grid = self.ax_grid.imshow(np.zeros((1, 1)), cmap="Blues", vmin=0, vmax=1, interpolation="nearest",
                                        extent=(0, h, L, 0), aspect="auto", animated=True)
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

    def _new_text(self, redraw: bool = True) -> None:
        key = (self.text_a.value, self.text_b.value or None)
        self.tokens, self.attn = self._attentions.get(key, lambda: bert_attentions(self.model, self.tokenizer, *key))
        T = self.attn.shape[-1]
        extent = (-0.5, T - 0.5, T - 0.5, -0.5)
        self.big.set_extent(extent)
        self.ax_big.set_xlim(extent[0], extent[1])
        self.ax_big.set_ylim(extent[2], extent[3])
        if not self.blitter.use(key):
            self.grid.set_data(attention_grid(self.attn))
            for text in self.labels:
                text.remove()
            self.labels = [self.ax_big.text(j, T - 0.3, token, rotation=90, ha="center", va="top", fontsize=8,
                                            animated=True) for j, token in enumerate(self.tokens)]
            self.labels += [self.ax_big.text(-0.7, i, token, ha="right", va="center", fontsize=8, animated=True)
                            for i, token in enumerate(self.tokens)]
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
    role -> (L, h) mean weight.
    """
    L, h = model.config.num_hidden_layers, model.config.num_attention_heads
    sums = {role: torch.zeros(L, h) for role in ("[CLS]", "[SEP]", "previous", "next", "itself", "same word")}
    counts = {role: 0 for role in sums}
    special = torch.tensor(tokenizer.special_ids)
    with evaluating(model):
        for i in range(0, len(pairs), batch_size):
            batch = tokenizer.encode_batch(*zip(*pairs[i:i + batch_size]))            # each (B, T)
            ids, real = batch["input_ids"], batch["attention_mask"].bool()
            T = ids.shape[1]
            attn = torch.stack(model(ids, batch["token_type_ids"], batch["attention_mask"]).attentions, 1)
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
