"""The encoder-decoder Transformer of notebook 02: embeddings, the encoder and decoder stacks,
greedy decoding, attention maps.

The notes' machine translation model, built from :mod:`course_lib.transformer`'s layers:

- :class:`Encoder`: source ids -> token embedding * sqrt(d) + sinusoidal positions, then
  ``num_layers`` :class:`~course_lib.transformer.EncoderLayer` s -> C, the encoder output (``memory``).
- :class:`Decoder`: target ids -> the same embedding, ``num_layers``
  :class:`~course_lib.transformer.DecoderLayer` s reading C, then a linear layer to the target
  vocabulary.
- :class:`EncoderDecoder`: both, with the masks built from the ids (source padding; causal and
  padding on the target), teacher forcing in ``forward`` and :meth:`EncoderDecoder.greedy_decode`
  for translation (with a key/value cache by default: each step runs the decoder on the newest
  token only). :meth:`EncoderDecoder.attention_maps` collects every layer's latest attention
  weights for heatmaps.

Shapes: B batch, S source length, T target length, h heads, d model width, V vocabulary size.
Masks are boolean and **True means "may attend"**. With ``norm_first=True`` the layers are
pre-norm and each stack ends with a LayerNorm, ``final_norm`` (see :mod:`course_lib.transformer`).

Refused with a ``TypeError`` or ``ValueError`` naming the argument: ids that are not a (B, L)
integer tensor with at least one row and one token, ids outside the vocabulary, sequences longer
than ``max_len``, pad / bos / eos ids that are not ints, a ``memory`` of another width or dtype
than the decoder's, and the bad sizes and masks the layers refuse.

Inputs are checked once, where they enter (:func:`course_lib._checks.checked_by`): the model
checks the ids; the stacks, layers and attention it calls, and the masks it builds, are not
checked again.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _checks
from .attention import KVCache, causal_mask, padding_mask
from .training import evaluating
from .transformer import DecoderLayer, EncoderLayer, sinusoidal_positional_encoding

__all__ = ["Encoder", "Decoder", "EncoderDecoder"]


def _check_ids(name: str, ids, embedding: _Embedding) -> None:
    """``ids`` must be (B, L) token ids that ``embedding`` can embed (vocabulary and positional table), B >= 1."""
    _checks.check_token_ids(name, ids, embedding.vocab_size, embedding.max_len, length="L")
    if ids.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sequence, got {_checks.shape_of(ids)}")


def _check_memory_dtype(memory: torch.Tensor, decoder: Decoder) -> None:
    """``memory`` must have the dtype of the decoder's parameters."""
    _checks.check_dtype("memory", memory, decoder.lm_head.weight.dtype, "the parameters of the decoder")


class _Embedding(nn.Module):
    """Token embedding * sqrt(d) + sinusoidal positions, then dropout.

    The embedding is initialised with standard deviation 1/sqrt(d) per entry (as when it is
    shared with an output projection); the paper's sqrt(d) scale then gives entries of about
    unit size, the same size as the [-1, 1] positional codes, so neither word identity nor
    position drowns the other.
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int, dropout: float, positions: bool = True):
        super().__init__()
        _checks.check_bool("positions", positions)
        _checks.check_positive_int("vocab_size", vocab_size)
        _checks.check_positive_int("d_model", d_model)
        _checks.check_positive_int("max_len", max_len)
        _checks.check_probability("dropout", dropout)
        self.tok = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.tok.weight, std=d_model ** -0.5)
        # a buffer, not a parameter: it moves with .to(device) and is saved, but is not trained
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.vocab_size, self.d_model, self.max_len, self.positions = vocab_size, d_model, max_len, positions

    def _check_inputs(self, ids, name="ids", start=0):
        """The input check of :meth:`forward`."""
        _check_ids(name, ids, self)
        _checks.check_int("start", start)
        if start < 0 or start + ids.shape[1] > self.max_len:
            raise ValueError(f"positions start={start} to {start + ids.shape[1] - 1} must lie in the positional "
                             f"table [0, max_len={self.max_len})")

    @_checks.checked_by(_check_inputs)
    def forward(self, ids: torch.Tensor, name: str = "ids", start: int = 0) -> torch.Tensor:
        """ids (B, L) at positions start, ..., start + L - 1 -> (B, L, d).

        ``name`` is the argument named in an error message; ``start`` > 0 when decoding with a cache.
        """
        L = ids.shape[1]
        x = self.tok(ids) * math.sqrt(self.d_model)  # (B, L, d)
        if self.positions:  # without them the model sees a bag of words (notebook 02's ablation)
            x = x + self.pe[start:start + L]  # (B, L, d) + (L, d) -> (B, L, d)
        return self.dropout(x)


class Encoder(nn.Module):
    """Embeds the source ids and runs ``num_layers`` :class:`EncoderLayer` s: ids (B, S) -> C (B, S, d).

    Attributes: ``embedding`` (token embedding ``embedding.tok`` and the positional buffer
    ``embedding.pe`` (max_len, d)), ``layers``, ``final_norm`` (a LayerNorm after the last
    layer when ``norm_first=True``, else None).
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, d_ff: int, num_layers: int,
                 max_len: int, dropout: float = 0.1, norm_first: bool = False, *, positions: bool = True,
                 residual: bool = True, layer_norm: bool = True):
        super().__init__()
        _checks.check_positive_int("num_layers", num_layers)
        _checks.check_bool("norm_first", norm_first)
        self.embedding = _Embedding(vocab_size, d_model, max_len, dropout, positions)
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first, residual=residual,
                                                 layer_norm=layer_norm) for _ in range(num_layers))
        # pre-norm layers leave their output un-normalised: one LayerNorm closes the stack
        self.final_norm = nn.LayerNorm(d_model) if norm_first and layer_norm else None
        self.num_heads = num_heads

    def _check_inputs(self, src, src_mask=None):
        """The input checks of :meth:`forward`."""
        _check_ids("src", src, self.embedding)
        if src_mask is not None:
            B, S = src.shape
            _checks.check_mask(src_mask, (B, self.num_heads, S, S), "(B, h, S, S)", name="src_mask")

    @_checks.checked_by(_check_inputs)
    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) integer ids; src_mask bool broadcastable to (B, h, S, S). Returns (B, S, d)."""
        x = self.embedding(src)
        for layer in self.layers:
            x = layer(x, src_mask)
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
                 max_len: int, dropout: float = 0.1, norm_first: bool = False, *, positions: bool = True,
                 residual: bool = True, layer_norm: bool = True):
        super().__init__()
        _checks.check_positive_int("num_layers", num_layers)
        _checks.check_bool("norm_first", norm_first)
        self.embedding = _Embedding(vocab_size, d_model, max_len, dropout, positions)
        self.layers = nn.ModuleList(DecoderLayer(d_model, num_heads, d_ff, dropout, norm_first, residual=residual,
                                                 layer_norm=layer_norm) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(d_model) if norm_first and layer_norm else None  # GPT-2's ln_f
        self.lm_head = nn.Linear(d_model, vocab_size)
        self.num_heads = num_heads

    def new_cache(self) -> list[tuple[KVCache, KVCache]]:
        """An empty key/value cache for :meth:`forward`: per layer, (self-attention's, cross-attention's)."""
        return [(KVCache(), KVCache(static=True)) for _ in self.layers]

    def _check_inputs(self, tgt, memory, src_mask=None, tgt_mask=None, cache=None):
        """The input checks of :meth:`forward`."""
        _check_ids("tgt", tgt, self.embedding)
        _checks.check_memory_and_masks("tgt", tgt, memory, src_mask, None if cache is not None else tgt_mask,
                                       self.embedding.d_model, self.num_heads)
        _check_memory_dtype(memory, self)
        if cache is not None:
            if not isinstance(cache, list) or len(cache) != len(self.layers):
                raise TypeError(f"cache must be None or Decoder.new_cache() (a list of {len(self.layers)} pairs "
                                f"of KVCache), got {type(cache).__name__}")
            for i, (layer, pair) in enumerate(zip(self.layers, cache)):
                layer.check_cache(f"cache[{i}]", pair, *tgt.shape, memory.shape[1], tgt_mask)
            self.embedding._check_inputs(tgt, "tgt", len(cache[0][0]))  # positions cached, ..., cached + T - 1

    @_checks.checked_by(_check_inputs)
    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
                tgt_mask: torch.Tensor | None = None, cache: list | None = None) -> torch.Tensor:
        """tgt (B, T) integer ids; memory (B, S, d); masks as :meth:`DecoderLayer.forward`.

        cache: None, or :meth:`new_cache`'s list, passed again at every decoding step: tgt then
        holds only the new tokens, at positions len(cache) onwards (tgt_mask, if any, covers
        (B, h, T, cached + T)); the cross-attention projects ``memory`` at the first step only.
        Returns logits (B, T, V).
        """
        start = 0 if cache is None else len(cache[0][0])  # positions already in the cache
        x = self.embedding(tgt, "tgt", start)
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, src_mask, tgt_mask, None if cache is None else cache[i])
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
        positions, causal, residual, layer_norm: the parts notebook 02 removes one at a time to
            show what each does (all True by default): the positional encoding of both stacks,
            the causal mask of the decoder's self-attention (during training and decoding alike),
            the "Add" and the "Norm" of every layer.

    Attention weights for visualisation: after every forward in eval mode (or :meth:`greedy_decode`),
    :meth:`attention_maps` returns each layer's latest weights, shape (B, h, Tq, Tk). In training
    mode the layers run the fused attention kernel and keep no weights (see
    :func:`course_lib.transformer.set_need_weights` to keep them anyway).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 128, num_layers: int = 2, max_len: int = 64, dropout: float = 0.1,
                 norm_first: bool = False, *, positions: bool = True, causal: bool = True,
                 residual: bool = True, layer_norm: bool = True):
        super().__init__()
        _checks.check_bool("causal", causal)
        parts = dict(positions=positions, residual=residual, layer_norm=layer_norm)
        self.encoder = Encoder(src_vocab_size, d_model, num_heads, d_ff, num_layers, max_len, dropout, norm_first,
                               **parts)
        self.decoder = Decoder(tgt_vocab_size, d_model, num_heads, d_ff, num_layers, max_len, dropout, norm_first,
                               **parts)
        self.max_len, self.causal = max_len, causal

    def _check_encode(self, src, src_pad_id=0):
        """The input checks of :meth:`encode`."""
        _check_ids("src", src, self.encoder.embedding)
        _checks.check_int("src_pad_id", src_pad_id)

    @_checks.checked_by(_check_encode)
    def encode(self, src: torch.Tensor, src_pad_id: int = 0):
        """src (B, S) -> (memory C (B, S, d), src_mask (B, 1, 1, S), True at real tokens)."""
        src_mask = padding_mask(src, src_pad_id)  # (B, 1, 1, S): no query looks at padding
        return self.encoder(src, src_mask), src_mask

    def _check_decode(self, tgt_in, memory, src_mask=None, tgt_pad_id=0):
        """The input checks of :meth:`decode`."""
        _check_ids("tgt_in", tgt_in, self.decoder.embedding)
        _checks.check_memory_and_masks("tgt_in", tgt_in, memory, src_mask, None, self.decoder.embedding.d_model,
                                       self.decoder.num_heads)
        _check_memory_dtype(memory, self.decoder)
        _checks.check_int("tgt_pad_id", tgt_pad_id)

    @_checks.checked_by(_check_decode)
    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None,
               tgt_pad_id: int = 0) -> torch.Tensor:
        """tgt_in (B, T), memory (B, S, d) -> logits (B, T, V), with the causal & padding target mask."""
        T = tgt_in.shape[1]
        # (1, 1, T, T) & (B, 1, 1, T) -> (B, 1, T, T): position t sees real tokens at positions <= t
        tgt_mask = padding_mask(tgt_in, tgt_pad_id)
        if self.causal:  # without it (the ablation) position t also sees the words after it
            tgt_mask = causal_mask(T, device=tgt_in.device)[None, None] & tgt_mask
        return self.decoder(tgt_in, memory, src_mask, tgt_mask)

    def _check_forward(self, src, tgt_in, src_pad_id=0, tgt_pad_id=0):
        """The input checks of :meth:`forward`."""
        _check_ids("src", src, self.encoder.embedding)
        _check_ids("tgt_in", tgt_in, self.decoder.embedding)
        if src.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size: "
                             f"src {_checks.shape_of(src)}, tgt_in {_checks.shape_of(tgt_in)}")
        _checks.check_int("src_pad_id", src_pad_id)
        _checks.check_int("tgt_pad_id", tgt_pad_id)

    @_checks.checked_by(_check_forward)
    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, src_pad_id: int = 0,
                tgt_pad_id: int = 0) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt_in (B, T) (starting with <bos>) -> logits (B, T, V).

        logits[:, t] predicts the target token after tgt_in[:, :t + 1].
        """
        memory, src_mask = self.encode(src, src_pad_id)
        return self.decode(tgt_in, memory, src_mask, tgt_pad_id)

    def _check_greedy_decode(self, src, max_len, bos_id, eos_id, src_pad_id=0, use_cache=True):
        """The input checks of :meth:`greedy_decode`."""
        _checks.check_bool("use_cache", use_cache)
        _checks.check_positive_int("max_len", max_len)
        if max_len > self.max_len:
            raise ValueError(f"max_len={max_len} is longer than the positional table's max_len={self.max_len}")
        _checks.check_int("bos_id", bos_id)
        _checks.check_int("eos_id", eos_id)
        _checks.check_id_range("bos_id and eos_id", torch.tensor([bos_id, eos_id]), self.decoder.embedding.vocab_size)
        _check_ids("src", src, self.encoder.embedding)
        _checks.check_int("src_pad_id", src_pad_id)

    @torch.no_grad()
    @_checks.checked_by(_check_greedy_decode)
    def greedy_decode(self, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int,
                      src_pad_id: int = 0, use_cache: bool = True) -> torch.Tensor:
        """Translate by taking the most likely token at each step.

        The model runs in eval mode (no dropout) during decoding and is put back in its previous
        mode afterwards.

        With ``use_cache=True`` (default) the decoder keeps every layer's keys and values
        (:meth:`Decoder.new_cache`): step t embeds only the newest token, projects its query, key
        and value, and attends to the t cached keys; the cross-attention projects C at step 1
        only. With a causal mask, position t's state never depends on later tokens, so this gives
        the same tokens as ``use_cache=False``, which re-runs the decoder over the whole prefix at
        every step (t positions at step t: quadratic work). Without the causal mask (the
        ``causal=False`` ablation) earlier positions see later ones and change at every step, so
        nothing can be cached: the model then always re-runs the prefix, whatever ``use_cache``.

        Args:
            src: (B, S) source ids.
            max_len: most tokens to generate; at most the model's ``max_len``.
            bos_id, eos_id: target ids of <bos> and <eos>.
            use_cache: True (default) or False, see above; both return the same ids.

        Returns:
            ids (B, T'), T' <= max_len, without <bos>; each row ends at its first <eos> and is
            padded with <eos> after it. Decoding stops once every row has produced <eos>.
            Afterwards :meth:`attention_maps` holds the weights of the whole decoding (one row per
            step), cached or not.
        """
        with evaluating(self):
            memory, src_mask = self.encode(src, src_pad_id)
            B = src.shape[0]
            ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1): <bos>
            done = torch.zeros(B, dtype=torch.bool, device=src.device)
            cache = self.decoder.new_cache() if use_cache and self.causal else None
            for _ in range(max_len):
                if cache is None:
                    # tgt_pad_id=-1: no target id is padding while decoding, so no key is hidden
                    logits = self.decode(ys, memory, src_mask, tgt_pad_id=-1)  # (B, t, V)
                else:  # the newest token only; it may attend to every cached position (no mask needed)
                    logits = self.decoder(ys[:, -1:], memory, src_mask, cache=cache)  # (B, 1, V)
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
        (<bos> and every token generated before the last): row t is the step that emitted token t,
        with or without the cache.

        The layers keep weights only when they compute them: in eval mode by default (see
        :func:`course_lib.transformer.set_need_weights`); a forward in training mode leaves none.

        Raises RuntimeError before the model has been run (or when the last run kept no weights).
        """
        maps = {
            "encoder_self": [layer.attn_weights for layer in self.encoder.layers],
            "decoder_self": [layer.self_attn_weights for layer in self.decoder.layers],
            "cross": [layer.cross_attn_weights for layer in self.decoder.layers],
        }
        if any(w is None for ws in maps.values() for w in ws):
            raise RuntimeError("no attention weights yet: run the model (forward or greedy_decode) first, in eval "
                               "mode (model.eval()): in training mode the layers skip the weights for speed "
                               "(see course_lib.transformer.set_need_weights)")
        return maps
