"""The widget of notebook 03: what a GPT predicts next, and what it writes.

:func:`next_word_distribution` and :func:`continue_text` are plain functions (tested without a
browser); :class:`GenerationExplorer` only moves controls and draws their results.
"""

from __future__ import annotations

import numpy as np
import torch

from .gpt import GPT, next_token_probs
from .tokenizers import WordVocab
from .viz import FigureWidget, canvas_to_png, widget_figure

__all__ = ["next_word_distribution", "continue_text", "GenerationExplorer"]


def _prompt_ids(prompt: str, vocab: WordVocab) -> torch.Tensor:
    words = prompt.split()
    unknown = [w for w in words if w not in vocab]
    if unknown:
        raise ValueError(f"not in the story world's vocabulary: {', '.join(unknown)}")
    return torch.tensor([vocab.encode(words, add_bos=True)])  # (1, T): <bos> and the prompt


@torch.no_grad()
def next_word_distribution(model: GPT, vocab: WordVocab, prompt: str, temperature: float = 1.0,
                           top_k: int | None = None, n: int = 12) -> list[tuple[str, float]]:
    """The ``n`` most likely next words after ``<bos> prompt``, with temperature and top-k applied."""
    model.eval()
    logits, _ = model(_prompt_ids(prompt, vocab))
    probs = next_token_probs(logits[0, -1], temperature, top_k)  # (V,)
    top = torch.topk(probs, min(n, probs.numel()))
    return [(vocab.itos[i], p) for i, p in zip(top.indices.tolist(), top.values.tolist())]


def continue_text(model: GPT, vocab: WordVocab, prompt: str, temperature: float = 1.0, top_k: int | None = None,
                  seed: int = 0, max_new_words: int = 40) -> list[str]:
    """Sample the rest of the story after ``prompt`` (seeded); stops at ``<eos>``."""
    ids = _prompt_ids(prompt, vocab)
    room = model.config.block_size - ids.shape[1]
    if room < 1:
        raise ValueError(f"the prompt fills the whole context window of {model.config.block_size} tokens")
    out = model.generate(ids, min(max_new_words, room), temperature, top_k, torch.Generator().manual_seed(seed),
                         stop_token=vocab.eos_id)
    return vocab.decode(out[0, ids.shape[1]:])


class GenerationExplorer(FigureWidget):
    """Widget: type a prompt; see the next-word distribution (bars) and a sampled continuation.

    Controls: the prompt, the temperature, top-k (0 = no cut) and the sampling seed. The bar of
    the word actually sampled first is red.
    """

    def __init__(self, model: GPT, vocab: WordVocab, prompt: str = "the man went to the store . he",
                 n: int = 12):
        import ipywidgets as widgets

        self.model, self.vocab, self.n = model, vocab, n
        layout = widgets.Layout(width="420px")
        self.prompt = widgets.Text(value=prompt, description="prompt", continuous_update=False, layout=layout)
        # Sliders update continuously: with continuous_update=False, ipywidgets 8 ignores a click on
        # the track and the arrow keys (the handle moves, the value does not). A redraw is one short
        # sampling run, and the front end merges the updates of a drag.
        self.temperature = widgets.FloatSlider(value=1.0, min=0.1, max=3.0, step=0.1, description="temperature",
                                               style={"description_width": "initial"})  # the whole word
        self.top_k = widgets.IntSlider(value=0, min=0, max=20, description="top-k (0: all)",
                                       style={"description_width": "initial"})
        self.seed = widgets.IntSlider(value=0, min=0, max=99, description="seed")
        self.status = widgets.HTML()
        for control in (self.prompt, self.temperature, self.top_k, self.seed):
            control.observe(lambda change: self.redraw(), names="value")
        self.widget = widgets.VBox([self.prompt, widgets.HBox([self.temperature, self.top_k]), self.seed,
                                    self.status])
        self.fig = widget_figure((7.5, 3.2))
        self.ax = self.fig.add_axes((0.2, 0.15, 0.75, 0.72))
        self.bars = self.ax.barh(np.arange(n), np.zeros(n), color="#1f77b4")
        self.ax.set_yticks(np.arange(n))
        self.ax.invert_yaxis()  # most likely on top
        self.ax.set_xlim(0, 1)
        self.ax.set_xlabel("probability of the next word", fontsize=9)
        self.title = self.ax.set_title("", fontsize=10)
        self._words = None
        self.redraw()

    def render(self) -> bytes:
        top_k = self.top_k.value or None
        try:
            table = next_word_distribution(self.model, self.vocab, self.prompt.value, self.temperature.value, top_k,
                                           self.n)
            story = continue_text(self.model, self.vocab, self.prompt.value, self.temperature.value, top_k,
                                  self.seed.value)
        except ValueError as error:
            self.status.value = f"<span style='color:#d62728'>{error}</span>"
            return canvas_to_png(self.fig)
        first = story[0] if story else "<eos>"
        for bar, (word, p) in zip(self.bars, table):
            bar.set_width(p)
            bar.set_color("#d62728" if word == first else "#1f77b4")
        words = [w for w, _ in table]
        if words != self._words:
            self.ax.set_yticklabels(words, fontsize=9)
            self._words = words
        self.title.set_text(f"after “…{' '.join(self.prompt.value.split()[-6:])}”: temperature "
                            f"{self.temperature.value:.1f}, top-k {top_k or 'off'}")
        self.status.value = (f"<b>{self.prompt.value}</b> <span style='color:#d62728'>{' '.join(story)}</span>"
                             + ("" if len(story) < 40 else " …"))
        self.fig.canvas.draw()
        return canvas_to_png(self.fig)
