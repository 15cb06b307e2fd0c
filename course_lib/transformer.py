"""The Transformer's layers: positional encoding, feed-forward network, encoder and decoder layers.

The notes describe machine translation with an encoder and a decoder:

- encoder (编码器): from the word-embedding matrix X, linear maps give Q, K, V and
  Z = Attention(Q, K, V) = softmax(QK^T / sqrt(d_k)) V; then "Add" (a residual connection, 残差连接)
  and "Norm" (layer normalisation), then "Feed Forward" (two fully connected layers, 两层全连接层),
  again with Add & Norm: :class:`EncoderLayer`.
- decoder (解码器): the first self-attention is one-directional (masked, so position t sees only
  positions <= t); the second takes K, V from the encoder output C and Q from the decoder:
  :class:`DecoderLayer`.

Attention itself lives in :mod:`course_lib.attention` (:class:`MultiHeadAttention`); this module
only arranges it. Word order enters through :func:`sinusoidal_positional_encoding`. The layers
are stacked into the translation model of notebook 02 in :mod:`course_lib.encoder_decoder`, and
into GPT and BERT in :mod:`course_lib.gpt` and :mod:`course_lib.bert`.

Shapes: B batch, S source length, T target length, h heads, d model width.
Masks are boolean and **True means "may attend"**. Each layer keeps its latest attention weights
(detached) for visualisation, when it computes them (see "Weights or speed" below).

Weights or speed: a layer's ``need_weights`` attribute says whether it computes the attention
weights explicitly and keeps them (``attn_weights``, ``self_attn_weights``, ``cross_attn_weights``).
``None`` (the default): only in eval mode, so pictures, widgets and ``attention_maps()`` (all run
in eval mode) get them, and training runs on PyTorch's fused kernel, which never stores them
(the kept weights are then None). ``True``: always (e.g. to watch the weights while training);
``False``: never (the fastest evaluation). :func:`set_need_weights` sets it on every layer of a
model. The two paths give the same outputs and gradients up to float rounding; only the dropout
mask differs (the fused kernel draws it from torch's global random stream).

Decoding with a cache: ``forward(..., cache=...)`` (a :class:`~course_lib.attention.KVCache` for
:class:`EncoderLayer`, a pair (self-attention cache, static cross-attention cache) for
:class:`DecoderLayer`) attends from the new positions to every cached one; used by
``EncoderDecoder.greedy_decode`` and ``GPT.generate``.

Where the "Norm" goes: by default the layers are *post-norm*, as in the notes and the 2017
paper, ``x = norm(x + sublayer(x))``. With ``norm_first=True`` they are *pre-norm*, as in GPT-2,
``x = x + sublayer(norm(x))``: the residual path then passes through no LayerNorm at all, which
makes deep stacks easier to train (often without a learning-rate warm-up). As nothing normalises
the last layer's output, a pre-norm stack ends with one more LayerNorm (``final_norm`` in
:mod:`course_lib.encoder_decoder`, GPT-2's ``ln_f``, the ``norm`` of ``torch.nn.TransformerEncoder``).

Refused with a ``TypeError`` or ``ValueError`` naming the argument: sizes that are not positive
ints, a dropout outside [0, 1), a ``layer_norm_eps`` that is not a finite number > 0, switches
(``norm_first``, ``bias``) that are not True or False, inputs of the wrong shape, and inputs whose
dtype is not the layer's (a float64 ``x`` into a float32 layer: convert one of them). Empty axes
(B = 0, T = 0) give empty outputs, as in torch.

Inputs are checked once, where they enter: each ``forward`` names its checks (the ``_check_inputs``
method beside it) with :func:`course_lib._checks.checked_by`. A layer called from a notebook
checks its input; the attention and feed-forward sub-layers it calls do not check it again.

Given the same weights and dropout 0, :class:`EncoderLayer` and :class:`DecoderLayer` equal
``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer(batch_first=True,
norm_first=..., activation="relu")`` with the same ``norm_first`` (see ``tests/test_transformer.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _checks
from .attention import KVCache, MultiHeadAttention

__all__ = [
    "sinusoidal_positional_encoding",
    "positional_shift_matrix",
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "to_torch",
    "ACTIVATIONS",
    "init_normal",
    "set_need_weights",
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


def positional_shift_matrix(k: int, d_model: int) -> torch.Tensor:
    """The matrix M_k with PE[p + k] = PE[p] M_k for every position p (row vectors, as in PE).

    Column pair (2i, 2i+1) of :func:`sinusoidal_positional_encoding` is (sin(p w_i), cos(p w_i))
    with w_i = 1 / 10000^(2i/d). Moving k positions on adds k w_i to the angle, and by the
    addition formulas

        sin((p + k) w) =  sin(p w) cos(k w) + cos(p w) sin(k w)
        cos((p + k) w) = -sin(p w) sin(k w) + cos(p w) cos(k w)

    that is the row vector (sin, cos) times the 2 x 2 rotation [[cos kw, -sin kw], [sin kw, cos kw]].
    M_k is block-diagonal with one such block per pair; it depends on k only, never on p, and
    M_j M_k = M_(j+k), M_0 = I, M_(-k) = M_k^T.

    Args:
        k: the offset, any int (negative moves back).
        d_model: the table's width; it must be even (an odd table's last sine column has no
            cosine partner, so no matrix moves it).

    Returns:
        (d_model, d_model) float64 tensor (float64 so that large offsets keep their digits).
    """
    _checks.check_int("k", k)
    _checks.check_positive_int("d_model", d_model)
    if d_model % 2:
        raise ValueError(f"d_model must be even (sine / cosine pairs), got {d_model}")
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # 2i = 0, 2, ..., d - 2
    angle = float(k) / torch.pow(10000.0, two_i / d_model)     # k w_i, one per pair: (d/2,)
    cos, sin = torch.cos(angle), torch.sin(angle)
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    m[0::2, 0::2] = torch.diag(cos)    # sin -> sin: cos(k w)
    m[1::2, 0::2] = torch.diag(sin)    # cos -> sin: sin(k w)
    m[0::2, 1::2] = torch.diag(-sin)   # sin -> cos: -sin(k w)
    m[1::2, 1::2] = torch.diag(cos)    # cos -> cos: cos(k w)
    return m


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
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        _checks.check_bool("bias", bias)
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.activation = activation

    def _check_inputs(self, x):
        """The input check of :meth:`forward`."""
        d = self.linear1.in_features
        _checks.check_stream("x", x, d, f"(..., d_model={d})", dim=None)
        _checks.check_dtype("x", x, self.linear1.weight.dtype, "the parameters of FeedForward")

    @_checks.checked_by(_check_inputs)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
    shape (B, h, T, T), for visualisation (``None`` before the first call, and after a call
    that did not compute them: see ``need_weights``).

    Attributes:
        need_weights: None (default: compute and keep the weights in eval mode only, use the fused
            kernel in training), True (always) or False (never). See :func:`set_need_weights`.

    Args:
        d_model: width d; divisible by num_heads.
        num_heads: h.
        d_ff: hidden width of the feed-forward network.
        dropout: on the attention weights, inside the feed-forward, and on each residual branch.
        norm_first: False (default) for post-norm, True for pre-norm.
        activation: of the feed-forward network, see :class:`FeedForward`.
        bias: biases in every linear layer and LayerNorm (GPT-style models may drop them).
        layer_norm_eps: the LayerNorms' epsilon, a finite number > 0.
        residual, layer_norm: the "Add" and the "Norm" of Add & Norm (both True by default); set
            one False to train the same layer without it (notebook 02's ablation). Without
            LayerNorm each ``norm*`` is an ``nn.Identity``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", bias: bool = True,
                 layer_norm_eps: float = 1e-5, residual: bool = True, layer_norm: bool = True):
        super().__init__()
        _checks.check_probability("dropout", dropout)
        _checks.check_bool("norm_first", norm_first)
        _checks.check_number("layer_norm_eps", layer_norm_eps, positive=True)
        _check_add_and_norm(residual, layer_norm)
        self.norm_first, self.residual = norm_first, residual
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation=activation, bias=bias)
        self.norm1 = _norm(d_model, layer_norm, eps=layer_norm_eps, bias=bias)
        self.norm2 = _norm(d_model, layer_norm, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.d_model, self.num_heads = d_model, num_heads
        self.attn_weights: torch.Tensor | None = None
        self.need_weights: bool | None = None

    def _check_inputs(self, x, mask=None, cache=None):
        """The input checks of :meth:`forward`."""
        _checks.check_stream("x", x, self.d_model, f"(B, T, d_model) with d_model={self.d_model}")
        _checks.check_dtype("x", x, self.self_attn.w_q.weight.dtype, "the parameters of EncoderLayer")
        B, T, _ = x.shape
        Tk = T if cache is None else KVCache.check("cache", cache, B, self.num_heads, self.self_attn.d_head, T)
        if mask is not None:
            _checks.check_mask(mask, (B, self.num_heads, T, Tk), "(B, h, T, T)" if cache is None else
                               "(B, h, T, cached + T)")

    @_checks.checked_by(_check_inputs)
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """x (B, T, d); mask bool broadcastable to (B, h, T, Tk), e.g. a padding mask (B, 1, 1, T).

        cache: None (Tk = T), or a :class:`KVCache` holding the keys and values of the earlier
        positions (Tk = cached + T; the new positions' are appended): how GPT decodes one token at
        a time. ``attn_weights`` then holds every row computed with this cache.
        Returns (B, T, d).
        """
        add = _add if self.residual else _replace
        need = _needs_weights(self)
        if self.norm_first:
            normed = self.norm1(x)
            attn_out, weights = self.self_attn(normed, normed, normed, mask, need, cache)  # (B, T, d), (B, h, T, Tk)
            self.attn_weights = _kept(weights, cache)
            x = add(x, self.dropout1(attn_out))
            return add(x, self.dropout2(self.ffn(self.norm2(x))))
        attn_out, weights = self.self_attn(x, x, x, mask, need, cache)  # (B, T, d), (B, h, T, Tk)
        self.attn_weights = _kept(weights, cache)
        x = self.norm1(add(x, self.dropout1(attn_out)))
        x = self.norm2(add(x, self.dropout2(self.ffn(x))))
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
    (B, h, T, S) hold that call's attention weights, detached (``None`` before the first call, and
    after a call that did not compute them: ``need_weights`` works as in :class:`EncoderLayer`).

    Args: as :class:`EncoderLayer`.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, residual: bool = True, layer_norm: bool = True):
        super().__init__()
        _checks.check_probability("dropout", dropout)
        _checks.check_bool("norm_first", norm_first)
        _check_add_and_norm(residual, layer_norm)
        self.norm_first, self.residual = norm_first, residual
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm1 = _norm(d_model, layer_norm)
        self.norm2 = _norm(d_model, layer_norm)
        self.norm3 = _norm(d_model, layer_norm)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.d_model, self.num_heads = d_model, num_heads
        self.self_attn_weights: torch.Tensor | None = None
        self.cross_attn_weights: torch.Tensor | None = None
        self.need_weights: bool | None = None

    def _check_inputs(self, x, memory, src_mask=None, tgt_mask=None, cache=None):
        """The input checks of :meth:`forward`."""
        _checks.check_stream("x", x, self.d_model, f"(B, T, d_model) with d_model={self.d_model}")
        # with a cache, tgt_mask covers the cached keys too: check_cache checks it
        _checks.check_memory_and_masks("x", x, memory, src_mask, tgt_mask if cache is None else None, self.d_model,
                                       self.num_heads)
        for name, t in (("x", x), ("memory", memory)):
            _checks.check_dtype(name, t, self.self_attn.w_q.weight.dtype, "the parameters of DecoderLayer")
        if cache is not None:
            self.check_cache("cache", cache, x.shape[0], x.shape[1], memory.shape[1], tgt_mask)

    def check_cache(self, name: str, cache, B: int, T: int, S: int, tgt_mask=None) -> None:
        """Raise unless ``cache`` is a pair (KVCache(), KVCache(static=True)) for a batch of B, T new target
        positions and S source positions, and ``tgt_mask`` (if any) covers (B, h, T, cached + T)."""
        if not (isinstance(cache, (tuple, list)) and len(cache) == 2
                and all(isinstance(c, KVCache) for c in cache) and cache[1].static and not cache[0].static):
            raise TypeError(f"{name} must be None or a pair (KVCache(), KVCache(static=True)): the "
                            f"self-attention's and the cross-attention's, got {cache!r}")
        Tk = KVCache.check(f"{name}[0]", cache[0], B, self.num_heads, self.self_attn.d_head, T)
        KVCache.check(f"{name}[1]", cache[1], B, self.num_heads, self.cross_attn.d_head, S)
        if tgt_mask is not None:
            _checks.check_mask(tgt_mask, (B, self.num_heads, T, Tk), "(B, h, T, cached + T)", name="tgt_mask")

    @_checks.checked_by(_check_inputs)
    def forward(self, x: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                tgt_mask: torch.Tensor | None = None, cache: tuple[KVCache, KVCache] | None = None) -> torch.Tensor:
        """x (B, T, d): the target stream; memory (B, S, d): the encoder output C.

        src_mask: bool broadcastable to (B, h, T, S), usually the source padding mask (B, 1, 1, S).
        tgt_mask: bool broadcastable to (B, h, T, Tk), usually causal & padding (B, 1, T, T).
        cache: None (Tk = T), or a pair (KVCache(), KVCache(static=True)) kept between decoding
            steps: the self-attention's keys and values of the earlier target positions (Tk =
            cached + T), and the cross-attention's of C, projected at the first step only. The
            kept weights then hold every row computed with this cache.
        Returns (B, T, d).
        """
        add = _add if self.residual else _replace
        need = _needs_weights(self)
        self_cache, cross_cache = (None, None) if cache is None else cache
        if self.norm_first:
            normed = self.norm1(x)
            # (B, T, d), (B, h, T, Tk)
            attn_out, weights = self.self_attn(normed, normed, normed, tgt_mask, need, self_cache)
            self.self_attn_weights = _kept(weights, self_cache)
            x = add(x, self.dropout1(attn_out))
            # (B, T, d), (B, h, T, S)
            attn_out, weights = self.cross_attn(self.norm2(x), memory, memory, src_mask, need, cross_cache)
            self.cross_attn_weights = _kept(weights, cross_cache)
            x = add(x, self.dropout2(attn_out))
            return add(x, self.dropout3(self.ffn(self.norm3(x))))
        attn_out, weights = self.self_attn(x, x, x, tgt_mask, need, self_cache)  # (B, T, d), (B, h, T, Tk)
        self.self_attn_weights = _kept(weights, self_cache)
        x = self.norm1(add(x, self.dropout1(attn_out)))
        attn_out, weights = self.cross_attn(x, memory, memory, src_mask, need, cross_cache)  # (B, T, d), (B, h, T, S)
        self.cross_attn_weights = _kept(weights, cross_cache)
        x = self.norm2(add(x, self.dropout2(attn_out)))
        x = self.norm3(add(x, self.dropout3(self.ffn(x))))
        return x


def _needs_weights(layer: EncoderLayer | DecoderLayer) -> bool:
    """Whether ``layer`` computes its attention weights now: its ``need_weights``, or (None) in eval mode."""
    return (not layer.training) if layer.need_weights is None else layer.need_weights


def _kept(weights: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor | None:
    """What a layer keeps for pictures: None (not computed), these weights detached, or with a cache,
    every row computed with it (B, h, rows so far, Tk)."""
    if weights is None:
        return None
    return weights.detach() if cache is None else cache.add_weights(weights.detach())


def set_need_weights(model: nn.Module, need_weights: bool | None):
    """Set ``need_weights`` on every :class:`EncoderLayer` and :class:`DecoderLayer` inside ``model``.

    None (the layers' default): compute and keep the attention weights in eval mode only (training
    uses the fused kernel); True: always (e.g. to plot the weights during training, at some cost
    in speed); False: never (the fastest evaluation; ``attention_maps()`` then has nothing to show).
    Returns ``model``, so ``set_need_weights(model, True).train()`` chains.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if need_weights is not None:
        _checks.check_bool("need_weights", need_weights)
    for module in model.modules():
        if isinstance(module, (EncoderLayer, DecoderLayer)):
            module.need_weights = need_weights
    return model


def _add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The residual connection ("Add"): the stream plus the sub-layer's correction."""
    return x + y


def _replace(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """No residual connection: the sub-layer's output replaces the stream (the ablation)."""
    return y


def _norm(d_model: int, layer_norm: bool, **options) -> nn.Module:
    """A LayerNorm over the last axis, or an identity when the "Norm" is switched off."""
    return nn.LayerNorm(d_model, **options) if layer_norm else nn.Identity()


def _check_add_and_norm(residual, layer_norm) -> None:
    _checks.check_bool("residual", residual)
    _checks.check_bool("layer_norm", layer_norm)


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """GPT's and BERT's initialisation, for ``model.apply``: weights N(0, std), biases 0.

    module must be an nn.Module; std a finite number >= 0.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module (use model.apply(init_normal)), got {type(module).__name__}")
    _checks.check_number("std", std)
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
    if not layer.residual or isinstance(layer.norm1, nn.Identity):
        raise ValueError("layer has no residual connection or no LayerNorm: torch's layers always have both")
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
