"""Architecture diagrams drawn from code: the models of notebooks 01 to 04, box by box.

- :func:`attention_rnn_decoder`: the notes' translation figure and its dashed box (虚线框): a
  bidirectional GRU encoder reads 我 爱 你 into h₁, h₂, h₃; the decoder, holding q₂ = s₂ after
  writing "love", scores every h_i, turns the scores into weights a_i, forms the context
  c = Σ a_i h_i and feeds it with "love" into its RNN cell, which writes "you"
  (:class:`course_lib.gru_translator.AttentionGRUTranslator`);
- :func:`transformer`: the encoder-decoder Transformer of notebook 02
  (:class:`course_lib.encoder_decoder.EncoderDecoder`);
- :func:`gpt`: the GPT of notebook 03 (:class:`course_lib.gpt.GPT`), h₀ = U W_e + W_p, the pre-norm
  blocks, ln_f and the output layer tied to W_e, with the fine-tuning head W_y
  (:class:`course_lib.gpt.GPTForClassification`);
- :func:`bert_input`: BERT's input representation for notebook 04 (:meth:`course_lib.bert.BertModel.embed`):
  token + segment + position embeddings of ``[CLS] my dog is cute [SEP] he likes play ##ing [SEP]``.

Each box names, in grey monospace, the ``course_lib`` code that computes it; ``ATTENTION_RNN_NAMES``,
``TRANSFORMER_NAMES``, ``GPT_NAMES`` and ``BERT_INPUT_NAMES`` list those names with the object each
one means (the tests resolve
every one, so a renamed class breaks a test instead of leaving a diagram that lies). Each
function returns a new pyplot Figure, 10 inches wide (a notebook's width); in a notebook end
the line with ``;`` or call ``plt.show()``, as for :mod:`course_lib.viz`'s figures.
"""

from __future__ import annotations

import inspect

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from . import viz  # noqa: F401  (importing viz registers the bundled Chinese font the labels need)
from .bert import BertConfig
from .encoder_decoder import EncoderDecoder
from .gpt import GPTConfig
from .tokenizers import WordPieceTokenizer

__all__ = ["attention_rnn_decoder", "transformer", "gpt", "bert_input", "ATTENTION_RNN_NAMES", "TRANSFORMER_NAMES",
           "GPT_NAMES", "BERT_INPUT_NAMES", "BERT_EXAMPLE"]

# Colours of the kinds of box (close to the Transformer paper's figure).
_ATTENTION, _FFN, _NORM, _EMBED, _OUTPUT, _RNN, _STATE = (
    "#fbd9b0", "#c9e4f6", "#f3eeb0", "#f6cfd8", "#ddd3f2", "#cfe9c8", "#ffffff")
_CODE = "#444444"  # the grey of the code names
_PANEL = "#f2f2f2"

# The code names each diagram shows -> what they name ("module.qualified.name" under course_lib;
# the last part may be an attribute that every instance has, e.g. the GRU cell of the model).
ATTENTION_RNN_NAMES = {
    "AttentionGRUTranslator.encode": "gru_translator.AttentionGRUTranslator.encode",
    "AttentionGRUTranslator.decode_step": "gru_translator.AttentionGRUTranslator.decode_step",
    "AdditiveScore": "attention.AdditiveScore",
    "attend": "attention.attend",
    "self.tgt_embed": "gru_translator.AttentionGRUTranslator.tgt_embed",
    "self.cell": "gru_translator.AttentionGRUTranslator.cell",
    "self.out": "gru_translator.AttentionGRUTranslator.out",
}

TRANSFORMER_NAMES = {
    "EncoderDecoder": "encoder_decoder.EncoderDecoder",
    "Encoder.embedding": "encoder_decoder.Encoder.embedding",
    "Decoder.embedding": "encoder_decoder.Decoder.embedding",
    "sinusoidal_positional_encoding": "transformer.sinusoidal_positional_encoding",
    "EncoderLayer": "transformer.EncoderLayer",
    "DecoderLayer": "transformer.DecoderLayer",
    "MultiHeadAttention": "attention.MultiHeadAttention",
    "FeedForward": "transformer.FeedForward",
    "self_attn": "transformer.EncoderLayer.self_attn",
    "cross_attn": "transformer.DecoderLayer.cross_attn",
    "ffn": "transformer.DecoderLayer.ffn",
    "norm1": "transformer.EncoderLayer.norm1",
    "norm2": "transformer.EncoderLayer.norm2",
    "norm3": "transformer.DecoderLayer.norm3",
    "padding_mask": "attention.padding_mask",
    "causal_mask": "attention.causal_mask",
    "Decoder.lm_head": "encoder_decoder.Decoder.lm_head",
    "EncoderDecoder.greedy_decode": "encoder_decoder.EncoderDecoder.greedy_decode",
}

GPT_NAMES = {
    "GPT": "gpt.GPT",
    "GPT.hidden_states": "gpt.GPT.hidden_states",
    "GPT.wte": "gpt.GPT.wte",
    "GPT.wpe": "gpt.GPT.wpe",
    "GPT.drop": "gpt.GPT.drop",
    "GPT.blocks": "gpt.GPT.blocks",
    "EncoderLayer": "transformer.EncoderLayer",
    "norm_first": "transformer.EncoderLayer.norm_first",
    "n_layer": "gpt.GPTConfig.n_layer",
    "MultiHeadAttention": "attention.MultiHeadAttention",
    "causal_mask": "attention.causal_mask",
    "FeedForward": "transformer.FeedForward",
    "self_attn": "transformer.EncoderLayer.self_attn",
    "ffn": "transformer.EncoderLayer.ffn",
    "norm1": "transformer.EncoderLayer.norm1",
    "norm2": "transformer.EncoderLayer.norm2",
    "GPT.ln_f": "gpt.GPT.ln_f",
    "GPT.lm_head": "gpt.GPT.lm_head",
    "GPTForClassification.head": "gpt.GPTForClassification.head",
}

BERT_INPUT_NAMES = {
    "WordPieceTokenizer.encode": "tokenizers.WordPieceTokenizer.encode",
    "BertModel.embed": "bert.BertModel.embed",
    "BertModel.word_embeddings": "bert.BertModel.word_embeddings",
    "BertModel.token_type_embeddings": "bert.BertModel.token_type_embeddings",
    "BertModel.position_embeddings": "bert.BertModel.position_embeddings",
    "BertModel.embeddings_norm": "bert.BertModel.embeddings_norm",
    "BertModel.embeddings_dropout": "bert.BertModel.embeddings_dropout",
    "BertModel.layers": "bert.BertModel.layers",
    "EncoderLayer": "transformer.EncoderLayer",
    "num_hidden_layers": "bert.BertConfig.num_hidden_layers",
}

# The BERT paper's input example (its figure 2): sentence A, sentence B, and a WordPiece vocabulary
# without "playing", so that the word splits into play ##ing as in the paper.
BERT_EXAMPLE = ("my dog is cute", "he likes playing")
_BERT_EXAMPLE_VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "my", "dog", "is", "cute", "he", "likes", "play",
                       "##ing")


# ---------------------------------------------------------------------------
# Drawing helpers: a canvas in tenths of an inch, boxes, arrows
# ---------------------------------------------------------------------------

def _canvas(width: float, height: float):
    """A figure ``width`` x ``height`` tenths of an inch, one axes filling it, in those units."""
    fig = plt.figure(figsize=(width / 10, height / 10))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def _box(ax, x: float, y: float, w: float, h: float, title: str, code: str | None = None,
         color: str = _STATE, fontsize: float = 8.5, middle: str | None = None, middle_size: float = 7.5) -> None:
    """A rounded box with lower-left corner (x, y): ``title`` in it, then ``middle`` (a second line of
    plain text or a formula, optional, ``middle_size`` points) and ``code`` (in grey monospace, optional) under it."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.8", facecolor=color,
                                edgecolor="#333333", linewidth=1.0, zorder=2))
    lines = [(title, {"fontsize": fontsize})]
    if middle is not None:
        lines.append((middle, {"fontsize": middle_size}))
    if code is not None:
        lines.append((code, {"fontsize": 7, "family": "monospace", "color": _CODE}))
    step = h / (len(lines) + 0.4)  # evenly spaced, a little more room at the top and bottom
    for k, (text, style) in enumerate(lines):
        ax.text(x + w / 2, y + h - step * (k + 0.7), text, ha="center", va="center", zorder=4, **style)


def _arrow(ax, start, end, color: str = "#333333", lw: float = 1.1) -> None:
    """A straight arrow from ``start`` to ``end`` (x, y), head at ``end``."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=color, lw=lw,
                                 shrinkA=0, shrinkB=0, zorder=3))


def _line(ax, points, color: str = "#333333", lw: float = 1.1) -> None:
    """A line through ``points`` [(x, y), ...], no head (the last piece of a path is an arrow)."""
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="butt", zorder=3)


def _note(ax, x: float, y: float, text: str, fontsize: float = 7.5, color: str = "#333333", **kw) -> None:
    ax.text(x, y, text, fontsize=fontsize, color=color, zorder=4, **kw)


def _panel(ax, x: float, y: float, w: float, h: float, edgecolor: str = "none", **kw) -> None:
    """A light grey background that groups boxes (drawn under them)."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=1.2", facecolor=_PANEL,
                                edgecolor=edgecolor, zorder=1, **kw))


# ---------------------------------------------------------------------------
# Notebook 01: the attention RNN decoder (the notes' dashed box)
# ---------------------------------------------------------------------------

def attention_rnn_decoder():
    """The notes' translation figure, as :class:`~course_lib.gru_translator.AttentionGRUTranslator`
    computes it: 我 爱 你 → I love you, at the step inside the notes' dashed box (虚线框).

    The decoder has written "I" and "love"; its state s₂ is the query q₂. The step
    (``AttentionGRUTranslator.decode_step``) scores every encoder state, s(h_i, q₂); softmax gives
    the weights a_i; the context is c = Σ a_i h_i; the GRU cell reads [embed("love"); c] and s₂ and
    gives s₃; a linear layer reads [s₃; c] and its softmax picks "you". Returns the Figure.
    """
    fig, ax = _canvas(100, 66)
    words = ("我", "爱", "你")
    h_x = (11.0, 25.0, 39.0)  # centres of the encoder states

    # --- the encoder (编码器), bottom
    _panel(ax, 2, 2, 96, 20)
    for x, word, i in zip(h_x, words, "₁₂₃"):
        ax.text(x, 4.6, word, ha="center", va="center", fontsize=12)
        _arrow(ax, (x, 6.4), (x, 9))
        _box(ax, x - 4.5, 9, 9, 6, f"h{i}", color=_RNN, fontsize=11)
    for left, right in zip(h_x, h_x[1:]):  # the two directions of the bidirectional GRU
        _arrow(ax, (left + 4.5, 13.6), (right - 4.5, 13.6))
        _arrow(ax, (right - 4.5, 10.4), (left + 4.5, 10.4))
    _note(ax, 50, 15.5, "编码器 encoder: a bidirectional GRU reads the source words", fontsize=8.5)
    _note(ax, 50, 11.6, "hᵢ = [→hᵢ ; ←hᵢ]: word i with the words on its left and on its right")
    _note(ax, 50, 8.2, "AttentionGRUTranslator.encode → H = [h₁, h₂, h₃], s₀", family="monospace", fontsize=7,
          color=_CODE)
    _note(ax, 50, 4.6, "(s₀, the decoder's first state, is made from the encoder's last states)", fontsize=7,
          color="#666666")

    # H = [h_1, h_2, h_3]: a bus above the encoder states, read by the scores and by the weighted sum
    bus = 19.0
    for x in h_x:
        _line(ax, [(x, 15), (x, bus)])
    _line(ax, [(h_x[0], bus), (86, bus)])
    _note(ax, 60, bus + 0.6, "H = [h₁, h₂, h₃]", fontsize=8)

    _note(ax, 2.5, 62, "注意力机制 attention in an RNN translator", fontsize=12)
    _note(ax, 2.5, 58.6, "我 爱 你 → I love you", fontsize=9)

    # --- the earlier decoder steps, top left (grey: they ran the same step)
    grey = "#888888"
    for x, state, word in ((5, "s₁", "I"), (18, "s₂", "love")):
        _box(ax, x, 38, 8, 6, state, color=_STATE, fontsize=10)
        _arrow(ax, (x + 4, 44), (x + 4, 48.5), color=grey)
        ax.text(x + 4, 50.5, word, ha="center", va="center", fontsize=11, color=grey)
    _arrow(ax, (13, 41), (18, 41), color=grey)
    _note(ax, 3.5, 34.5, "earlier steps: s₀ → s₁ → s₂", fontsize=7.5, color=grey)

    # --- the dashed box: one decoder step (AttentionGRUTranslator.decode_step)
    ax.add_patch(FancyBboxPatch((30, 24), 68, 37, boxstyle="round,pad=0,rounding_size=1.2", facecolor="none",
                                edgecolor="#333333", linewidth=1.3, linestyle=(0, (5, 3)), zorder=1))
    _note(ax, 31.5, 58.2, "虚线框 the notes' dashed box: one decoder step, t = 3", fontsize=8.5)
    _note(ax, 31.5, 55.3, "AttentionGRUTranslator.decode_step", family="monospace", fontsize=7, color=_CODE)

    # the query q_2 = s_2 enters from the left: to the scores, and as the GRU's state
    _line(ax, [(26, 41), (36, 41)])
    _arrow(ax, (36, 41), (36, 35))
    _arrow(ax, (36, 41), (64, 41))
    _note(ax, 37, 37.2, "查询向量 query q₂ = s₂", fontsize=7.5)

    # attention: scores -> softmax -> context (row at y 27..35)
    _box(ax, 32, 27, 19, 8, "打分 scores s(hᵢ, q₂)", "AdditiveScore (default)", color=_ATTENTION, fontsize=8)
    _box(ax, 55, 27, 15, 8, "softmax → aᵢ", "attend", color=_ATTENTION, fontsize=8, middle="注意力分布")
    _box(ax, 74, 27, 22, 8, "context c = Σ aᵢhᵢ", "attend", color=_ATTENTION, fontsize=8,
         middle="上下文向量, 加权求和")
    _arrow(ax, (51, 31), (55, 31))
    _arrow(ax, (70, 31), (74, 31))
    _arrow(ax, (41.5, bus), (41.5, 27))  # H into the scores ...
    _arrow(ax, (86, bus), (86, 27))      # ... and into the weighted sum

    # the RNN cell reads [embed(love); c] and s_2; the output layer reads [s_3; c]
    _box(ax, 64, 38, 18, 7, "RNN 单元 GRU cell → s₃", "self.cell", color=_RNN, fontsize=8)
    _arrow(ax, (76, 35), (76, 38))
    _note(ax, 76.8, 35.6, "c", fontsize=8)
    _box(ax, 36, 44.5, 22, 9, "embed(\"love\")", "self.tgt_embed", color=_EMBED, fontsize=8,
         middle="上一时刻输出 the previous output")
    _arrow(ax, (25.5, 50.5), (36, 50.5), color=grey)  # "love", the previous output, embedded ...
    _line(ax, [(58, 49), (68, 49)])                    # ... into the cell
    _arrow(ax, (68, 49), (68, 45))
    _box(ax, 72, 48, 24, 7, "linear [s₃; c] → softmax", "self.out", color=_OUTPUT, fontsize=8)
    _arrow(ax, (76, 45), (76, 48))
    _line(ax, [(94, 35), (94, 48)])
    _arrow(ax, (94, 46.5), (94, 48))
    _note(ax, 94.8, 41.0, "c", fontsize=8)
    _arrow(ax, (84, 55), (84, 62.5))
    ax.text(85.5, 63.2, "you", ha="left", va="center", fontsize=12)
    return fig


# ---------------------------------------------------------------------------
# Notebook 02: the encoder-decoder Transformer
# ---------------------------------------------------------------------------

def transformer():
    """The encoder-decoder Transformer of notebook 02
    (:class:`~course_lib.encoder_decoder.EncoderDecoder`), each box named by the code that computes it.

    Encoder (编码器): token embedding × √d + positional encoding, then N encoder layers, each
    multi-head self-attention and a feed-forward network, both followed by Add & Norm; its output
    is C. Decoder (解码器): the same embedding of the English words so far, then N decoder layers
    (masked multi-head self-attention, cross-attention with Q from the decoder and K, V from C, a
    feed-forward network, each followed by Add & Norm), then a linear layer and softmax over the
    English vocabulary. Returns the Figure.
    """
    fig, ax = _canvas(100, 96)
    enc_x, dec_x, w = 11.0, 57.0, 32.0  # left edges and width of the two columns' boxes

    def add_and_norm(x, y, code):
        _box(ax, x, y, w, 5.5, "Add & Norm 残差连接与层归一化", code, color=_NORM, fontsize=8)

    def residual(x, y0, y1):
        """The skip connection: from below a sub-layer, around its left side, into its Add & Norm."""
        _line(ax, [(x + 3, y0), (x - 2.5, y0), (x - 2.5, y1)], color="#555555")
        _arrow(ax, (x - 2.5, y1), (x, y1), color="#555555")

    # --- inputs and embeddings (bottom)
    ax.text(enc_x + w / 2, 2.5, "source words 我 爱 你", ha="center", va="center", fontsize=9)
    ax.text(dec_x + w / 2, 2.5, "English so far: <bos> I love (shifted right)", ha="center", va="center",
            fontsize=9)
    for x, name in ((enc_x, "Encoder.embedding"), (dec_x, "Decoder.embedding")):
        _arrow(ax, (x + w / 2, 4.2), (x + w / 2, 6.5))
        _box(ax, x, 6.5, w, 6.5, "词嵌入 token embedding × √d", name, color=_EMBED, fontsize=8)
        _arrow(ax, (x + w / 2, 13), (x + w / 2, 16.5))
        _box(ax, x, 16.5, w, 6.5, "+ 位置编码 positional encoding", "sinusoidal_positional_encoding",
             color=_EMBED, fontsize=8)
        _arrow(ax, (x + w / 2, 23), (x + w / 2, 27.5))

    # --- the encoder layer (× N), left
    _panel(ax, enc_x - 4.5, 26, w + 9, 33.5, edgecolor="#777777")
    ax.text(enc_x - 5.5, 42.5, "× N", ha="right", va="center", fontsize=11)
    _box(ax, enc_x, 28, w, 7, "多头自注意力 multi-head self-attention", "MultiHeadAttention + padding_mask",
         color=_ATTENTION, fontsize=8)
    _arrow(ax, (enc_x + w / 2, 35), (enc_x + w / 2, 36.5))
    add_and_norm(enc_x, 36.5, "x = norm1(x + self_attn(x))")
    residual(enc_x, 27.0, 39.2)
    _arrow(ax, (enc_x + w / 2, 42), (enc_x + w / 2, 44))
    _box(ax, enc_x, 44, w, 7, "前馈网络 feed-forward", "FeedForward: linear, ReLU, linear", color=_FFN, fontsize=8)
    _arrow(ax, (enc_x + w / 2, 51), (enc_x + w / 2, 52.5))
    add_and_norm(enc_x, 52.5, "x = norm2(x + ffn(x))")
    residual(enc_x, 43.0, 55.2)
    _note(ax, enc_x - 4, 64, "编码器 encoder", fontsize=9.5)
    _note(ax, enc_x - 4, 60.8, "EncoderLayer × N", fontsize=7, family="monospace", color=_CODE)
    # its output C, up and over into every decoder layer's cross-attention
    _line(ax, [(enc_x + w / 2, 58), (enc_x + w / 2, 68), (49.5, 68), (49.5, 53.5)])
    _arrow(ax, (49.5, 53.5), (dec_x, 53.5))
    _note(ax, enc_x + w / 2 + 1.2, 64.5, "C: the encoder's output", fontsize=8)
    _note(ax, 50.2, 54.6, "K, V", fontsize=8)

    # --- the decoder layer (× N), right
    _panel(ax, dec_x - 4.5, 26, w + 9, 50.5, edgecolor="#777777")
    ax.text(dec_x + w + 5.5, 51, "× N", ha="left", va="center", fontsize=11)
    _box(ax, dec_x, 28, w, 7, "掩码多头自注意力 masked self-attention", "MultiHeadAttention + causal_mask",
         color=_ATTENTION, fontsize=8)
    _arrow(ax, (dec_x + w / 2, 35), (dec_x + w / 2, 36.5))
    add_and_norm(dec_x, 36.5, "x = norm1(x + self_attn(x))")
    residual(dec_x, 27.0, 39.2)
    _arrow(ax, (dec_x + w / 2, 42), (dec_x + w / 2, 44.5))
    _box(ax, dec_x, 44.5, w, 11, "编码器-解码器注意力 cross-attention", "MultiHeadAttention", color=_ATTENTION,
         fontsize=8, middle="Q from the decoder; K, V from C")
    _note(ax, dec_x + w / 2 + 0.8, 43.0, "Q", fontsize=8)
    _arrow(ax, (dec_x + w / 2, 55.5), (dec_x + w / 2, 57))
    add_and_norm(dec_x, 57, "x = norm2(x + cross_attn(x, C))")
    residual(dec_x, 43.3, 59.7)
    _arrow(ax, (dec_x + w / 2, 62.5), (dec_x + w / 2, 63.5))
    _box(ax, dec_x, 63.5, w, 6, "前馈网络 feed-forward", "FeedForward", color=_FFN, fontsize=8)
    _arrow(ax, (dec_x + w / 2, 69.5), (dec_x + w / 2, 70.5))
    add_and_norm(dec_x, 70.5, "x = norm3(x + ffn(x))")
    residual(dec_x, 62.9, 73.2)
    _note(ax, dec_x - 4, 80.8, "解码器 decoder", fontsize=9.5)
    _note(ax, dec_x - 4, 77.6, "DecoderLayer × N", fontsize=7, family="monospace", color=_CODE)

    # --- output: linear + softmax
    _arrow(ax, (dec_x + w / 2, 76), (dec_x + w / 2, 84))
    _box(ax, dec_x, 84, w, 6.5, "linear + softmax → P(next word)", "Decoder.lm_head, then softmax", color=_OUTPUT,
         fontsize=8)
    _arrow(ax, (dec_x + w / 2, 90.5), (dec_x + w / 2, 94.5))
    _note(ax, dec_x + w / 2 + 1.2, 93.5, "next word: \"you\"", fontsize=9, va="center")

    # --- the whole model, top left
    _note(ax, 3, 91.5, "Transformer 编码器-解码器", fontsize=12)
    _note(ax, 3, 88.2, "EncoderDecoder; translates with EncoderDecoder.greedy_decode", fontsize=7,
          family="monospace", color=_CODE)
    _note(ax, 3, 84.8, "post-norm, as in the notes: x = Norm(x + sublayer(x))", fontsize=7.5)
    layers = inspect.signature(EncoderDecoder).parameters["num_layers"].default
    _note(ax, 3, 81.8, f"N = num_layers (EncoderDecoder's default: {layers})", fontsize=7.5)
    return fig


# ---------------------------------------------------------------------------
# Notebook 03: GPT
# ---------------------------------------------------------------------------

def gpt():
    """The GPT of notebook 03 (:class:`~course_lib.gpt.GPT`), each box named by the code that computes it.

    The notes' formulas, bottom to top: h₀ = U W_e + W_p (token embedding ``wte`` plus position
    embedding ``wpe``, then dropout); h_l = transformer_block(h_{l-1}) for l = 1 … n_layer, each block
    pre-norm (GPT-2's arrangement): LayerNorm, masked multi-head self-attention, residual add,
    LayerNorm, feed-forward, residual add; a final LayerNorm ``ln_f`` gives h_n; the output layer
    ``lm_head`` is W_e itself (tied), so P(u) = softmax(h_n W_eᵀ). On the right, supervised
    fine-tuning (:class:`~course_lib.gpt.GPTForClassification`): a linear layer W_y on the last
    token's state, P(y | x¹ … xᵐ) = softmax(h_lᵐ W_y). Returns the Figure.
    """
    fig, ax = _canvas(100, 118)
    x0, w = 26.0, 32.0   # the main column: left edge, width
    mid = x0 + w / 2

    def residual(y0, y1):
        """The skip connection: from the stream below a LayerNorm, around the left, into the add."""
        _line(ax, [(mid, y0), (x0 - 2.5, y0), (x0 - 2.5, y1)], color="#555555")
        _arrow(ax, (x0 - 2.5, y1), (x0, y1), color="#555555")

    # --- the whole model, top left
    _note(ax, 3, 113, "OpenAI GPT: 多层单向 Transformer", fontsize=12)
    _note(ax, 3, 109.4, "GPT(GPTConfig(...)); GPT.hidden_states gives hₙ", fontsize=7, family="monospace",
          color=_CODE)
    layers = GPTConfig.n_layer  # the dataclass field's default
    _note(ax, 3, 106.0, f"n = n_layer blocks (GPTConfig's default: {layers})", fontsize=7.5)

    # --- input tokens, embeddings, their sum (bottom)
    ax.text(mid - 14, 2.5, "tokens U = u₁ u₂ u₃ …", ha="center", va="center", fontsize=9)
    ax.text(mid + 14, 2.5, "positions 0 1 2 …", ha="center", va="center", fontsize=9)
    for cx, title, code in ((mid - 14, "词嵌入 token embedding Wₑ", "GPT.wte"),
                            (mid + 14, "位置嵌入 position embedding Wₚ", "GPT.wpe (learned)")):
        _arrow(ax, (cx, 4.2), (cx, 6.5))
        _box(ax, cx - 13.5, 6.5, 27, 6.5, title, code, color=_EMBED, fontsize=8)
        _arrow(ax, (cx, 13), (cx, 16.5))
    _box(ax, mid - 17, 16.5, 34, 9, r"$h_0 = U W_e + W_p$", "GPT.drop", color=_EMBED, fontsize=9.5,
         middle="相加 sum, then dropout")
    _arrow(ax, (mid, 25.5), (mid, 31))
    _note(ax, mid + 19, 22.2, "U: the tokens as one-hot rows (U Wₑ picks rows of Wₑ)", fontsize=7.5)
    _note(ax, mid + 19, 19.4, "Wₚ: one learned vector per position, up to block_size", fontsize=7.5)

    # --- one block (× n_layer): pre-norm
    _panel(ax, x0 - 5.5, 28, w + 11, 53.5, edgecolor="#777777")
    ax.text(x0 - 7, 54.5, "× n", ha="right", va="center", fontsize=11)
    _box(ax, x0, 31, w, 5, "层归一化 LayerNorm", "norm1", color=_NORM, fontsize=8)
    _arrow(ax, (mid, 36), (mid, 38))
    _box(ax, x0, 38, w, 7, "掩码多头自注意力 masked self-attention", "MultiHeadAttention + causal_mask",
         color=_ATTENTION, fontsize=8)
    _arrow(ax, (mid, 45), (mid, 47))
    _box(ax, x0, 47, w, 5.5, "+ 残差连接 residual", "x = x + self_attn(norm1(x))", color=_STATE, fontsize=8)
    residual(29.5, 49.75)
    _arrow(ax, (mid, 52.5), (mid, 56.5))
    _box(ax, x0, 56.5, w, 5, "层归一化 LayerNorm", "norm2", color=_NORM, fontsize=8)
    _arrow(ax, (mid, 61.5), (mid, 63.5))
    _box(ax, x0, 63.5, w, 7, "前馈网络 feed-forward", "FeedForward: linear, GELU, linear", color=_FFN, fontsize=8)
    _arrow(ax, (mid, 70.5), (mid, 72.5))
    _box(ax, x0, 72.5, w, 5.5, "+ 残差连接 residual", "x = x + ffn(norm2(x))", color=_STATE, fontsize=8)
    residual(54.5, 75.25)
    _arrow(ax, (mid, 78), (mid, 85))

    # the block's formula and code, right of the panel
    _note(ax, 64, 62, r"$h_l = \mathrm{transformer\_block}(h_{l-1}),\ l = 1 \ldots n$", fontsize=9.5)
    _note(ax, 64, 58.6, "GPT.blocks: EncoderLayer(norm_first=True)", fontsize=7, family="monospace", color=_CODE)
    _note(ax, 64, 54.8, "预归一化 pre-norm (GPT-2): each sub-layer reads", fontsize=7.5)
    _note(ax, 64, 52.2, "LayerNorm(x) and adds its result to x", fontsize=7.5)
    _note(ax, 64, 47.8, "单向 one-directional: the causal mask lets", fontsize=7.5)
    _note(ax, 64, 45.2, "position t attend to positions ≤ t only", fontsize=7.5)

    # --- final LayerNorm, the tied output layer, P(u)
    _box(ax, x0, 85, w, 6, "最后的层归一化 final LayerNorm → hₙ", "GPT.ln_f", color=_NORM, fontsize=8)
    _arrow(ax, (mid, 91), (mid, 97))
    _box(ax, x0, 97, w, 10, "linear, weight tied to Wₑ → softmax", "GPT.lm_head", color=_OUTPUT, fontsize=8,
         middle=r"$P(u) = \mathrm{softmax}(h_n W_e^T)$", middle_size=9)
    _arrow(ax, (mid, 107), (mid, 111.5))
    _note(ax, mid + 1.2, 110.2, "P(next token)", fontsize=9, va="center")
    # the tie: lm_head's weight IS wte's weight (one tensor)
    tied = "#8a6d9e"
    _line(ax, [(x0, 102), (4.5, 102), (4.5, 9.75)], color=tied, lw=1.0)
    _arrow(ax, (4.5, 9.75), (mid - 27.5, 9.75), color=tied, lw=1.0)
    ax.text(3.2, 56, "同一矩阵 tied: the output layer's weight is Wₑ (one tensor)", rotation=90, ha="center",
            va="center", fontsize=7.5, color=tied, zorder=4)

    # --- supervised fine-tuning: W_y on the last token's h (right)
    _line(ax, [(mid, 94), (81, 94)])
    _arrow(ax, (81, 94), (81, 97))
    _note(ax, 60.5, 95.0, r"last token's $h_l^m$", fontsize=7.5)
    _box(ax, 65, 97, 32, 10, "有监督的微调 fine-tuning: a linear layer", "GPTForClassification.head", color=_OUTPUT,
         fontsize=8, middle=r"$P(y \mid x^1 \ldots x^m) = \mathrm{softmax}(h_l^m W_y)$", middle_size=9)
    _arrow(ax, (81, 107), (81, 111.5))
    _note(ax, 82.2, 110.2, "P(label)", fontsize=9, va="center")
    _note(ax, 65, 90.6, r"$L_3 = L_2 + \lambda L_1$: the class loss plus", fontsize=7.5)
    _note(ax, 65, 87.8, "λ × the language-model loss L₁", fontsize=7.5)
    return fig


# ---------------------------------------------------------------------------
# Notebook 04: BERT's input representation
# ---------------------------------------------------------------------------

def _bert_example() -> tuple[list[str], list[int]]:
    """The tokens and segment ids (0 = A, 1 = B) of :data:`BERT_EXAMPLE`, as
    :meth:`~course_lib.tokenizers.WordPieceTokenizer.encode` makes them."""
    tokenizer = WordPieceTokenizer(list(_BERT_EXAMPLE_VOCAB))
    encoded = tokenizer.encode(*BERT_EXAMPLE)
    return [tokenizer.itos[i] for i in encoded["input_ids"]], encoded["token_type_ids"]


def _math_sub(base: str, sub: str) -> str:
    """``base`` with subscript ``sub`` in mathtext, upright, e.g. E_[CLS] or E_##ing."""
    rest = sub.lstrip("#")
    hashes = "\\#" * (len(sub) - len(rest))  # a WordPiece continuation: ##ing
    return f"${base}_{{{hashes}\\mathrm{{{rest}}}}}$"


def bert_input():
    """BERT's input representation (输入表示) for notebook 04, as
    :meth:`~course_lib.bert.BertModel.embed` computes it, on the BERT paper's example pair.

    The pair "my dog is cute" / "he likes playing" is tokenised by
    :meth:`~course_lib.tokenizers.WordPieceTokenizer.encode` (a vocabulary without "playing", so the
    word splits into play ##ing): ``[CLS] my dog is cute [SEP] he likes play ##ing [SEP]``. Each token
    gets three learned embeddings: its token embedding, its segment embedding (E_A for sentence A,
    E_B for sentence B) and its position embedding (E_0, E_1, ...); they are added, then LayerNorm
    and dropout, and the sum goes into the bidirectional encoder. Returns the Figure.
    """
    tokens, segments = _bert_example()
    n = len(tokens)
    fig, ax = _canvas(100, 86)
    left, pitch = 27.0, 71.0 / n          # the token columns: first left edge, spacing
    bw = pitch - 0.7                      # width of one embedding box
    cx = [left + pitch * (i + 0.5) for i in range(n)]

    # --- the title, top left
    _note(ax, 2.5, 81.5, "BERT 的输入表示 input representation", fontsize=12)
    _note(ax, 2.5, 77.6, f"sentence A: \"{BERT_EXAMPLE[0]}\",  sentence B: \"{BERT_EXAMPLE[1]}\"", fontsize=8.5)
    _note(ax, 2.5, 74.4, "(the BERT paper's example; \"playing\" is split into WordPiece pieces)", fontsize=7.5,
          color="#666666")

    # --- the rows, bottom to top: input tokens, token, segment and position embeddings
    rows = (("输入 input", "WordPieceTokenizer.encode", 5.4),
            ("词嵌入 token embeddings", "BertModel.word_embeddings", 12.0),
            ("句子嵌入 segment embeddings", "BertModel.token_type_embeddings", 21.5),
            ("位置嵌入 position embeddings", "BertModel.position_embeddings", 31.0))
    for title, code, y in rows:
        _note(ax, 2.5, y + 0.9, title, fontsize=8.5, va="center")
        _note(ax, 2.5, y - 1.6, code, fontsize=7, family="monospace", color=_CODE, va="center")
    row_y = {"token": 9.0, "segment": 18.5, "position": 28.0}   # lower edges; each row 6 high
    for i, (x, token, segment) in enumerate(zip(cx, tokens, segments)):
        ax.text(x, 5.1, token, ha="center", va="center", fontsize=8.5)
        _arrow(ax, (x, 6.7), (x, row_y["token"]))
        for kind, label in (("token", _math_sub("E", token)), ("segment", _math_sub("E", "AB"[segment])),
                            ("position", _math_sub("E", str(i)))):
            _box(ax, x - bw / 2, row_y[kind], bw, 6, label, color=_EMBED, fontsize=9)
        for y in (row_y["segment"] - 1.75, row_y["position"] - 1.75):
            ax.text(x, y, "+", ha="center", va="center", fontsize=10)
        _arrow(ax, (x, row_y["position"] + 6), (x, 38.5))

    # --- the sum, LayerNorm and dropout, the encoder
    span = (left + 0.35, 71.0 - 0.7)
    _box(ax, span[0], 38.5, span[1], 7, "相加 sum: token + segment + position, one vector per token",
         "BertModel.embed", color=_EMBED, fontsize=8.5)
    _arrow(ax, (left + 35.5, 45.5), (left + 35.5, 49))
    _box(ax, span[0], 49, span[1], 7, "层归一化 LayerNorm, then dropout",
         "BertModel.embeddings_norm, then BertModel.embeddings_dropout", color=_NORM, fontsize=8.5)
    _arrow(ax, (left + 35.5, 56), (left + 35.5, 59.5))
    layers = BertConfig.num_hidden_layers  # the dataclass field's default
    _box(ax, span[0], 59.5, span[1], 10, "BERT 编码器: 不经过 mask 的多层双向 Transformer", color=_ATTENTION, fontsize=8.5,
         middle=f"no causal mask: every token attends to every token; BertConfig's default: {layers} layers",
         code="BertModel.layers: EncoderLayer × num_hidden_layers")
    # what the rows are, left of the sum
    _note(ax, 2.5, 51.5, "every input vector is the sum of", fontsize=7.5)
    _note(ax, 2.5, 48.9, "three learned embeddings (三者相加):", fontsize=7.5)
    _note(ax, 2.5, 45.5, f"${_math_sub('E', 'A')[1:-1]}$, ${_math_sub('E', 'B')[1:-1]}$: sentence A (segment 0), B (1)",
          fontsize=7.5)
    _note(ax, 2.5, 42.1, f"${_math_sub('E', '0')[1:-1]} \\ldots {_math_sub('E', str(n - 1))[1:-1]}$: one per position",
          fontsize=7.5)
    _note(ax, 2.5, 39.1, f"(BertConfig allows {BertConfig.max_position_embeddings} positions)", fontsize=7.5)
    return fig
