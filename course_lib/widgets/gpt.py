"""The widget of notebook 03: what a GPT predicts next, and what it writes.

:func:`next_word_distribution` and :func:`continue_text` are plain functions (tested without a
browser); :class:`GenerationExplorer` only moves controls and draws their results.
"""

from __future__ import annotations

import ipywidgets
import numpy as np
import torch

from ..gpt import GPT, next_token_probs
from ..tokenizers import WordVocab
from ..training import evaluating
from .base import FigureWidget, Memo, canvas_to_png, widget_figure

__all__ = ["next_word_distribution", "continue_text", "GenerationExplorer"]

_SAMPLED, _OTHER = "#d62728", "#1f77b4"


def _prompt_ids(prompt: str, vocab: WordVocab) -> torch.Tensor:
    words = prompt.split()
    unknown = [w for w in words if w not in vocab]
    if unknown:
        raise ValueError(f"not in the story world's vocabulary: {', '.join(unknown)}")
    return torch.tensor([vocab.encode(words, add_bos=True)])  # (1, T): <bos> and the prompt


@torch.no_grad()
def _next_logits(model: GPT, vocab: WordVocab, prompt: str) -> torch.Tensor:
    """The logits (V,) of the word after ``<bos> prompt``."""
    with evaluating(model):
        logits, _ = model(_prompt_ids(prompt, vocab))
    return logits[0, -1]


def _top_words(logits: torch.Tensor, vocab: WordVocab, temperature: float, top_k: int | None,
               n: int) -> list[tuple[str, float]]:
    """The n words of largest logit (V,), with their probabilities after temperature and top-k."""
    words = torch.topk(logits, min(n, logits.numel())).indices  # the same words at any temperature or k
    probs = next_token_probs(logits, temperature, top_k)        # (V,)
    return [(vocab.itos[i], p) for i, p in zip(words.tolist(), probs[words].tolist())]


def next_word_distribution(model: GPT, vocab: WordVocab, prompt: str, temperature: float = 1.0,
                           top_k: int | None = None, n: int = 12) -> list[tuple[str, float]]:
    """The ``n`` most likely next words after ``<bos> prompt``, with temperature and top-k applied.

    The words are the model's n most likely, whatever the temperature and k; the ones top-k
    cuts off are listed with probability 0.
    """
    return _top_words(_next_logits(model, vocab, prompt), vocab, temperature, top_k, n)


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
    the word actually sampled first is red. The model runs once per prompt (its next-word logits
    are kept; temperature and top-k only reshape them) and once per sampled continuation (the
    last 256 are kept); the word labels are drawn once per prompt, the bars and the title
    repainted over them (blitting).
    """

    def __init__(self, model: GPT, vocab: WordVocab, prompt: str = "the man went to the store . he",
                 n: int = 12):
        super().__init__(widget_figure((7.5, 3.2)))
        self.model, self.vocab, self.n = model, vocab, n
        self._logits, self._stories = Memo(32), Memo(256)
        layout = ipywidgets.Layout(width="420px")
        self.prompt = ipywidgets.Text(value=prompt, description="prompt", continuous_update=False, layout=layout)
        # Sliders update continuously: with continuous_update=False, ipywidgets 8 ignores a click on
        # the track and the arrow keys (the handle moves, the value does not). A redraw is one short
        # sampling run, and the front end merges the updates of a drag.
        self.temperature = ipywidgets.FloatSlider(value=1.0, min=0.1, max=3.0, step=0.1, description="temperature",
                                                  style={"description_width": "initial"})  # the whole word
        self.top_k = ipywidgets.IntSlider(value=0, min=0, max=20, description="top-k (0: all)",
                                          style={"description_width": "initial"})
        self.seed = ipywidgets.IntSlider(value=0, min=0, max=99, description="seed")
        self.status = ipywidgets.HTML()
        self.watch([self.prompt, self.temperature, self.top_k, self.seed])
        self.widget = ipywidgets.VBox([self.prompt, ipywidgets.HBox([self.temperature, self.top_k]), self.seed,
                                       self.status])
        self.ax = self.fig.add_axes((0.2, 0.15, 0.75, 0.72))
        self.bars = self.ax.barh(np.arange(n), np.zeros(n), color=_OTHER, animated=True)
        for spine in self.ax.spines.values():  # drawn over the bars, so repainted after them
            spine.set_animated(True)
        self.ax.set_yticks(np.arange(n))
        self.ax.invert_yaxis()  # most likely on top
        self.ax.set_xlim(0, 1)
        self.ax.set_xlabel("probability of the next word", fontsize=9)
        self.title = self.ax.set_title("", fontsize=10, animated=True)
        self.redraw()

    def render(self) -> bytes:
        prompt, temperature, top_k, seed = (self.prompt.value, self.temperature.value, self.top_k.value or None,
                                            self.seed.value)
        try:
            logits = self._logits.get(prompt, lambda: _next_logits(self.model, self.vocab, prompt))
            story = self._stories.get((prompt, temperature, top_k, seed), lambda: continue_text(
                self.model, self.vocab, prompt, temperature, top_k, seed))
        except ValueError as error:
            self.status.value = f"<span style='color:#d62728'>{error}</span>"
            return canvas_to_png(self.fig)
        table = _top_words(logits, self.vocab, temperature, top_k, self.n)
        first = story[0] if story else "<eos>"
        for bar, (word, p) in zip(self.bars, table):
            bar.set_width(p)
            bar.set_color(_SAMPLED if word == first else _OTHER)
        words = tuple(w for w, _ in table)
        if self.blitter.key != words and not self.blitter.use(words):
            self.ax.set_yticklabels(words, fontsize=9)
            self.blitter.save(words)  # the word labels: drawn once per set of words
        self.title.set_text(f"after “…{' '.join(prompt.split()[-6:])}”: temperature "
                            f"{temperature:.1f}, top-k {top_k or 'off'}")
        self.status.value = (f"<b>{prompt}</b> <span style='color:#d62728'>{' '.join(story)}</span>"
                             + ("" if len(story) < 40 else " …"))
        return self.blitter.png([*self.bars, *self.ax.spines.values(), self.title])
