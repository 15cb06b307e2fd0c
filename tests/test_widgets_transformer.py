"""Notebook 02's widgets, driven as a learner would, without a browser."""

import matplotlib

matplotlib.use("Agg")

import io  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from widget_pictures import weight_bar_is_shown  # noqa: E402

from course_lib.data import make_translation_corpus  # noqa: E402
from course_lib.encoder_decoder import EncoderDecoder  # noqa: E402
from course_lib.tasks import translation  # noqa: E402
from course_lib.tokenizers import WordVocab, segment_chinese  # noqa: E402
from course_lib.transformer import sinusoidal_positional_encoding  # noqa: E402
from course_lib.widgets.transformer import (  # noqa: E402
    PositionExplorer,
    ScalingExplorer,
    TransformerAttentionExplorer,
    position_similarity,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))




def test_position_similarity():
    sim = position_similarity(sinusoidal_positional_encoding(20, 16))
    assert sim.shape == (20, 20)
    assert torch.allclose(sim.diagonal(), torch.ones(20), atol=1e-6)
    assert torch.allclose(sim, sim.T, atol=1e-6)
    assert (sim[5, 6] > sim[5, 15]).item()  # neighbours are more alike than distant positions
    with pytest.raises(ValueError, match="2-D tensor"):
        position_similarity(torch.ones(3))


def test_scaling_explorer_redraws_what_the_slider_says():
    w = ScalingExplorer(d_ks=(1, 16, 1024), num_queries=64)
    before = _pixels(w.render())
    w.d_k.value = 1024
    after = _pixels(w.render())
    assert before.shape == after.shape and (before != after).any()
    heights = [bar.get_height() for bar in w.bars[False]]
    assert heights == pytest.approx(w.curves[False][2]["example_weights"].tolist())
    assert "1024" in w.title.get_text()
    assert len(w.redraw_ms) >= 2  # every change redraws, and is timed


def test_scaling_explorer_says_what_each_number_is_computed_from():
    w = ScalingExplorer(d_ks=(4, 256), num_queries=64)
    for d_k in (4, 256):
        w.d_k.value = d_k
        raw, scaled = w.curves[False][w.d_ks.index(d_k)], w.curves[True][w.d_ks.index(d_k)]
        # the bars are one query, titled so; the status line gives that query's own largest weights ...
        heights = {s: max(bar.get_height() for bar in w.bars[s]) for s in (False, True)}
        assert w.bar_title.get_text() == "one query (query 1 of 64): its weights"
        assert f"query 1 alone: largest weight {heights[False]:.2f} vs {heights[True]:.2f}" in w.status.value
        # ... the figure's title gives means over all the queries, and says so
        assert "over 64 random queries" in w.title.get_text()
        assert f"mean largest weight {raw['max_weight']:.2f} vs {scaled['max_weight']:.2f}" in w.title.get_text()
        assert f"means over 64 random queries, 16 keys each: entropy {raw['entropy']:.2f}" in w.status.value
    assert all("mean of 64 queries" in ax.get_title() for ax in w.fig.axes[1:3])


def test_position_explorer_follows_position_and_width():
    w = PositionExplorer(max_len=32, d_models=(16, 64))
    first = _pixels(w.render())
    w.position.value = 20
    assert (first != _pixels(w.render())).any()
    assert w.sim_line.get_ydata() == pytest.approx(w.similarity[20])
    w.d_model.value = 16
    assert w.pe.shape == (32, 16) and w.row.get_width() == 16
    narrow = _pixels(w.render())
    w.d_model.value = 64
    w.d_model.value = 16  # a width seen before: its table is not drawn again
    assert (narrow == _pixels(w.render())).all()
    assert (w.colorbar.vmin, w.colorbar.vmax) == (-1, 1)  # the table's values, sin and cos


@pytest.fixture(scope="module")
def explorer_setup():
    corpus = make_translation_corpus(num_sentences=300, seed=1)
    sv, tv = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    torch.manual_seed(0)
    model = EncoderDecoder(len(sv), len(tv), d_model=16, num_heads=2, d_ff=32, num_layers=2, max_len=32)
    return corpus, sv, tv, model


def _explorer(explorer_setup):
    corpus, sv, tv, model = explorer_setup
    return TransformerAttentionExplorer(lambda words: translation.trace_transformer(model, words, sv, tv, max_len=10),
                                        [p.zh for p in corpus.test[:3]],
                                        segment=lambda text: segment_chinese(text, sv.itos))


def test_attention_explorer_selects_kind_layer_and_head(explorer_setup):
    corpus = explorer_setup[0]
    w = _explorer(explorer_setup)
    zh = list(corpus.test[0].zh)
    m, rows, cols = w.selected()  # default: cross attention, last layer, head 1
    assert cols == zh and rows == w._trace["output"] and m.shape == (len(rows), len(zh))
    w.kind.value = "encoder self"
    m, rows, cols = w.selected()
    assert rows == cols == zh
    w.kind.value = "decoder self (masked)"
    m, rows, cols = w.selected()
    assert rows[0] == "<bos>" and np.allclose(np.triu(m, 1), 0)
    w.layer.value, w.head.value = 0, -1
    expected = w._trace["maps"]["decoder_self"][0].mean(0).numpy()
    assert np.allclose(w.selected()[0], expected)


def test_attention_explorer_redraws_on_every_control(explorer_setup):
    w = _explorer(explorer_setup)
    seen = [_pixels(w.render())]
    assert weight_bar_is_shown(w.colorbar, w.picture)
    for change in (lambda: setattr(w.head, "value", 1), lambda: setattr(w.layer, "value", 0),
                   lambda: setattr(w.kind, "value", "encoder self"),
                   lambda: setattr(w.sentence, "value", w.sentence.options[1][1])):
        change()
        seen.append(_pixels(w.render()))
        assert seen[-1].shape != seen[-2].shape or (seen[-1] != seen[-2]).any()
        assert weight_bar_is_shown(w.colorbar, w.picture)  # still there after blitting a new layout
    w.typed.value = "我爱你"
    assert w._trace["source"] == ["我", "爱", "你"]


def test_attention_explorer_translates_each_sentence_once(explorer_setup):
    corpus, sv, tv, model = explorer_setup
    calls = []

    def trace(words):
        calls.append(tuple(words))
        return translation.trace_transformer(model, words, sv, tv, max_len=10)

    w = TransformerAttentionExplorer(trace, [p.zh for p in corpus.test[:2]])
    first = _pixels(w.render())
    w.sentence.value = w.sentence.options[1][1]
    w.sentence.value = w.sentence.options[0][1]
    assert calls == [tuple(corpus.test[0].zh), tuple(corpus.test[1].zh)]
    assert (first == _pixels(w.render())).all()


def test_attention_explorer_rejects_bad_arguments(explorer_setup):
    corpus, sv, tv, model = explorer_setup
    with pytest.raises(ValueError, match="sentences must not be empty"):
        TransformerAttentionExplorer(lambda words: None, [])
    with pytest.raises(ValueError, match="kind must be one of"):
        TransformerAttentionExplorer(lambda words: None, [["我"]], kind="sideways")
