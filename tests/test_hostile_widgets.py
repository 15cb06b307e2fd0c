"""Hostile input for the widgets, the plotting functions and the translation and toy recipes.

Every widget is fed, in every text box, what a careless or hostile learner types: nothing, spaces,
punctuation, unknown words, emoji, HTML, 5,000 characters, text longer than the model's positional
table, TeX, [MASK] and [SEP] where they do not belong. Each answer must come without an exception,
with work bounded by a cut (a text twice as long draws the same picture: the time an answer takes is
measured in benchmarks/widgets.py, never here), with a message in the status line where the text cannot be used as typed,
with the typed HTML escaped, and with a picture still shown (the last good one when the text was
refused). The public functions answer bad arguments with a ValueError or TypeError naming them.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import figures, viz  # noqa: E402
from course_lib.bert import BertConfig, BertForPreTraining  # noqa: E402
from course_lib.data import SentencePair, make_translation_corpus  # noqa: E402
from course_lib.data.stories import make_story_corpus  # noqa: E402
from course_lib.encoder_decoder import EncoderDecoder  # noqa: E402
from course_lib.gpt import GPT, GPTConfig  # noqa: E402
from course_lib.tasks import toys, translation  # noqa: E402
from course_lib.tasks.bert import story_tokenizer  # noqa: E402
from course_lib.tokenizers import WordVocab, segment_chinese  # noqa: E402
from course_lib.widgets.attention import AttentionExplorer, TranslationAttentionView  # noqa: E402
from course_lib.widgets.base import MAX_TYPED_WORDS, FigureWidget, Memo, canvas_to_png  # noqa: E402
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
from course_lib.widgets.gpt import GenerationExplorer, continue_text, next_word_distribution  # noqa: E402
from course_lib.widgets.transformer import (  # noqa: E402
    PositionExplorer,
    ScalingExplorer,
    TransformerAttentionExplorer,
    position_similarity,
)

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:Glyph:UserWarning")]  # emoji have no glyph: drawn as boxes

# What a learner may type. "long_*" are 5,000 characters: more words than any model here reads.
HOSTILE = {
    "empty": "",
    "spaces": "   \t ",
    "punctuation": "!!!???...,,;;",
    "unknown": "zzqx foo blorp",
    "emoji": "😀🔥🚀",
    "html": "<b>x</b>",
    "script": "<script>alert(1)</script>",
    "tex": r"$\nocommand{a}$ $x$",
    "specials": "[MASK] [MASK] [SEP] [SEP] [SEP] <eos> <pad>",
    "long_zh": "我" * 5000,
    "long_en": ("the man went to the store . " * 200)[:5000],
}
# Texts no widget can use as typed: each must leave a message in the status line.
MUST_TELL = {"long_zh", "long_en"}


# ---------------------------------------------------------------------------
# The widgets, built small (as tests/test_widgets_*.py build them)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def translation_world():
    corpus = make_translation_corpus(num_sentences=300, seed=1)
    sv, tv = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    torch.manual_seed(0)
    gru = translation.AttentionGRUTranslator(len(sv), len(tv), d_model=16, bos_id=tv.bos_id, eos_id=tv.eos_id)
    # max_len 16 < MAX_TYPED_WORDS: a cut text is still longer than this positional table
    transformer = EncoderDecoder(len(sv), len(tv), d_model=16, num_heads=2, d_ff=32, num_layers=1, max_len=16)
    return corpus, sv, tv, gru, transformer


@pytest.fixture(scope="module")
def story_world():
    corpus = make_story_corpus(100, seed=0)
    vocab = WordVocab(corpus.words)
    tok = story_tokenizer(corpus.words)
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=len(vocab), block_size=16, n_layer=1, n_head=2, n_embd=16))
    bert = BertForPreTraining(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=32,
                                         max_position_embeddings=64)).eval()
    return vocab, tok, gpt, bert


@pytest.fixture(scope="module")
def widgets(translation_world, story_world):
    """Each widget with its text boxes and a text each box accepts (to start every case from a good picture)."""
    corpus, sv, tv, gru, transformer = translation_world
    vocab, tok, gpt, bert = story_world
    segment = lambda text: segment_chinese(text, sv.itos)  # noqa: E731
    zh = "".join(corpus.test[0].zh)
    return {
        "01 attention explorer": (AttentionExplorer(
            lambda score, words: translation.trace_translation(gru, words, sv, tv, max_len=8),
            [corpus.test[1].zh], ["additive"], segment=segment), {"typed": zh}),
        "02 transformer explorer": (TransformerAttentionExplorer(
            lambda words: translation.trace_transformer(transformer, words, sv, tv, max_len=8),
            [corpus.test[1].zh], segment=segment), {"typed": zh}),
        "03 generation explorer": (GenerationExplorer(gpt, vocab, prompt="the man went to"),
                                   {"prompt": "anna went to the park ."}),
        "04 masking explorer": (MaskingExplorer(tok, "the man went to the store ."),
                                {"text_a": "the man went to the store .", "text_b": "he bought a gallon of milk ."}),
        "04 fill-mask explorer": (FillMaskExplorer(bert, tok, "the man went to [MASK] store ."),
                                  {"text": "anna went to the [MASK] ."}),
        "04 model view": (ModelView(bert.bert, tok, "the man went to the store .", ""),
                          {"text_a": "the man went to the store .", "text_b": "he bought a gallon of milk ."}),
    }


CASES = [(widget, box) for widget, boxes in [
    ("01 attention explorer", ["typed"]), ("02 transformer explorer", ["typed"]), ("03 generation explorer", ["prompt"]),
    ("04 masking explorer", ["text_a", "text_b"]), ("04 fill-mask explorer", ["text"]),
    ("04 model view", ["text_a", "text_b"])] for box in boxes]


def _shown(w) -> str:
    """Every HTML the widget shows: its status line and, for an HTML view, the view."""
    return (w.status.value if w.status is not None else "") + (w.output.value if hasattr(w, "output") else "")


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("widget,box", CASES)
def test_typed_text_never_raises_and_is_answered(widgets, widget, box, case):
    w, good = widgets[widget]
    control = getattr(w, box)
    control.value = good[box]  # start from a good picture (a no-op when it is there already)
    assert w.message == "", w.message
    before = w.picture
    control.value = HOSTILE[case]  # a callback that raised would raise here
    shown = _shown(w)
    if case in MUST_TELL:
        assert w.message or "only the" in shown, f"{widget} said nothing about {case!r}"
        assert len(w.status.value) < 2000  # a short message, not the text echoed
    if case in ("empty", "spaces") and box != "text_b":  # sentence B may be empty; nothing else may
        assert w.status.value.strip()
    assert "<script" not in shown.lower() and "<b>x</b>" not in shown  # typed HTML shows as text
    picture = w.picture
    assert picture, f"{widget} shows no picture after {case!r}"
    if isinstance(w, FigureWidget):
        assert picture[:4] == b"\x89PNG"
    if w.message:  # refused: the last good picture stays
        assert picture == before


@pytest.mark.parametrize("case", sorted(MUST_TELL))
@pytest.mark.parametrize("widget,box", CASES)
def test_a_longer_text_costs_no_more_work(widgets, widget, box, case):
    """The text is cut before any work is done: 10,000 characters draw what 5,000 drew, so an
    answer's cost does not grow with what is typed (its time: benchmarks/widgets.py)."""
    w, good = widgets[widget]
    control = getattr(w, box)
    control.value = good[box]
    control.value = HOSTILE[case]
    picture, message = w.picture, w.message
    control.value = good[box]  # away and back: the doubled text must be computed, not kept
    control.value = HOSTILE[case] * 2
    assert (w.picture, w.message) == (picture, message)


def test_long_text_is_cut_to_what_the_model_reads(widgets):
    w, _ = widgets["01 attention explorer"]
    w.typed.value = HOSTILE["long_zh"]
    assert len(w._trace["source"]) == MAX_TYPED_WORDS
    assert f"only the first {MAX_TYPED_WORDS} words are used" in w.status.value
    w.step.value = 2  # the note stays while the learner explores the same sentence
    assert "only the first" in w.status.value
    gen, _ = widgets["03 generation explorer"]
    gen.prompt.value = HOSTILE["long_en"]
    assert gen.message == "" and "only the last 14 words are used" in gen.status.value
    view, _ = widgets["04 model view"]
    view.text_a.value = HOSTILE["long_en"]
    assert len(view.tokens) == view.max_tokens and "only the first" in view.status.value
    assert view.status.layout.display is None  # shown; hidden again once a text fits
    view.text_a.value = "the man went to the store ."
    view.text_b.value = ""
    assert view.status.value == "" and view.status.layout.display == "none"


def test_text_longer_than_the_positional_table_keeps_the_picture(widgets):
    w, good = widgets["02 transformer explorer"]
    w.typed.value = good["typed"]
    before, trace = w.picture, w._trace
    w.typed.value = " ".join(["我"] * 18)  # within MAX_TYPED_WORDS, beyond the model's max_len=16
    assert "max_len=16" in w.message and w.picture == before and w._trace is trace
    w.head.value = -1  # the other controls go on working on the last good sentence
    assert w.picture != before and w.message == ""


def test_fill_mask_explains_missing_and_repeated_markers(widgets):
    w, _ = widgets["04 fill-mask explorer"]
    w.text.value = "anna went to the park ."
    assert "[MASK]" in w.message
    w.text.value = "anna went to the [MASK] . [SEP] she fed the ducks . [SEP] she felt happy ."
    assert "one [SEP]" in w.message
    w.text.value = "anna went to the [MASK] . she fed the [MASK] ."  # repeated: the first is predicted
    assert w.message == "" and "model input" in w.status.value


def test_tex_in_typed_words_is_drawn_as_text(translation_world):
    corpus, sv, tv, gru, _ = translation_world
    w = AttentionExplorer(lambda score, words: translation.trace_translation(gru, words, sv, tv, max_len=4),
                          [corpus.test[0].zh], ["additive"])  # str.split: "$\nocommand{a}$" stays one word
    w.typed.value = r"$\nocommand{a}$ $x$"  # as TeX, matplotlib could not draw it
    assert w.message == "" and w._trace["source"] == [r"$\nocommand{a}$", "$x$"]


def test_a_failing_callback_becomes_a_message(translation_world):
    corpus = translation_world[0]

    def broken(score, words):
        if words == ["boom"]:
            raise RuntimeError("<deep> inside torch")
        g = torch.Generator().manual_seed(0)
        return {"source": list(words), "output": ["a", "<eos>"],
                "weights": torch.softmax(torch.randn(2, len(words), generator=g), -1)}

    w = AttentionExplorer(broken, [corpus.test[0].zh], ["additive"])
    before = w.picture
    w.typed.value = "boom"
    assert w.message == "RuntimeError: <deep> inside torch" and "&lt;deep&gt;" in w.status.value
    assert w.picture == before and w._words == list(corpus.test[0].zh)  # the words of the picture shown
    w.typed.value = "x y"
    assert w.message == "" and w.picture != before


# ---------------------------------------------------------------------------
# Widget constructors and the functions behind the widgets
# ---------------------------------------------------------------------------

def _nan_weights():
    return torch.full((2, 2), float("nan"))


def test_widget_functions_refuse_bad_arguments(translation_world, story_world):
    corpus, sv, tv, gru, _ = translation_world
    vocab, tok, gpt, bert = story_world
    cases = [
        (lambda: position_similarity([[1.0]]), TypeError, "pe"),
        (lambda: position_similarity(torch.zeros(3, 4)), ValueError, "pe"),
        (lambda: position_similarity(torch.ones(3, 4, dtype=torch.long)), TypeError, "pe"),
        (lambda: attention_grid(torch.rand(2, 2, 3, 4)), ValueError, "attentions"),
        (lambda: attention_grid(torch.rand(2, 2, 3, 3), gap=-1), ValueError, "gap"),
        (lambda: fill_mask(bert, tok, 5), TypeError, "text"),
        (lambda: fill_mask(bert, tok, "a [MASK] . [SEP] b . [SEP] c ."), ValueError, "text"),
        (lambda: fill_mask(bert, tok, "[SEP] [SEP]"), ValueError, "text"),
        (lambda: fill_mask(bert, tok, "the [MASK] . " * 30), ValueError, "text"),
        (lambda: fill_mask(bert, tok, "the [MASK] .", top=0), ValueError, "top"),
        (lambda: fill_mask(bert.bert, tok, "the [MASK] ."), TypeError, "model"),
        (lambda: bert_attentions(bert.bert, tok, "the man " * 40), ValueError, "text_a"),
        (lambda: bert_attentions(bert.bert, tok, ["the"]), TypeError, "text_a"),
        (lambda: head_roles(bert.bert, tok, []), ValueError, "pairs"),
        (lambda: head_roles(bert.bert, tok, [("a", None)], batch_size=0), ValueError, "batch_size"),
        (lambda: masking_html(tok, 5), TypeError, "text_a"),
        (lambda: masking_html(tok, "a", 5), TypeError, "text_b"),
        (lambda: masking_html(tok, "a", seed=1.5), TypeError, "seed"),
        (lambda: next_word_distribution(gpt, vocab, 5), TypeError, "prompt"),
        (lambda: next_word_distribution(gpt, vocab, "the martian"), ValueError, "prompt"),
        (lambda: next_word_distribution(gpt, vocab, "the " * 20), ValueError, "prompt"),
        (lambda: next_word_distribution(gpt, vocab, "the <eos>"), ValueError, "prompt"),
        (lambda: next_word_distribution(gpt, vocab, "the", temperature=0), ValueError, "temperature"),
        (lambda: next_word_distribution(gpt, vocab, "the", top_k=0), ValueError, "top_k"),
        (lambda: next_word_distribution(gpt, vocab, "the", n=0), ValueError, "n"),
        (lambda: next_word_distribution(gpt, sv, "the"), ValueError, "vocab"),
        (lambda: continue_text(gpt, vocab, "the", seed="a"), TypeError, "seed"),
        (lambda: continue_text(gpt, vocab, "the", max_new_words=0), ValueError, "max_new_words"),
        (lambda: TranslationAttentionView().update(["a"], ["b"], torch.ones(1, 1), step=0.5), ValueError, "step"),
        (lambda: TranslationAttentionView().update(["a", "b"], ["c", "d"], _nan_weights()), ValueError, "weights"),
        (lambda: TranslationAttentionView().update(["a"], ["b"], torch.ones(1, 1), torch.ones(3, 4)),
         ValueError, "contexts"),
        (lambda: ScalingExplorer(d_ks=[]), ValueError, "d_ks"),
        (lambda: ScalingExplorer(n_keys=0), ValueError, "n_keys"),
        (lambda: PositionExplorer(position=99), ValueError, "position"),
        (lambda: PositionExplorer(d_models=[16, -4]), ValueError, "d_models"),
        (lambda: AttentionExplorer(lambda s, w: None, [["我"]], []), ValueError, "score_names"),
        (lambda: AttentionExplorer(lambda s, w: None, [["我"]], ["dot"], max_words=0), ValueError, "max_words"),
        (lambda: TransformerAttentionExplorer(lambda w: None, [["我"]], max_words=0), ValueError, "max_words"),
        (lambda: GenerationExplorer(gpt, vocab, n=0), ValueError, "n"),
        (lambda: ModelView(bert.bert, tok, max_tokens=0), ValueError, "max_tokens"),
        (lambda: ModelView(bert, tok), TypeError, "model"),
        (lambda: MaskingExplorer(tok, max_tokens=-1), ValueError, "max_tokens"),
        (lambda: Memo(0), ValueError, "size"),
        (lambda: canvas_to_png(plt), TypeError, "fig"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=rf"(?<![\w\[]){name}(?![\w])"):
            call()


# ---------------------------------------------------------------------------
# viz: every argument checked before anything is drawn
# ---------------------------------------------------------------------------

@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


VIZ_CASES = {
    "3-D matrix": (lambda ax: viz.plot_heatmap(ax, torch.ones(2, 2, 2)), ValueError, "matrix"),
    "1-D matrix": (lambda ax: viz.plot_heatmap(ax, [1.0, 2.0]), ValueError, "matrix"),
    "empty matrix": (lambda ax: viz.plot_heatmap(ax, torch.zeros(0, 3)), ValueError, "matrix"),
    "ragged matrix": (lambda ax: viz.plot_heatmap(ax, [[1, 2], [3]]), ValueError, "matrix"),
    "NaN matrix": (lambda ax: viz.plot_heatmap(ax, torch.full((2, 2), float("nan"))), ValueError, "matrix"),
    "inf matrix": (lambda ax: viz.plot_heatmap(ax, [[1.0, float("inf")]]), ValueError, "matrix"),
    "text matrix": (lambda ax: viz.plot_heatmap(ax, [["a", "b"]]), TypeError, "matrix"),
    "object matrix": (lambda ax: viz.plot_heatmap(ax, [[object(), 1]]), TypeError, "matrix"),
    "complex matrix": (lambda ax: viz.plot_heatmap(ax, torch.ones(2, 2, dtype=torch.cfloat)), TypeError, "matrix"),
    "str matrix": (lambda ax: viz.as_matrix("abc"), TypeError, "matrix"),
    "None matrix": (lambda ax: viz.as_matrix(None), TypeError, "matrix"),
    "short xlabels": (lambda ax: viz.plot_heatmap(ax, torch.eye(3), ["a", "b"]), ValueError, "xlabels"),
    "long ylabels": (lambda ax: viz.plot_heatmap(ax, torch.eye(2), None, list("abc")), ValueError, "ylabels"),
    "str xlabels": (lambda ax: viz.plot_heatmap(ax, torch.eye(3), "abc"), TypeError, "xlabels"),
    "int ylabels": (lambda ax: viz.plot_heatmap(ax, torch.eye(3), None, 3), TypeError, "ylabels"),
    "not an ax": (lambda ax: viz.plot_heatmap("ax", torch.eye(2)), TypeError, "ax"),
    "text vmin": (lambda ax: viz.plot_heatmap(ax, torch.eye(2), vmin="0"), ValueError, "vmin"),
    "NaN vmax": (lambda ax: viz.plot_heatmap(ax, torch.eye(2), vmax=float("nan")), ValueError, "vmax"),
    "vmin > vmax": (lambda ax: viz.plot_heatmap(ax, torch.eye(2), vmin=1.0, vmax=0.0), ValueError, "vmin"),
    "label_heatmap labels": (lambda ax: viz.label_heatmap(ax, ["a"], None, (1, 2)), ValueError, "xlabels"),
    "2-D matrices": (lambda ax: viz.show_heatmaps(torch.ones(4, 4)), ValueError, "matrices"),
    "4-D matrices": (lambda ax: viz.show_heatmaps(torch.ones(2, 2, 2, 2)), ValueError, "matrices"),
    "no matrices": (lambda ax: viz.show_heatmaps([]), ValueError, "matrices"),
    "int matrices": (lambda ax: viz.show_heatmaps(5), TypeError, "matrices"),
    "one bad matrix": (lambda ax: viz.show_heatmaps([torch.eye(2), torch.ones(3)]), ValueError, r"matrices\[1\]"),
    "NaN in matrices": (lambda ax: viz.show_heatmaps([_nan_weights()]), ValueError, r"matrices\[0\]"),
    "few titles": (lambda ax: viz.show_heatmaps(torch.rand(3, 2, 2), titles=["a"]), ValueError, "titles"),
    "zero cols": (lambda ax: viz.show_heatmaps(torch.rand(3, 2, 2), cols=0), ValueError, "cols"),
    "negative size": (lambda ax: viz.show_heatmaps(torch.rand(1, 2, 2), size=-1), ValueError, "size"),
    "shared xlabels": (lambda ax: viz.show_heatmaps([torch.eye(2), torch.eye(3)], xlabels=["a", "b"]),
                       ValueError, "xlabels"),
    "grid lengths": (lambda ax: viz.plot_attention_grid([torch.eye(2)], [], []), ValueError, "weights"),
    "grid sources": (lambda ax: viz.plot_attention_grid([torch.eye(2)], [["a"]], [["A", "B"]]), ValueError,
                     r"sources\[0\]"),
    "grid weights": (lambda ax: viz.plot_attention_grid([torch.ones(2)], [["a"]], [["A"]]), ValueError,
                     r"weights\[0\]"),
    "grid str": (lambda ax: viz.plot_attention_grid("w", ["a"], ["b"]), TypeError, "weights"),
    "png of a non-figure": (lambda ax: viz.figure_to_png(ax), TypeError, "fig"),
    "png dpi": (lambda ax: viz.figure_to_png(ax.figure, dpi=0), ValueError, "dpi"),
    "ema beta": (lambda ax: viz.ema([1.0, 2.0], beta=2), ValueError, "beta"),
    "loss plot text": (lambda ax: viz.LiveLossPlot(display=False).update([1, 2], ["a", "b"]), TypeError, "losses"),
}


@pytest.mark.parametrize("case", list(VIZ_CASES))
def test_viz_refuses_bad_input_naming_the_argument(ax, case):
    call, error, name = VIZ_CASES[case]
    figures_before = plt.get_fignums()
    with pytest.raises(error, match=rf"(?<![\w\[]){name}(?![\w])"):
        call(ax)
    assert plt.get_fignums() == figures_before  # refused before a figure was made


def test_viz_still_draws_what_it_drew(ax):
    image = viz.plot_heatmap(ax, -torch.ones(2, 2))  # all below vmin=0: an empty scale, not a draw error
    viz.figure_to_png(ax.figure)
    assert image.get_clim() == (0.0, 0.0)
    viz.plot_heatmap(ax, torch.tensor(0.5) * torch.eye(2), vmax=torch.tensor(1.0))  # a 0-d tensor is a number


# ---------------------------------------------------------------------------
# tasks.translation and tasks.toys
# ---------------------------------------------------------------------------

def test_translation_recipes_refuse_bad_input(translation_world):
    corpus, sv, tv, gru, transformer = translation_world
    pairs = list(corpus.test[:3])
    src, lengths, tgt_in, _ = translation.encode_pairs(pairs, sv, tv)
    no_english = SentencePair(("我",), (), (), ())
    cases = [
        (lambda: translation.trace_translation(gru, "我爱你", sv, tv), TypeError, "zh_words"),
        (lambda: translation.trace_translation(gru, [], sv, tv), ValueError, "zh_words"),
        (lambda: translation.trace_translation(gru, ["我", 3], sv, tv), TypeError, "zh_words"),
        (lambda: translation.trace_translation(gru, ["我", ""], sv, tv), ValueError, "zh_words"),
        (lambda: translation.trace_translation(gru, ["我"], sv, tv, max_len=0), ValueError, "max_len"),
        (lambda: translation.trace_translation(transformer, ["我"], sv, tv), TypeError, "model"),
        (lambda: translation.trace_translation(gru, ["我"], "sv", tv), TypeError, "src_vocab"),
        (lambda: translation.trace_translation(gru, ["我"], sv, WordVocab(f"w{i}" for i in range(len(tv)))),
         ValueError, "tgt_vocab"),  # more words than the model's table
        (lambda: translation.translate(gru, None, sv, tv), TypeError, "zh_words"),
        (lambda: translation.trace_transformer(transformer, ["我"] * 17, sv, tv), ValueError, "zh_words"),
        (lambda: translation.trace_transformer(gru, ["我"], sv, tv), TypeError, "model"),
        (lambda: translation.trace_transformer(transformer, ["我"], sv, tv, max_len=-1), ValueError, "max_len"),
        (lambda: translation.evaluate_translation(gru, [], sv, tv), ValueError, "pairs"),
        (lambda: translation.evaluate_translation(gru, ["我 爱 你"], sv, tv), TypeError, "pairs"),
        (lambda: translation.evaluate_translation(gru, [no_english], sv, tv), ValueError, "pairs"),
        (lambda: translation.evaluate_translation(gru, pairs, sv, tv, batch_size=0), ValueError, "batch_size"),
        (lambda: translation.evaluate_translation(torch.nn.Linear(2, 2), pairs, sv, tv), TypeError, "model"),
        (lambda: translation.forced_attention(gru, [], sv, tv), ValueError, "pairs"),
        (lambda: translation.encode_pairs(pairs, sv, None), TypeError, "tgt_vocab"),
        (lambda: translation.translation_batches([], sv, tv), ValueError, "pairs"),
        (lambda: translation.translation_batches(pairs, [], tv), TypeError, "src_vocab"),
        (lambda: translation.alignment_hits([], []), ValueError, "pairs"),
        (lambda: translation.alignment_hits([torch.ones(2, 2)], pairs), ValueError, "weights"),
        (lambda: translation.alignment_hits([torch.ones(1, 1)], pairs[:1]), ValueError, r"weights\[0\]"),
        (lambda: translation.cross_attention_alignment(gru, pairs, sv, tv), TypeError, "model"),
        (lambda: translation.translation_loss(gru, (src, lengths)), ValueError, "batch"),
        (lambda: translation.transformer_translation_loss(transformer, None), ValueError, "batch"),
        (lambda: translation.train_translator("corpus", sv, tv, steps=1), TypeError, "corpus"),
        (lambda: translation.train_transformer_translator(corpus, sv, 5, steps=1), TypeError, "tgt_vocab"),
        (lambda: translation.AttentionGRUTranslator(0, 5), ValueError, "src_vocab_size"),
        (lambda: translation.AttentionGRUTranslator(5, 5, d_model=-2), ValueError, "d_model"),
        (lambda: translation.AttentionGRUTranslator(5, 5, d_embed=0), ValueError, "d_embed"),
        (lambda: translation.AttentionGRUTranslator(5, 5, bos_id=9), ValueError, "bos_id"),
        (lambda: gru.encode(src.float(), lengths), TypeError, "src"),
        (lambda: gru.encode(src + len(sv), lengths), ValueError, "src"),
        (lambda: gru.encode(src, torch.zeros_like(lengths)), ValueError, "src_lengths"),
        (lambda: gru.encode(src, lengths + src.shape[1]), ValueError, "src_lengths"),
        (lambda: gru.encode(src, [3, 3, 3]), TypeError, "src_lengths"),
        (lambda: gru(src, lengths, tgt_in[:1]), ValueError, "tgt_in"),
        (lambda: gru(src, lengths, tgt_in + len(tv)), ValueError, "tgt_in"),
        (lambda: gru.greedy_decode(src, lengths, max_len=0), ValueError, "max_len"),
        (lambda: gru.decode_step(tgt_in[:, 0], torch.zeros(3, 8), torch.zeros(3, 4, 16),
                                 torch.ones(3, 4, dtype=torch.bool)), ValueError, "state"),
        (lambda: gru.decode_step(tgt_in[:, 0], torch.zeros(3, 16), torch.zeros(3, 4, 16),
                                 torch.ones(3, 4)), TypeError, "mask"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=rf"(?<![\w\[]){name}(?![\w])"):
            call()


def test_toys_refuse_bad_sizes_and_ids(translation_world):
    corpus, sv = translation_world[0], translation_world[1]
    model, tagger = toys.NeighbourModel(10, 6, d_model=8, num_heads=2), toys.TenseTagger(len(sv), max_len=16)
    tokens, targets = toys.neighbour_batch(2, 6, 10)
    cases = [
        (lambda: toys.neighbour_batch(0, 6, 10), ValueError, "batch_size"),
        (lambda: toys.neighbour_batch(4, -1, 10), ValueError, "length"),
        (lambda: toys.neighbour_batch(4, 6, 0), ValueError, "vocab_size"),
        (lambda: toys.neighbour_batch(4, 6, 10, generator=0), TypeError, "generator"),
        (lambda: toys.NeighbourModel(0, 6), ValueError, "vocab_size"),
        (lambda: toys.NeighbourModel(10, 6, d_model=6, num_heads=4), ValueError, "d_model"),
        (lambda: model(torch.zeros(2, 7, dtype=torch.long)), ValueError, "tokens"),
        (lambda: model(torch.full((2, 6), 10)), ValueError, "tokens"),
        (lambda: model(torch.zeros(2, 6)), TypeError, "tokens"),
        (lambda: toys.neighbour_loss(model, (tokens, targets[..., 0])), ValueError, "batch"),
        (lambda: toys.neighbour_loss(model, tokens), ValueError, "batch"),
        (lambda: toys.head_offsets(torch.rand(2, 3, 3)), ValueError, "weights"),
        (lambda: toys.head_offsets(torch.ones(1, 2, 3, 3, dtype=torch.long)), TypeError, "weights"),
        (lambda: toys.tense_of("我 爱 你"), TypeError, "pair"),
        (lambda: toys.tense_batch([], sv, 4), ValueError, "pairs"),
        (lambda: toys.tense_batch(corpus.train, sv, 0), ValueError, "batch_size"),
        (lambda: toys.TenseTagger(0), ValueError, "vocab_size"),
        (lambda: toys.TenseTagger(10, max_len=0), ValueError, "max_len"),
        (lambda: tagger(torch.zeros(1, 17, dtype=torch.long)), ValueError, "ids"),
        (lambda: tagger.embed(torch.full((1, 3), len(sv))), ValueError, "ids"),
        (lambda: toys.tense_loss(tagger, (torch.ones(2, 3, dtype=torch.long), torch.zeros(3, dtype=torch.long))),
         ValueError, "batch"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=rf"(?<![\w\[]){name}(?![\w])"):
            call()


def test_figures_refuse_bad_arguments_before_training(tmp_path, capsys):
    with pytest.raises(TypeError, match=r"\bout_dir\b"):
        figures.attention_figures(5)
    with pytest.raises(ValueError, match=r"\bsteps\b"):
        figures.transformer_figures(tmp_path, steps=0)
    with pytest.raises(TypeError, match=r"\bseed\b"):
        figures.gpt_figures(str(tmp_path), seed="0")
    with pytest.raises(SystemExit):
        figures.main(["--steps", "-3", "--out", str(tmp_path)])
    assert "--steps" in capsys.readouterr().err
