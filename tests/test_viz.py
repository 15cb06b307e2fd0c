"""Plotting functions and the attention explorer, tested without a browser."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import viz  # noqa: E402

SRC = "我 昨天 看见 了 猫".split()
OUT = "I saw a cat yesterday <eos>".split()


def _trace(score, words):
    g = torch.Generator().manual_seed(len(words) + len(score))
    w = torch.softmax(torch.randn(len(OUT), len(words), generator=g) * 3, -1)
    return {"source": list(words), "output": OUT, "weights": w, "contexts": torch.randn(len(OUT), 8, generator=g)}


def test_plot_heatmap_checks_labels():
    fig, ax = plt.subplots()
    image = viz.plot_heatmap(ax, torch.eye(3), ["a", "b", "c"], ["x", "y", "z"])
    assert image.get_array().shape == (3, 3)
    with pytest.raises(ValueError, match="xlabels"):
        viz.plot_heatmap(ax, torch.eye(3), ["a", "b"], None)
    with pytest.raises(ValueError, match="2-D"):
        viz.plot_heatmap(ax, torch.ones(2, 2, 2))
    plt.close(fig)


def test_chinese_labels_render_with_the_bundled_font():
    assert viz.CJK_FONT is not None
    fig, ax = plt.subplots()
    viz.plot_heatmap(ax, torch.eye(5), SRC, SRC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning
        viz.figure_to_png(fig)
    plt.close(fig)


def test_show_heatmaps_shares_one_scale():
    fig = viz.show_heatmaps(torch.rand(3, 4, 4), titles=["a", "b", "c"], cols=2)
    assert len(fig.axes) == 4 and not fig.axes[3].axison
    plt.close(fig)


def test_view_updates_artists_in_place():
    view = viz.TranslationAttentionView()
    t = _trace("additive", SRC)
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=0)
    image, bars, background = view._image, view._bars, view._background
    before = view.to_png()
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=4)
    assert view._image is image and view._bars == bars  # same artists, new values
    assert view._background is background  # a step change redraws only what moves
    assert view._frame.get_y() == 3.5
    assert [b.get_height() for b in bars] == pytest.approx(t["weights"][4].tolist())
    assert view.to_png() != before
    view.update(t["source"], t["output"], t["weights"], t["contexts"], step=0)
    assert view.to_png() == before  # blitting gives exactly the picture of a full redraw
    with pytest.raises(ValueError, match="weights must have shape"):
        view.update(SRC, OUT, torch.ones(2, 2), step=0)
    with pytest.raises(ValueError, match="step"):
        view.update(t["source"], t["output"], t["weights"], step=99)
    plt.close(view.fig)


def test_explorer_controls_drive_the_picture():
    calls = []

    def trace(score, words):
        calls.append((score, tuple(words)))
        return _trace(score, words)

    explorer = viz.AttentionExplorer(trace, sentences=[SRC, SRC[:3]], score_names=["additive", "dot"],
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
    assert explorer.step.max == len(OUT) and "I saw" in explorer.status.value
    assert len(explorer.redraw_ms) >= 4
    plt.close(explorer.view.fig)
