"""The Transformer of the notes: positional encoding, encoder and decoder layers, the full model.

The notes describe machine translation with an encoder and a decoder:

- encoder (编码器): from the word-embedding matrix X, linear maps give Q, K, V and
  Z = Attention(Q, K, V) = softmax(QK^T / sqrt(d_k)) V; then "Add" (a residual connection, 残差连接)
  and "Norm" (layer normalisation), then "Feed Forward" (two fully connected layers, 两层全连接层),
  again with Add & Norm: :class:`EncoderLayer`.
- decoder (解码器): the first self-attention is one-directional (masked, so position t sees only
  positions <= t); the second takes K, V from the encoder output C and Q from the decoder:
  :class:`DecoderLayer`.

Attention itself lives in :mod:`course_lib.attention` (:class:`MultiHeadAttention`); this module
only arranges it. Word order enters through :func:`sinusoidal_positional_encoding`.

Shapes: B batch, S source length, T target length, h heads, d model width, V vocabulary size.
Masks are boolean and **True means "may attend"**. Each layer keeps its latest attention weights
(detached) for visualisation; :meth:`EncoderDecoder.attention_maps` collects them.

Where the "Norm" goes: by default the layers are *post-norm*, as in the notes and the 2017
paper, ``x = norm(x + sublayer(x))``. With ``norm_first=True`` they are *pre-norm*, as in GPT-2,
``x = x + sublayer(norm(x))``: the residual path then passes through no LayerNorm at all, which
makes deep stacks easier to train (often without a learning-rate warm-up). As nothing normalises
the last layer's output, a pre-norm :class:`Encoder` / :class:`Decoder` ends with one more
LayerNorm, ``final_norm`` (GPT-2's ``ln_f``, the ``norm`` of ``torch.nn.TransformerEncoder``).

Inputs are checked once, where they enter: each module's ``forward`` checks, then runs its
``forward_unchecked``, which the enclosing layer, stack or model calls directly.

Given the same weights and dropout 0, :class:`EncoderLayer` and :class:`DecoderLayer` equal
``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer(batch_first=True,
norm_first=..., activation="relu")`` with the same ``norm_first`` (see ``tests/test_transformer.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _checks
from .attention import MultiHeadAttention, causal_mask, padding_mask
from .training import evaluating

__all__ = [
    "sinusoidal_positional_encoding",
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "Encoder",
    "Decoder",
    "EncoderDecoder",
    "to_torch",
    "ACTIVATIONS",
    "init_normal",
]


# ---------------------------------------------------------------------------
# Positional encoding and feed-forward
# ---------------------------------------------------------------------------

def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The sine / cosine position table of "Attention Is All You Need".

    PE[p, 2i] = sin(p / 10000^(2i/d)),  PE[p, 2i+1] = cos(p / 10000^(2i/d)).

    Each pair of columns is a rotation at its own frequency, from one turn every 2*pi positions
    (i = 0) to one every 10000 * 2*pi; so every position gets a distinct code, and PE[p + k] is a
    linear function of PE[p] for a fixed offset k.

    Args:
        max_len: number of positions (rows).
        d_model: width d. An odd d is allowed: the last column is a sine without its cosine.

    Returns:
        (max_len, d_model) float32 tensor with values in [-1, 1].
    """
    _checks.check_positive_int("max_len", max_len)
    _checks.check_positive_int("d_model", d_model)
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # 2i = 0, 2, 4, ...; ceil(d/2) values
    # Computed in float64 so that the angles of large positions keep their digits.
    angle = position / torch.pow(10000.0, two_i / d_model)  # (max_len, ceil(d/2))
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])  # odd d: one fewer cosine column
    return pe.float()


# The nonlinearity between the two layers: ReLU in the 2017 paper; GELU in BERT; GELU's tanh
# approximation in GPT-2 (its "gelu_new"). Same names as torch.nn.functional.gelu's "approximate".
ACTIVATIONS = {
    "relu": torch.relu,
    "gelu": nn.functional.gelu,
    "gelu_tanh": lambda x: nn.functional.gelu(x, approximate="tanh"),
}


class FeedForward(nn.Module):
    """The position-wise feed-forward network, "two fully connected layers" (两层全连接层).

    FFN(x) = linear2(dropout(act(linear1(x)))), applied to every position separately;
    act = ReLU as in the paper, i.e. FFN(x) = max(0, xW_1 + b_1)W_2 + b_2.

    Args:
        d_model: input and output width d.
        d_ff: hidden width (the paper uses 4 * d).
        dropout: dropout on the hidden activations during training.
        activation: "relu" (default), "gelu" (BERT) or "gelu_tanh" (GPT-2).
        bias: whether the two linear layers have biases.

    Shapes: x (..., d_model) -> (..., d_model).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu",
                 bias: bool = True):
        super().__init__()
        _checks.check_positive_int("d_model", d_model)
        _checks.check_positive_int("d_ff", d_ff)
        _checks.check_probability("dropout", dropout)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.linear1.in_features
        _checks.check_stream("x", x, d, f"(..., d_model={d})", dim=None)
        return self.forward_unchecked(x)

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without the input check, for layers that checked x once."""
        return self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x))))


# ---------------------------------------------------------------------------
# Encoder and decoder layers
# ---------------------------------------------------------------------------

class EncoderLayer(nn.Module):
    """One encoder layer: self-attention, then feed-forward, each followed by "Add & Norm".

        x = norm1(x + dropout1(self_attn(x, x, x, mask)))
        x = norm2(x + dropout2(ffn(x)))

    This is the post-norm arrangement of the paper and the notes: the residual ("Add") lets
    each sub-layer learn only a correction, and LayerNorm ("Norm") keeps every position's
    activations at zero mean and unit variance, which speeds up training.

    With ``norm_first=True`` (pre-norm, GPT-2 style) each sub-layer reads a normalised copy
    and adds its result to the un-normalised stream:

        x = x + dropout1(self_attn(norm1(x), norm1(x), norm1(x), mask))
        x = x + dropout2(ffn(norm2(x)))

    After each forward, ``self.attn_weights`` holds that call's attention weights, detached,
    shape (B, h, T, T), for visualisation (``None`` before the first call).

    Args:
        d_model: width d; divisible by num_heads.
        num_heads: h.
        d_ff: hidden width of the feed-forward network.
        dropout: on the attention weights, inside the feed-forward, and on each residual branch.
        norm_first: False (default) for post-norm, True for pre-norm.
        activation: of the feed-forward network, see :class:`FeedForward`.
        bias: biases in every linear layer and LayerNorm (GPT-style models may drop them).
        layer_norm_eps: the LayerNorms' epsilon.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", bias: bool = True,
                 layer_norm_eps: float = 1e-5):
        super().__init__()
        _checks.check_probability("dropout", dropout)
        _checks.check_bool("norm_first", norm_first)
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation=activation, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.d_model, self.num_heads = d_model, num_heads
        self.attn_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, d); mask bool broadcastable to (B, h, T, T), e.g. a padding mask (B, 1, 1, T).

        Returns (B, T, d).
        """
        _checks.check_stream("x", x, self.d_model, f"(B, T, d_model) with d_model={self.d_model}")
        if mask is not None:
            B, T, _ = x.shape
            _checks.check_mask(mask, (B, self.num_heads, T, T), "(B, h, T, T)")
        return self.forward_unchecked(x, mask)

    def forward_unchecked(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` without the input checks, for a stack that checked its input once."""
        # the inputs are checked already: the sub-layers take their unchecked paths
        self_attn, ffn = self.self_attn.forward_unchecked, self.ffn.forward_unchecked
        if self.norm_first:
            normed = self.norm1(x)
            attn_out, weights = self_attn(normed, normed, normed, mask)  # (B, T, d), (B, h, T, T)
            self.attn_weights = weights.detach()
            x = x + self.dropout1(attn_out)
            return x + self.dropout2(ffn(self.norm2(x)))
        attn_out, weights = self_attn(x, x, x, mask)  # (B, T, d), (B, h, T, T)
        self.attn_weights = weights.detach()
        x = self.norm1(x + self.dropout1(attn_out))
        x = self.norm2(x + self.dropout2(ffn(x)))
        return x


class DecoderLayer(nn.Module):
    """One decoder layer: masked self-attention, cross-attention, feed-forward, each with Add & Norm.

        x = norm1(x + dropout1(self_attn(x, x, x, tgt_mask)))               # sees positions <= t
        x = norm2(x + dropout2(cross_attn(x, memory, memory, src_mask)))    # Q from x, K, V from C
        x = norm3(x + dropout3(ffn(x)))

    In cross-attention each target position asks "which source words matter for me now?": its
    query comes from the decoder stream, the keys and values from the encoder output C (``memory``).

    With ``norm_first=True`` (pre-norm) each sub-layer reads a normalised copy of the stream
    (``memory`` is used as given: a pre-norm encoder has already normalised it):

        x = x + dropout1(self_attn(norm1(x), norm1(x), norm1(x), tgt_mask))
        x = x + dropout2(cross_attn(norm2(x), memory, memory, src_mask))
        x = x + dropout3(ffn(norm3(x)))

    After each forward, ``self.self_attn_weights`` (B, h, T, T) and ``self.cross_attn_weights``
    (B, h, T, S) hold that call's attention weights, detached (``None`` before the first call).

    Args: as :class:`EncoderLayer`.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False):
        super().__init__()
        _checks.check_probability("dropout", dropout)
        _checks.check_bool("norm_first", norm_first)
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.d_model, self.num_heads = d_model, num_heads
        self.self_attn_weights: torch.Tensor | None = None
        self.cross_attn_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                tgt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, d): the target stream; memory (B, S, d): the encoder output C.

        src_mask: bool broadcastable to (B, h, T, S), usually the source padding mask (B, 1, 1, S).
        tgt_mask: bool broadcastable to (B, h, T, T), usually causal & padding (B, 1, T, T).
        Returns (B, T, d).
        """
        _checks.check_stream("x", x, self.d_model, f"(B, T, d_model) with d_model={self.d_model}")
        _check_memory_and_masks("x", x, memory, src_mask, tgt_mask, self.d_model, self.num_heads)
        return self.forward_unchecked(x, memory, src_mask, tgt_mask)

    def forward_unchecked(self, x: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                          tgt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` without the input checks, for a :class:`Decoder` that checked its input once."""
        # the inputs are checked already: the sub-layers take their unchecked paths
        self_attn, cross_attn, ffn = (self.self_attn.forward_unchecked, self.cross_attn.forward_unchecked,
                                      self.ffn.forward_unchecked)
        if self.norm_first:
            normed = self.norm1(x)
            attn_out, weights = self_attn(normed, normed, normed, tgt_mask)  # (B, T, d), (B, h, T, T)
            self.self_attn_weights = weights.detach()
            x = x + self.dropout1(attn_out)
            attn_out, weights = cross_attn(self.norm2(x), memory, memory, src_mask)  # (B, T, d), (B, h, T, S)
            self.cross_attn_weights = weights.detach()
            x = x + self.dropout2(attn_out)
            return x + self.dropout3(ffn(self.norm3(x)))
        attn_out, weights = self_attn(x, x, x, tgt_mask)  # (B, T, d), (B, h, T, T)
        self.self_attn_weights = weights.detach()
        x = self.norm1(x + self.dropout1(attn_out))
        attn_out, weights = cross_attn(x, memory, memory, src_mask)  # (B, T, d), (B, h, T, S)
        self.cross_attn_weights = weights.detach()
        x = self.norm2(x + self.dropout2(attn_out))
        x = self.norm3(x + self.dropout3(ffn(x)))
        return x


def _check_memory_and_masks(x_name: str, x: torch.Tensor, memory, src_mask, tgt_mask, d_model: int,
                            num_heads: int) -> None:
    """A decoder's inputs beside its target x (B, T) or (B, T, d): memory (B, S, d) and both masks."""
    _checks.check_stream("memory", memory, d_model, f"(B, S, d_model) with d_model={d_model}")
    (B, T), S = x.shape[:2], memory.shape[1]
    if memory.shape[0] != B:
        raise ValueError(f"memory must have the batch size of {x_name}: "
                         f"{x_name} {_checks.shape_of(x)}, memory {_checks.shape_of(memory)}")
    if tgt_mask is not None:
        _checks.check_mask(tgt_mask, (B, num_heads, T, T), "(B, h, T, T)", name="tgt_mask")
    if src_mask is not None:
        _checks.check_mask(src_mask, (B, num_heads, T, S), "(B, h, T, S)", name="src_mask")


# ---------------------------------------------------------------------------
# Encoder, decoder, and the encoder-decoder model
# ---------------------------------------------------------------------------

class _Embedding(nn.Module):
    """Token embedding * sqrt(d) + sinusoidal positions, then dropout.

    The embedding is initialised with standard deviation 1/sqrt(d) per entry (as when it is
    shared with an output projection); the paper's sqrt(d) scale then gives entries of about
    unit size, the same size as the [-1, 1] positional codes, so neither word identity nor
    position drowns the other.
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float):
        super().__init__()
        _checks.check_positive_int("vocab_size", vocab_size)
        _checks.check_positive_int("max_len", max_len)
        _checks.check_probability("dropout", dropout)
        self.tok = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.tok.weight, std=d_model ** -0.5)
        # a buffer, not a parameter: it moves with .to(device) and is saved, but is not trained
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.vocab_size, self.d_model, self.max_len = vocab_size, d_model, max_len

    def forward(self, ids: torch.Tensor, name: str = "ids") -> torch.Tensor:
        """ids (B, L) -> (B, L, d); ``name`` is the argument named in an error message."""
        self.check(name, ids)
        return self.forward_unchecked(ids)

    def check(self, name: str, ids) -> None:
        _checks.check_token_ids(name, ids, self.vocab_size, self.max_len, length="L")

    def forward_unchecked(self, ids: torch.Tensor) -> torch.Tensor:
        L = ids.shape[1]
        x = self.tok(ids) * math.sqrt(self.d_model) + self.pe[:L]  # (B, L, d) + (L, d) -> (B, L, d)
        return self.dropout(x)


class Encoder(nn.Module):
    """Embeds the source ids and runs ``num_layers`` :class:`EncoderLayer` s: ids (B, S) -> C (B, S, d).

    Attributes: ``embedding`` (token embedding ``embedding.tok`` and the positional buffer
    ``embedding.pe`` (max_len, d)), ``layers``, ``final_norm`` (a LayerNorm after the last
    layer when ``norm_first=True``, else None).
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, d_ff: int, num_layers: int,
                 max_len: int, dropout: float = 0.1, norm_first: bool = False):
        super().__init__()
        _checks.check_positive_int("num_layers", num_layers)
        _checks.check_bool("norm_first", norm_first)
        self.embedding = _Embedding(vocab_size, d_model, max_len, dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first)
                                    for _ in range(num_layers))
        # pre-norm layers leave their output un-normalised: one LayerNorm closes the stack
        self.final_norm = nn.LayerNorm(d_model) if norm_first else None
        self.num_heads = num_heads

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) integer ids; src_mask bool broadcastable to (B, h, S, S). Returns (B, S, d)."""
        self.embedding.check("src", src)
        if src_mask is not None:
            B, S = src.shape
            _checks.check_mask(src_mask, (B, self.num_heads, S, S), "(B, h, S, S)", name="src_mask")
        return self.forward_unchecked(src, src_mask)

    def forward_unchecked(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` without the input checks, for a model that checked src once."""
        x = self.embedding.forward_unchecked(src)
        for layer in self.layers:
            x = layer.forward_unchecked(x, src_mask)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x


class Decoder(nn.Module):
    """Embeds the target ids, runs ``num_layers`` :class:`DecoderLayer` s over the encoder output,
    and projects to the target vocabulary: ids (B, T), C (B, S, d) -> logits (B, T, V).

    Attributes: ``embedding``, ``layers``, ``final_norm`` (a LayerNorm between the last layer
    and ``lm_head`` when ``norm_first=True``, else None), ``lm_head`` (nn.Linear(d, V)).
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, d_ff: int, num_layers: int,
                 max_len: int, dropout: float = 0.1, norm_first: bool = False):
        super().__init__()
        _checks.check_positive_int("num_layers", num_layers)
        _checks.check_bool("norm_first", norm_first)
        self.embedding = _Embedding(vocab_size, d_model, max_len, dropout)
        self.layers = nn.ModuleList(DecoderLayer(d_model, num_heads, d_ff, dropout, norm_first)
                                    for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(d_model) if norm_first else None  # GPT-2's ln_f
        self.lm_head = nn.Linear(d_model, vocab_size)
        self.num_heads = num_heads

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                tgt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tgt (B, T) integer ids; memory (B, S, d); masks as :meth:`DecoderLayer.forward`.

        Returns logits (B, T, V).
        """
        self.check("tgt", tgt, memory, src_mask, tgt_mask)
        return self.forward_unchecked(tgt, memory, src_mask, tgt_mask)

    def check(self, name: str, tgt, memory, src_mask=None, tgt_mask=None) -> None:
        """The checks of :meth:`forward`, with the target ids called ``name``."""
        self.embedding.check(name, tgt)
        _check_memory_and_masks(name, tgt, memory, src_mask, tgt_mask, self.embedding.d_model, self.num_heads)

    def forward_unchecked(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                          tgt_mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` without the input checks, for a model that checked its inputs once."""
        x = self.embedding.forward_unchecked(tgt)
        for layer in self.layers:
            x = layer.forward_unchecked(x, memory, src_mask, tgt_mask)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return self.lm_head(x)


class EncoderDecoder(nn.Module):
    """The Transformer for translation: :class:`Encoder` + :class:`Decoder`.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes.
        d_model, num_heads, d_ff, num_layers: width, heads, feed-forward width, layers (each stack).
        max_len: rows of the positional table; longer sequences raise ValueError.
        dropout: everywhere (embeddings, attention weights, feed-forward, residual branches).
        norm_first: False (default) for the post-norm layers of the notes, True for pre-norm
            layers (and a final LayerNorm closing each stack).

    Attention weights for visualisation: after every forward (or :meth:`greedy_decode`),
    :meth:`attention_maps` returns each layer's latest weights, shape (B, h, Tq, Tk).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 128, num_layers: int = 2, max_len: int = 64, dropout: float = 0.1,
                 norm_first: bool = False):
        super().__init__()
        self.encoder = Encoder(src_vocab_size, d_model, num_heads, d_ff, num_layers, max_len, dropout, norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, num_heads, d_ff, num_layers, max_len, dropout, norm_first)
        self.max_len = max_len

    def encode(self, src: torch.Tensor, src_pad_id: int = 0):
        """src (B, S) -> (memory C (B, S, d), src_mask (B, 1, 1, S), True at real tokens)."""
        self.encoder.embedding.check("src", src)
        return self._encode(src, src_pad_id)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
               tgt_pad_id: int = 0) -> torch.Tensor:
        """tgt_in (B, T), memory (B, S, d) -> logits (B, T, V), with the causal & padding target mask."""
        self.decoder.check("tgt_in", tgt_in, memory, src_mask)
        return self._decode(tgt_in, memory, src_mask, tgt_pad_id)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, src_pad_id: int = 0,
                tgt_pad_id: int = 0) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt_in (B, T) (starting with <bos>) -> logits (B, T, V).

        logits[:, t] predicts the target token after tgt_in[:, :t + 1].
        """
        self.encoder.embedding.check("src", src)
        self.decoder.embedding.check("tgt_in", tgt_in)
        if src.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size: "
                             f"src {_checks.shape_of(src)}, tgt_in {_checks.shape_of(tgt_in)}")
        memory, src_mask = self._encode(src, src_pad_id)
        return self._decode(tgt_in, memory, src_mask, tgt_pad_id)

    # the unchecked paths behind encode, decode and forward (each checks its input once)
    def _encode(self, src, src_pad_id):
        src_mask = padding_mask(src, src_pad_id)  # (B, 1, 1, S): no query looks at padding
        return self.encoder.forward_unchecked(src, src_mask), src_mask

    def _decode(self, tgt_in, memory, src_mask, tgt_pad_id):
        T = tgt_in.shape[1]
        # (1, 1, T, T) & (B, 1, 1, T) -> (B, 1, T, T): position t sees real tokens at positions <= t
        tgt_mask = causal_mask(T, device=tgt_in.device)[None, None] & padding_mask(tgt_in, tgt_pad_id)
        return self.decoder.forward_unchecked(tgt_in, memory, src_mask, tgt_mask)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int,
                      src_pad_id: int = 0) -> torch.Tensor:
        """Translate by taking the most likely token at each step.

        The model runs in eval mode (no dropout) during decoding and is put back in its previous
        mode afterwards. Each step re-runs the decoder over the whole prefix (no key/value cache:
        simpler, and fast enough for the course's short sentences).

        Args:
            src: (B, S) source ids.
            max_len: most tokens to generate; at most the model's ``max_len``.
            bos_id, eos_id: target ids of <bos> and <eos>.

        Returns:
            ids (B, T'), T' <= max_len, without <bos>; each row ends at its first <eos> and is
            padded with <eos> after it. Decoding stops once every row has produced <eos>.
        """
        _checks.check_positive_int("max_len", max_len)
        if max_len > self.max_len:
            raise ValueError(f"max_len={max_len} is longer than the positional table's max_len={self.max_len}")
        _checks.check_id_range("bos_id and eos_id", torch.tensor([bos_id, eos_id]), self.decoder.embedding.vocab_size)
        with evaluating(self):
            memory, src_mask = self.encode(src, src_pad_id)
            B = src.shape[0]
            ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1): <bos>
            done = torch.zeros(B, dtype=torch.bool, device=src.device)
            for _ in range(max_len):
                # tgt_pad_id=-1: no target id is padding while decoding, so no key is hidden
                logits = self._decode(ys, memory, src_mask, tgt_pad_id=-1)  # (B, t, V)
                next_id = logits[:, -1].argmax(dim=-1).masked_fill(done, eos_id)  # (B,)
                ys = torch.cat([ys, next_id[:, None]], dim=1)  # (B, t) -> (B, t + 1)
                done |= next_id == eos_id
                if bool(done.all()):
                    break
        return ys[:, 1:]

    def attention_maps(self) -> dict[str, list[torch.Tensor]]:
        """The latest attention weights of every layer, for heatmaps.

        Returns a dict with one list per kind, one detached tensor per layer (first layer first):

        - ``"encoder_self"``: (B, h, S, S), source positions attending to source positions;
        - ``"decoder_self"``: (B, h, T, T), masked, target positions attending to earlier ones;
        - ``"cross"``: (B, h, T, S), target positions attending to the source.

        After :meth:`greedy_decode`, T is the length of the last decoding step's input
        (<bos> and every token generated before the last).

        Raises RuntimeError before the model has been run.
        """
        maps = {
            "encoder_self": [layer.attn_weights for layer in self.encoder.layers],
            "decoder_self": [layer.self_attn_weights for layer in self.decoder.layers],
            "cross": [layer.cross_attn_weights for layer in self.decoder.layers],
        }
        if any(w is None for ws in maps.values() for w in ws):
            raise RuntimeError("no attention weights yet: run the model (forward or greedy_decode) first")
        return maps


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """GPT's and BERT's initialisation, for ``model.apply``: weights N(0, std), biases 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------
# The reference: the same layer built from torch.nn
# ---------------------------------------------------------------------------

@torch.no_grad()
def to_torch(layer: EncoderLayer | DecoderLayer) -> nn.TransformerEncoderLayer | nn.TransformerDecoderLayer:
    """PyTorch's own layer with the same arrangement and a copy of ``layer``'s weights.

    ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer(batch_first=True,
    activation="relu")`` with the same ``norm_first`` and dropout; in eval mode (or with dropout 0)
    it computes what ``layer`` computes. Note torch's masks say True where attention is *forbidden*:
    pass ``~mask`` to it.
    """
    def copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
        # torch keeps W_q, W_k, W_v stacked in one (3d, d) matrix
        theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        theirs.out_proj.weight.copy_(ours.w_o.weight)
        if ours.w_q.bias is not None:
            theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
            theirs.out_proj.bias.copy_(ours.w_o.bias)

    if not isinstance(layer, (EncoderLayer, DecoderLayer)):
        raise TypeError(f"layer must be an EncoderLayer or a DecoderLayer, got {type(layer).__name__}")
    # torch names "relu" and "gelu" itself; GPT-2's tanh GELU goes in as a function
    activation = {"relu": "relu", "gelu": "gelu"}.get(layer.ffn.activation, ACTIVATIONS[layer.ffn.activation])
    if isinstance(layer, EncoderLayer):
        theirs = nn.TransformerEncoderLayer(layer.d_model, layer.num_heads, layer.ffn.linear1.out_features,
                                            dropout=layer.dropout1.p, activation=activation, batch_first=True,
                                            norm_first=layer.norm_first, layer_norm_eps=layer.norm1.eps,
                                            bias=layer.norm1.bias is not None)
        norms = ("norm1", "norm2")
    elif isinstance(layer, DecoderLayer):
        theirs = nn.TransformerDecoderLayer(layer.d_model, layer.num_heads, layer.ffn.linear1.out_features,
                                            dropout=layer.dropout1.p, activation=activation, batch_first=True,
                                            norm_first=layer.norm_first)
        copy_attention(layer.cross_attn, theirs.multihead_attn)
        norms = ("norm1", "norm2", "norm3")
    copy_attention(layer.self_attn, theirs.self_attn)
    for name in norms:
        getattr(theirs, name).load_state_dict(getattr(layer, name).state_dict())
    for name in ("linear1", "linear2"):
        getattr(theirs, name).load_state_dict(getattr(layer.ffn, name).state_dict())
    return theirs.train(layer.training)
