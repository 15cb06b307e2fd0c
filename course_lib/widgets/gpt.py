"""The widget of notebook 03: what a GPT predicts next, and what it writes.

:func:`next_word_distribution` and :func:`continue_text` are plain functions (tested without a
browser); :class:`GenerationExplorer` only moves controls and draws their results.
"""

from __future__ import annotations

import html
import math
import numbers

import ipywidgets
import numpy as np
import torch

from .. import _checks
from ..gpt import GPT, next_token_probs
from ..tokenizers import WordVocab
from ..batching import model_device
from ..training import evaluating
from .base import FigureWidget, Memo, canvas_to_png, short_text, status_note, widget_figure

__all__ = ["next_word_distribution", "continue_text", "GenerationExplorer"]

_SAMPLED, _OTHER = "#d62728", "#1f77b4"


def _check_model_and_vocab(model, vocab) -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a course_lib.gpt.GPT, got {type(model).__name__}")
    if not isinstance(vocab, WordVocab):
        raise TypeError(f"vocab must be a WordVocab (the story world's words), got {type(vocab).__name__}")
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"vocab must be the model's: it has {len(vocab)} words, the model's "
                         f"vocab_size is {model.config.vocab_size}")


def _check_sampling(temperature, top_k) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    _checks.check_positive_int("top_k", top_k, allow_none=True)


def _prompt_words(prompt: str, vocab: WordVocab) -> list[str]:
    """The words of ``prompt``; refused: a non-str, words the vocabulary lacks, and its special tokens."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str of story-world words, got {type(prompt).__name__}")
    words = prompt.split()
    specials = set(vocab.itos[:4])  # <pad> <unk> <bos> <eos>: the model's, never typed
    unknown = list(dict.fromkeys(w for w in words if w not in vocab or w in specials))
    if unknown:
        shown = ", ".join(short_text(w, 24) for w in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(f"prompt has words that are not in the story world's vocabulary: {shown}{more}")
    return words


def _prompt_ids(prompt: str, vocab: WordVocab, block_size: int) -> torch.Tensor:
    words = _prompt_words(prompt, vocab)
    if len(words) + 1 > block_size:
        raise ValueError(f"prompt has {len(words)} words: with <bos> more than the model's block_size={block_size} "
                         f"tokens; keep at most its last {block_size - 1} words")
    return torch.tensor([vocab.encode(words, add_bos=True)])  # (1, T): <bos> and the prompt


@torch.no_grad()
def _next_logits(model: GPT, vocab: WordVocab, prompt: str) -> torch.Tensor:
    """The logits (V,) of the word after ``<bos> prompt``, on the CPU (the model runs on its device)."""
    ids = _prompt_ids(prompt, vocab, model.config.block_size)
    with evaluating(model):
        logits, _ = model(ids.to(model_device(model)))
    return logits[0, -1].cpu()


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
    cuts off are listed with probability 0. Refused (``ValueError`` / ``TypeError`` naming the
    argument): a prompt with words outside ``vocab`` (or its special tokens) or longer than the
    model's ``block_size`` - 1 words, temperature not > 0, top_k and n not positive ints.
    """
    _check_model_and_vocab(model, vocab)
    _check_sampling(temperature, top_k)
    _checks.check_positive_int("n", n)
    return _top_words(_next_logits(model, vocab, prompt), vocab, temperature, top_k, n)


def continue_text(model: GPT, vocab: WordVocab, prompt: str, temperature: float = 1.0, top_k: int | None = None,
                  seed: int = 0, max_new_words: int = 40) -> list[str]:
    """Sample the rest of the story after ``prompt`` (seeded); stops at ``<eos>``.

    Refused as in :func:`next_word_distribution`, and: a prompt that leaves no room in the context
    window, a seed that is not an int, max_new_words not a positive int.
    """
    _check_model_and_vocab(model, vocab)
    _check_sampling(temperature, top_k)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    _checks.check_positive_int("max_new_words", max_new_words)
    ids = _prompt_ids(prompt, vocab, model.config.block_size)
    room = model.config.block_size - ids.shape[1]
    if room < 1:
        raise ValueError(f"the prompt fills the whole context window of {model.config.block_size} tokens")
    # A CPU generator: generate() samples on the CPU, so a seed writes the same story on every device.
    out = model.generate(ids.to(model_device(model)), min(max_new_words, room), temperature, top_k,
                         torch.Generator().manual_seed(seed), stop_token=vocab.eos_id)
    return vocab.decode(out[0, ids.shape[1]:].cpu())


class GenerationExplorer(FigureWidget):
    """Widget: type a prompt; see the next-word distribution (bars) and a sampled continuation.

    Controls: the prompt, the temperature, top-k (0 = no cut) and the sampling seed. The bar of
    the word actually sampled first is red. The model runs once per prompt (its next-word logits
    are kept; temperature and top-k only reshape them) and once per sampled continuation (the
    last 256 are kept); the word labels are drawn once per prompt, the bars and the title
    repainted over them (blitting).

    Only the last ``block_size - 2`` words of a prompt are read (the model reads ``block_size``
    tokens: ``<bos>``, the prompt and at least one word it writes); the status line says when a
    prompt was cut. A prompt the model cannot read (unknown words) keeps the last picture and
    says why in the status line.
    """

    def __init__(self, model: GPT, vocab: WordVocab, prompt: str = "the man went to the store . he",
                 n: int = 12):
        _check_model_and_vocab(model, vocab)
        _checks.check_positive_int("n", n)
        if model.config.block_size < 3:
            raise ValueError(f"model.config.block_size must be at least 3 (<bos>, a word, a word to write), "
                             f"got {model.config.block_size}")
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

    def _read_prompt(self) -> tuple[str, str]:
        """The prompt the model reads (its last block_size - 2 words at most) and a note when it was cut."""
        prompt, room = self.prompt.value, self.model.config.block_size - 2
        words = prompt.split()
        if len(words) <= room:
            return prompt, ""
        note = f"only the last {room} words are used (the model reads {self.model.config.block_size} tokens)"
        return " ".join(words[-room:]), note

    def render(self) -> bytes:
        (prompt, note), temperature, top_k, seed = (self._read_prompt(), self.temperature.value,
                                                    self.top_k.value or None, self.seed.value)
        try:
            logits = self._logits.get(prompt, lambda: _next_logits(self.model, self.vocab, prompt))
            story = self._stories.get((prompt, temperature, top_k, seed), lambda: continue_text(
                self.model, self.vocab, prompt, temperature, top_k, seed))
        except ValueError as error:
            self.tell(str(error))
            return canvas_to_png(self.fig)  # the last good picture
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
        self.status.value = (f"<b>{html.escape(prompt, quote=False)}</b> <span style='color:#d62728'>"
                             f"{html.escape(' '.join(story), quote=False)}</span>" + ("" if len(story) < 40 else " …")
                             + (f"<br>{status_note(note)}" if note else ""))
        return self.blitter.png([*self.bars, *self.ax.spines.values(), self.title])
