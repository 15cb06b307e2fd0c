"""The pure plotting functions of course_lib.viz (the live loss plot is tested in test_training.py)."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import viz  # noqa: E402

SRC = "我 昨天 看见 了 猫".split()


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


def _colorbars(fig):
    """The colour bar axes of ``fig`` (matplotlib labels each '<colorbar>')."""
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_plot_heatmap_has_a_colour_bar_unless_told_not_to():
    fig, (ax1, ax2) = plt.subplots(1, 2)
    viz.plot_heatmap(ax1, torch.rand(3, 3), colorbar_label="attention weight")
    viz.plot_heatmap(ax2, torch.rand(3, 3), colorbar=False)
    (bar,) = _colorbars(fig)
    assert bar.get_ylabel() == "attention weight"
    with pytest.raises(TypeError, match="colorbar must be True or False"):
        viz.plot_heatmap(ax2, torch.rand(3, 3), colorbar="yes")
    with pytest.raises(TypeError, match="colorbar_label must be a str"):
        viz.plot_heatmap(ax2, torch.rand(3, 3), colorbar_label=1)
    plt.close(fig)


def test_show_heatmaps_shares_one_scale():
    mats = torch.rand(3, 4, 4)
    mats[1, 0, 0] = 1.5
    fig = viz.show_heatmaps(mats, titles=["a", "b", "c"], cols=2)
    heatmaps = [ax for ax in fig.axes if ax not in _colorbars(fig)]
    assert len(heatmaps) == 4 and not heatmaps[3].axison
    (bar,) = _colorbars(fig)  # one bar for every map: they share one scale, from 0 to the largest entry
    assert bar.get_ylabel() == "weight" and bar.get_ylim() == pytest.approx((0.0, 1.5))
    assert all(ax.get_images()[0].get_clim() == pytest.approx((0.0, 1.5)) for ax in heatmaps[:3])
    plt.close(fig)


def test_plot_attention_grid_one_panel_per_sentence():
    fig = viz.plot_attention_grid([torch.eye(2), torch.rand(3, 4)], [["a", "b"], list("wxyz")],
                                  [["A", "B"], list("XYZ")], title="t")
    (bar,) = _colorbars(fig)  # weights lie in [0, 1]: one bar with that fixed scale
    panels = [ax for ax in fig.axes if ax is not bar]
    assert len(panels) == 2 and panels[1].get_images()[0].get_array().shape == (3, 4)
    assert bar.get_ylim() == pytest.approx((0.0, 1.0)) and "weight" in bar.get_ylabel()
    with pytest.raises(ValueError, match="equal length"):
        viz.plot_attention_grid([torch.eye(2)], [], [])
    plt.close(fig)


def test_as_matrix_and_label_heatmap():
    assert viz.as_matrix([[1, 2], [3, 4]]).dtype == float
    with pytest.raises(ValueError, match="2-D"):
        viz.as_matrix(torch.ones(3))
    fig, ax = plt.subplots()
    viz.label_heatmap(ax, None, ["r0", "r1"], (2, 3))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r0", "r1"]
    plt.close(fig)


def test_figure_to_png_is_reproducible():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert viz.figure_to_png(fig) == viz.figure_to_png(fig)
    plt.close(fig)
