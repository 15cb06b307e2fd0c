"""Notebook 01's attention view and explorer, driven as a learner would, without a browser."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from widget_pictures import weight_bar_is_shown  # noqa: E402

from course_lib.widgets.attention import AttentionExplorer, TranslationAttentionView  # noqa: E402

SRC = "我 昨天 看见 了 猫".split()
OUT = "I saw a cat yesterday <eos>".split()


def _trace(score, words, output=OUT):
    g = torch.Generator().manual_seed(len(words) + len(score))
    w = torch.softmax(torch.randn(len(output), len(words), generator=g) * 3, -1)
    return {"source": list(words), "output": list(output), "weights": w,
            "contexts": torch.randn(len(output), 8, generator=g)}




def test_view_has_a_colour_bar_of_weights():
    view = TranslationAttentionView()
    t = _trace("additive", SRC)
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=0)
    assert weight_bar_is_shown(view.colorbar, view.to_png())
    view.update(t["source"], t["output"], t["weights"] * 0.5, t["contexts"], step=2)  # other numbers, same scale
    assert weight_bar_is_shown(view.colorbar, view.to_png())


def test_view_updates_artists_in_place():
    view = TranslationAttentionView()
    t = _trace("additive", SRC)
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=0)
    image, bars, background = view._image, view._bars, view.blitter.background
    before = view.to_png()
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=4)
    assert view._image is image and view._bars is bars  # same artists, new values
    assert view.blitter.background is background  # a step change repaints only what moves
    assert view._frame.get_y() == 3.5
    assert [b.get_height() for b in bars] == pytest.approx(t["weights"][4].tolist())
    assert view.to_png() != before
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=0)
    assert view.to_png() == before  # blitting gives exactly the picture of a full redraw
    with pytest.raises(ValueError, match="weights must have shape"):
        view.update(SRC, OUT, torch.ones(2, 2), step=0)
    with pytest.raises(ValueError, match="step"):
        view.update(t["source"], t["output"], t["weights"], step=99)


def _count_full_draws(view) -> list:
    draws, draw = [], view.fig.canvas.draw
    view.fig.canvas.draw = lambda: (draws.append(1), draw())
    return draws


def test_view_draws_each_set_of_words_once():
    view = TranslationAttentionView()
    draws = _count_full_draws(view)
    a, b = _trace("additive", SRC), _trace("dot", SRC[:3], OUT[:4])
    view.update(a["source"], a["output"], a["weights"], a["contexts"], step=1, title="a")
    first = view.to_png()
    view.update(b["source"], b["output"], b["weights"], b["contexts"], step=0, title="b")
    assert len(view._bars) == 3 and view.ax_map.get_xlim() == (-0.5, 2.5)  # fits the new sentence
    assert len(draws) == 2
    # other weights and title for words seen before: no full draw, only repaints over their background
    other = _trace("general", SRC)
    view.update(other["source"], other["output"], other["weights"], other["contexts"], step=1, title="c")
    assert view._title.get_text() == "c" and view.to_png() != first
    view.update(a["source"], a["output"], a["weights"], a["contexts"], step=1, title="a")
    assert view.to_png() == first and len(draws) == 2


def test_view_without_contexts_hides_the_strip():
    view = TranslationAttentionView()
    t = _trace("additive", SRC)
    view.update(t["source"], t["output"], t["weights"], None, step=2)
    assert not view.ax_ctx.axison
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=2)
    assert view.ax_ctx.axison and view._ctx_image.get_array().shape == (1, 8)


def test_explorer_controls_drive_the_picture():
    calls = []

    def trace(score, words):
        calls.append((score, tuple(words)))
        return _trace(score, words)

    explorer = AttentionExplorer(trace, sentences=[SRC, SRC[:3]], score_names=["additive", "dot"],
                                 segment=lambda text: list(text))
    assert calls == [("additive", tuple(SRC))]
    png = explorer.view.to_png()
    explorer.step.value = 3
    assert explorer.view.to_png() != png
    explorer.score.value = "dot"
    assert calls[-1] == ("dot", tuple(SRC))
    explorer.sentence.value = tuple(SRC[:3])
    assert calls[-1] == ("dot", tuple(SRC[:3]))
    explorer.typed.value = "我爱你"
    assert calls[-1] == ("dot", ("我", "爱", "你"))
    explorer.score.value = "additive"  # another score function keeps the typed words
    assert calls[-1] == ("additive", ("我", "爱", "你"))
    assert explorer.step.max == len(OUT) and "I saw" in explorer.status.value
    assert len(explorer.redraw_ms) >= 4


def test_explorer_translates_each_sentence_once_and_redraws_once_per_change():
    calls = []
    short = OUT[:3]

    def trace(score, words):
        calls.append((score, tuple(words)))
        return _trace(score, words, OUT if len(words) > 3 else short)

    explorer = AttentionExplorer(trace, sentences=[SRC, SRC[:3]], score_names=["additive", "dot"])
    explorer.step.value = 6
    redraws = len(explorer.redraw_ms)
    explorer.sentence.value = tuple(SRC[:3])  # a shorter translation clamps the step ...
    assert explorer.step.value == 3 and explorer.step.max == 3
    assert len(explorer.redraw_ms) == redraws + 1  # ... with one redraw, not two
    explorer.sentence.value = tuple(SRC)
    explorer.score.value = "dot"
    explorer.score.value = "additive"
    assert calls.count(("additive", tuple(SRC))) == 1  # seen before: not translated again
