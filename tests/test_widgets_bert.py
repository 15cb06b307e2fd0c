"""Notebook 04's widgets and attention analysis, without a browser."""

import matplotlib

matplotlib.use("Agg")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from widget_pictures import weight_bar_is_shown  # noqa: E402

from course_lib.bert import BertConfig, BertForPreTraining, BertModel  # noqa: E402
from course_lib.data.stories import make_story_corpus  # noqa: E402
from course_lib.tasks.bert import story_tokenizer  # noqa: E402
from course_lib.widgets.bert import (  # noqa: E402
    FillMaskExplorer,
    MaskingExplorer,
    ModelView,
    attention_grid,
    bert_attentions,
    fill_mask,
    head_roles,
    masking_html,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")




@pytest.fixture(scope="module")
def world():
    corpus = make_story_corpus(200, seed=0)
    tok = story_tokenizer(corpus.words)
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    return corpus, tok, BertForPreTraining(config).eval()


def test_story_tokenizer_keeps_story_words_whole(world):
    corpus, tok, _ = world
    story = corpus.train[0]
    assert tok.tokenize(story.text) == story.words
    e = tok.encode(story.sentences[0], story.sentences[1])
    assert e["input_ids"][0] == tok.cls_id and e["input_ids"].count(tok.sep_id) == 2


def test_masking_html_counts_and_colours(world):
    _, tok, _ = world
    text, counts = masking_html(tok, "the man went to the store .", "he bought a gallon of milk .", rate=0.5, seed=3)
    assert counts["tokens"] == 14 and counts["selected"] == counts["mask"] + counts["random"] + counts["kept"]
    assert counts["selected"] > 0 and "[MASK]" in text or counts["mask"] == 0
    assert masking_html(tok, "the man went to the store .", None, 0.5, 3) != masking_html(tok, "the man went to the store .", None, 0.5, 4)
    w = MaskingExplorer(tok, "the man went to the store .", "he bought a gallon of milk .")
    before = w.output.value
    w.seed.value = 5
    assert w.output.value != before and w.counts["tokens"] == 14
    w.text_b.value = ""
    assert w.counts["tokens"] == 7 and len(w.redraw_ms) == 3


def test_fill_mask(world):
    _, tok, model = world
    tokens, table = fill_mask(model, tok, "the man went to [MASK] store . [SEP] he bought a gallon of milk .", top=5)
    assert tokens[0] == "[CLS]" and "[MASK]" in tokens and tokens.count("[SEP]") == 2
    assert len(table) == 5 and table[0][1] >= table[-1][1]
    with pytest.raises(ValueError, match="write \\[MASK\\]"):
        fill_mask(model, tok, "no blank here")
    w = FillMaskExplorer(model, tok)
    first = w.status.value
    w.text.value = "anna went to the [MASK] ."
    assert w.status.value != first and "anna went to the [MASK] ." in w.status.value
    assert [b.get_width() for b in w.bars] == pytest.approx(
        [p for _, p in fill_mask(model, tok, "anna went to the [MASK] .", top=10)[1]])
    w.text.value = "nothing to fill"
    assert "MASK" in w.status.value


def test_attention_grid_tiles_every_head():
    attn = torch.rand(3, 4, 5, 5)
    grid = attention_grid(attn)
    assert grid.shape == (3 * 6 - 1, 4 * 6 - 1)
    assert np.allclose(grid[6:11, 12:17], attn[1, 2].numpy())
    assert np.isnan(grid[5, 0]) and np.isnan(grid[0, 5])


def test_model_view_and_head_roles(world):
    corpus, tok, model = world
    bert: BertModel = model.bert
    view = ModelView(bert, tok, "the man went to the store .", "he bought a gallon of milk .")
    first = view.render()
    assert weight_bar_is_shown(view.colorbar, first)
    view.layer.value, view.head.value = 2, 2
    assert view.render() != first
    assert weight_bar_is_shown(view.colorbar, view.picture)
    assert np.allclose(view.big.get_array(), view.attn[1, 1].numpy())
    view.text_b.value = ""
    assert view.tokens.count("[SEP]") == 1
    pairs = [(s.sentences[0], s.sentences[1]) for s in corpus.train[:10]]
    roles = head_roles(bert, tok, pairs, batch_size=4)
    assert set(roles) == {"[CLS]", "[SEP]", "previous", "next", "itself", "same word"}
    for v in roles.values():
        assert v.shape == (2, 2) and ((v >= 0) & (v <= 1 + 1e-6)).all()
    # weights of one query sum to 1: [CLS] + [SEP] + itself can't exceed it
    assert (roles["[CLS]"] + roles["[SEP]"] <= 1 + 1e-5).all()
    # padding changes nothing: one pair at a time gives the same means
    one_by_one = head_roles(bert, tok, pairs[:4], batch_size=1)
    together = head_roles(bert, tok, pairs[:4], batch_size=4)
    for role in roles:
        assert torch.allclose(one_by_one[role], together[role], atol=1e-5), role


def test_model_view_runs_the_model_once_per_text(world):
    _, tok, model = world
    view = ModelView(model.bert, tok, "the man went to the store .", "")
    first = view.render()
    calls = []
    hook = model.bert.register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        view.text_a.value = "anna went to the park ."
        view.text_a.value = "the man went to the store ."
        assert len(calls) == 1 and view.render() == first
    finally:
        hook.remove()


def test_functions_leave_the_model_in_its_mode(world):
    corpus, tok, model = world
    model.train()
    try:
        fill_mask(model, tok, "the man went to [MASK] store .")
        bert_attentions(model.bert, tok, "the man went to the store .")
        head_roles(model.bert, tok, [(corpus.train[0].sentences[0], None)])
        assert model.training and model.bert.training
    finally:
        model.eval()
