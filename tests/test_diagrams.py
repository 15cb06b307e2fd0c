"""The architecture diagrams (course_lib.diagrams): they draw, they name real code, they match the
models they show, and their text is readable (no text on text, no line through text, no text
spilling over a box's edge)."""

import importlib
import inspect
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from course_lib import diagrams, viz  # noqa: E402
from course_lib.attention import causal_mask  # noqa: E402
from course_lib.bert import BertConfig, BertModel  # noqa: E402
from course_lib.encoder_decoder import Decoder, Encoder, EncoderDecoder  # noqa: E402
from course_lib.gpt import GPT, GPTConfig, GPTForClassification  # noqa: E402
from course_lib.gru_translator import AttentionGRUTranslator  # noqa: E402
from course_lib.tokenizers import WordPieceTokenizer  # noqa: E402
from course_lib.transformer import DecoderLayer, EncoderLayer  # noqa: E402

DIAGRAMS = {"attention_rnn_decoder": diagrams.ATTENTION_RNN_NAMES, "transformer": diagrams.TRANSFORMER_NAMES,
            "gpt": diagrams.GPT_NAMES, "bert_input": diagrams.BERT_INPUT_NAMES}


def _tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=12, block_size=8, n_layer=2, n_head=2, n_embd=8)).eval()


def _tiny_bert() -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=16, max_position_embeddings=16)).eval()

# Instances whose attributes a diagram names (e.g. the GRU cell of the translator): tiny, built once.
INSTANCES = {
    AttentionGRUTranslator: lambda: AttentionGRUTranslator(12, 10, d_model=8),
    EncoderLayer: lambda: EncoderLayer(8, 2, 16),
    DecoderLayer: lambda: DecoderLayer(8, 2, 16),
    Encoder: lambda: Encoder(12, 8, 2, 16, num_layers=1, max_len=10),
    Decoder: lambda: Decoder(12, 8, 2, 16, num_layers=1, max_len=10),
    GPT: _tiny_gpt,
    GPTForClassification: lambda: GPTForClassification(_tiny_gpt(), 3),
    BertModel: _tiny_bert,
}


@pytest.fixture(scope="module", params=list(DIAGRAMS))
def drawn(request):
    fig = getattr(diagrams, request.param)()
    yield request.param, fig
    plt.close(fig)


def _texts(fig):
    return [t for ax in fig.axes for t in ax.texts if t.get_text().strip()]


def _resolve(path: str):
    """``module.Qualified.name`` under course_lib -> the object; the last part may be an attribute
    of every instance (looked up on a small instance)."""
    module_name, *parts = path.split(".")
    obj = importlib.import_module(f"course_lib.{module_name}")
    for k, part in enumerate(parts):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif inspect.isclass(obj) and obj in INSTANCES and k == len(parts) - 1:
            obj = getattr(INSTANCES[obj](), part)  # AttributeError: the diagram names what is not there
        else:
            raise AttributeError(f"{path}: course_lib has no {part!r} in {obj!r}")
    return obj


def test_diagrams_draw_and_render_to_png(drawn):
    name, fig = drawn
    assert isinstance(fig, Figure)
    assert fig.get_size_inches()[0] == pytest.approx(10.0)  # a notebook's width
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a glyph missing from the fonts (e.g. a Chinese term) is a UserWarning
        png = viz.figure_to_png(fig, dpi=80)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    again = getattr(diagrams, name)()
    assert viz.figure_to_png(again, dpi=80) == png  # drawn from code, the same every time
    plt.close(again)


def test_every_code_name_shown_exists_in_course_lib(drawn):
    name, fig = drawn
    shown = "\n".join(t.get_text() for t in _texts(fig))
    for label, path in DIAGRAMS[name].items():
        assert label in shown, f"the {name} diagram should show {label!r}"
        _resolve(path)  # a rename in course_lib fails here
    # and every identifier written in code font is one of those names (or part of one): no box names
    # code that the registry, and so this test, does not check
    known = {part for label in DIAGRAMS[name] for part in re.split(r"[.]", label)} | set(DIAGRAMS[name])
    code = [t.get_text() for t in _texts(fig) if "monospace" in t.get_fontfamily()]
    identifiers = {w for text in code for w in re.findall(r"[A-Za-z_][\w.]*", text)
                   if "_" in w or "." in w or re.fullmatch(r"(?:[A-Z][a-z]+){2,}\w*", w)}
    assert identifiers and identifiers <= known, sorted(identifiers - known)


def test_the_rnn_diagram_matches_the_translator():
    # what the boxes say: a bidirectional GRU encoder; the cell reads [embed(y_{t-1}); context] and
    # s_{t-1}; the output layer reads [s_t; context]; the default score is additive
    model = INSTANCES[AttentionGRUTranslator]()
    assert model.encoder.bidirectional
    assert model.cell.input_size == model.tgt_embed.embedding_dim + model.d_model
    assert model.out.in_features == 2 * model.d_model
    assert inspect.signature(AttentionGRUTranslator).parameters["score"].default == "additive"
    assert type(model.score).__name__ == "AdditiveScore"


def test_the_transformer_diagram_matches_the_model():
    # post-norm layers (x = norm(x + sublayer(x))), the parts the boxes name, N as drawn
    params = inspect.signature(EncoderDecoder).parameters
    assert params["norm_first"].default is False
    encoder_layer, decoder_layer = INSTANCES[EncoderLayer](), INSTANCES[DecoderLayer]()
    assert {"self_attn", "ffn", "norm1", "norm2"} <= set(dict(encoder_layer.named_children()))
    assert {"self_attn", "cross_attn", "ffn", "norm1", "norm2", "norm3"} <= set(dict(decoder_layer.named_children()))
    fig = diagrams.transformer()
    shown = "\n".join(t.get_text() for t in _texts(fig))
    assert f"default: {params['num_layers'].default}" in shown
    plt.close(fig)


def _embeddings_named(names: dict, model: torch.nn.Module) -> set[str]:
    """The attributes of ``model`` that a diagram's code names show and that are nn.Embedding tables."""
    cls = type(model).__name__
    attributes = {path.rsplit(".", 1)[1] for label, path in names.items() if label.startswith(cls + ".")}
    return {name for name in attributes if isinstance(getattr(model, name, None), torch.nn.Embedding)}


def test_the_gpt_diagram_matches_the_model():
    model = INSTANCES[GPT]()
    # h_0 = U W_e + W_p: the two embedding tables drawn are the model's only ones
    tables = {name for name, m in model.named_children() if isinstance(m, torch.nn.Embedding)}
    assert tables == _embeddings_named(diagrams.GPT_NAMES, model) == {"wte", "wpe"}
    # the output layer is W_e itself (tied), and the blocks are pre-norm with the causal mask
    assert model.lm_head.weight is model.wte.weight
    assert all(block.norm_first for block in model.blocks)
    assert torch.equal(model.mask, causal_mask(model.config.block_size))
    # the forward pass computed box by box, as drawn, gives the model's logits
    idx = torch.randint(0, 12, (2, 6), generator=torch.Generator().manual_seed(1))
    T = idx.shape[1]
    with torch.no_grad():
        x = model.drop(model.wte(idx) + model.wpe(torch.arange(T)))             # h_0 = U W_e + W_p
        for block in model.blocks:                                             # h_l = transformer_block(h_{l-1})
            n1 = block.norm1(x)
            x = x + block.self_attn(n1, n1, n1, causal_mask(T))[0]             # x = x + self_attn(norm1(x))
            x = x + block.ffn(block.norm2(x))                                  # x = x + ffn(norm2(x))
        h_n = model.ln_f(x)
        by_hand = h_n @ model.wte.weight.T                                     # P(u) = softmax(h_n W_e^T)
        logits, _ = model(idx)
        assert torch.allclose(by_hand, logits, atol=1e-5)
        # the fine-tuning head W_y reads the last token's h
        clf = GPTForClassification(model, 3).eval()
        assert torch.allclose(clf(idx)[0], clf.head(h_n[:, -1]), atol=1e-5)
    fig = diagrams.gpt()
    shown = "\n".join(t.get_text() for t in _texts(fig))
    assert f"GPTConfig's default: {GPTConfig.n_layer}" in shown
    plt.close(fig)


def test_the_bert_input_diagram_matches_the_model():
    # the tokens: the BERT paper's example, as WordPieceTokenizer.encode splits it
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "my", "dog", "is", "cute", "he", "likes", "play", "##ing"]
    tokenizer = WordPieceTokenizer(vocab)
    encoded = tokenizer.encode(*diagrams.BERT_EXAMPLE)
    tokens = [tokenizer.itos[i] for i in encoded["input_ids"]]
    assert tokens == "[CLS] my dog is cute [SEP] he likes play ##ing [SEP]".split()
    fig = diagrams.bert_input()
    texts = _texts(fig)
    shown = [t.get_text() for t in texts]
    # the token row, left to right, is that encoding
    row = sorted((t for t in texts if t.get_text() in tokens), key=lambda t: t.get_position()[0])
    assert [t.get_text() for t in row] == tokens
    # one box per token in each embedding row: E_token, E_A / E_B as the segment ids say, E_0 ... E_{T-1}
    T = len(tokens)
    for i, token in enumerate(tokens):
        assert diagrams._math_sub("E", token) in shown
        assert shown.count(diagrams._math_sub("E", str(i))) == 1
    for name, segment in (("A", 0), ("B", 1)):
        assert shown.count(diagrams._math_sub("E", name)) == encoded["token_type_ids"].count(segment) > 0
    boxes = [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyBboxPatch)]
    model = INSTANCES[BertModel]()
    tables = {name for name, m in model.named_children() if isinstance(m, torch.nn.Embedding)}
    assert tables == _embeddings_named(diagrams.BERT_INPUT_NAMES, model)   # the rows drawn are the model's tables
    assert len(boxes) == len(tables) * T + 3                                 # 3 rows of T boxes, sum, norm, encoder
    assert f"default: {BertConfig.num_hidden_layers} layers" in "\n".join(shown)
    plt.close(fig)
    # what the boxes compute: the three embeddings summed, then LayerNorm (and dropout, off in eval mode)
    ids = torch.tensor([[i % 16 for i in encoded["input_ids"]]])
    segments = torch.tensor([encoded["token_type_ids"]])
    with torch.no_grad():
        summed = (model.word_embeddings(ids) + model.token_type_embeddings(segments)
                  + model.position_embeddings(torch.arange(T)))
        assert torch.allclose(model.embed(ids, segments), model.embeddings_norm(summed), atol=1e-6)
        # the encoder has no causal mask: the first position sees a change at the last one
        changed = ids.clone()
        changed[0, -1] = (changed[0, -1] + 1) % 16
        first, second = model(ids, segments).last_hidden_state, model(changed, segments).last_hidden_state
        assert not torch.allclose(first[0, 0], second[0, 0])


# --- readability ------------------------------------------------------------------------------

def _layout_problems(fig) -> list[str]:
    """Text outside the figure, text over text, a line or arrow through text, text across a box's edge."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    boxes = [(p, p.get_window_extent(renderer)) for ax in fig.axes for p in ax.patches
             if isinstance(p, FancyBboxPatch)]
    # glyph boxes include some empty space: compare slightly shrunk extents
    extents = [t.get_window_extent(renderer).shrunk(0.97, 0.85) for t in texts]
    problems = []
    for text, e in zip(texts, extents):
        if not (e.x0 >= 0 and e.y0 >= 0 and e.x1 <= fig.bbox.x1 and e.y1 <= fig.bbox.y1):
            problems.append(f"outside the figure: {text.get_text()!r}")
        for _, b in boxes:
            inside = b.x0 <= e.x0 and e.x1 <= b.x1 and b.y0 <= e.y0 and e.y1 <= b.y1
            if e.overlaps(b) and not inside:
                problems.append(f"across a box's edge: {text.get_text()!r}")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if extents[i].overlaps(extents[j]):
                problems.append(f"text over text: {texts[i].get_text()!r} and {texts[j].get_text()!r}")
    polylines = []
    for ax in fig.axes:
        polylines += [line.get_transform().transform(line.get_xydata()) for line in ax.lines]
        polylines += [ax.transData.transform(v) for p in ax.patches if isinstance(p, FancyArrowPatch)
                      for v in p.get_path().to_polygons(closed_only=False)]
    for points in polylines:
        for a, b in zip(points[:-1], points[1:]):
            for s in np.linspace(0, 1, 40):
                x, y = a + s * (b - a)
                problems += [f"a line through {t.get_text()!r}" for t, e in zip(texts, extents) if e.contains(x, y)]
    return sorted(set(problems))


def test_no_text_collides(drawn):
    name, fig = drawn
    assert _layout_problems(fig) == [], name


def test_the_collision_check_catches_collisions():
    fig = plt.figure(figsize=(4, 3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 40)
    ax.set_ylim(0, 30)
    ax.text(5, 5, "attention weights")
    ax.text(7, 5.2, "overlapping text")
    ax.text(5, 20, "crossed out")
    ax.plot([4, 20], [20.5, 20.5])
    ax.add_patch(FancyBboxPatch((30, 10), 5, 5, boxstyle="round,pad=0"))
    ax.text(29, 12, "spills over")
    ax.text(38, 28, "cut off at the edge")
    found = "\n".join(_layout_problems(fig))
    for expected in ("text over text", "a line through 'crossed out'", "across a box's edge: 'spills over'",
                     "outside the figure: 'cut off at the edge'"):
        assert expected in found
    plt.close(fig)
