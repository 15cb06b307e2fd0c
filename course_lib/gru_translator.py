"""The GRU encoder-decoder with attention of notebook 01 (the notes' machine-translation figure).

The encoder reads the Chinese sentence into states H = [h_1, ..., h_n]. At each step t the
decoder

1. uses its previous state as the query, q = s_{t-1};
2. scores every encoder state, a_i = softmax(s(h_i, q))        (``course_lib.attention.attend``);
3. forms context = sum_i a_i * h_i: what it should look at now;
4. feeds context and the previous output word y_{t-1} (e.g. "love") into its GRU cell, s_t;
5. predicts the next English word from s_t and the context.

With ``attention=False`` the same model has no attention (the ablation of notebook 01): steps 2-3
are replaced by one fixed context for every step, the last encoder state (the forward GRU's state
after word n joined with the backward GRU's state after word 1), as in an encoder-decoder that
squeezes the sentence into one vector.

Its training recipe, evaluation and attention traces are in :mod:`course_lib.tasks.translation`.
Shapes: B batch, S source length, T target length, d model width, V vocabulary size.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from . import _checks
from ._checks import shape_of
from .attention import attend, make_score

__all__ = ["AttentionGRUTranslator"]


class AttentionGRUTranslator(nn.Module):
    """A bidirectional GRU encoder and a GRU decoder that attends over the encoder states.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (id 0 is padding in both).
        d_model: width d of encoder states h_i and decoder states s_t (even: d/2 per direction).
        score: the score function s(h_i, q): "additive", "dot", "scaled_dot" or "bilinear".
        d_embed: word embedding width (default d_model // 2).
        bos_id, eos_id: target ids of <bos> and <eos>.
        attention: False replaces the attention by a fixed context, the last encoder state
            [forward state after word n; backward state after word 1], the same at every step;
            the weights it returns are then all zero (no score function is built).

    Its methods check their inputs at the outermost call (``_checks.checked_by``): ids of the
    right shape and vocabulary, lengths in [1, S], states of width d_model.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, score: str = "additive",
                 d_embed: int | None = None, bos_id: int = 2, eos_id: int = 3, attention: bool = True):
        super().__init__()
        _checks.check_bool("attention", attention)
        for name, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                            ("d_model", d_model)):
            _checks.check_positive_int(name, value)
        _checks.check_positive_int("d_embed", d_embed, allow_none=True)
        if d_model % 2:
            raise ValueError(f"d_model must be even (d_model / 2 per encoder direction), got {d_model}")
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < tgt_vocab_size:
                raise ValueError(f"{name} must be an id in [0, tgt_vocab_size={tgt_vocab_size}), got {value!r}")
        d_embed = d_embed or d_model // 2
        self.d_model, self.bos_id, self.eos_id, self.attention = d_model, bos_id, eos_id, attention
        self.score_name = score if attention else "none"
        self.src_embed = nn.Embedding(src_vocab_size, d_embed, padding_idx=0)
        self.encoder = nn.GRU(d_embed, d_model // 2, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(d_model, d_model)  # s_0 from the encoder's two final states
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_embed, padding_idx=0)
        self.score = make_score(score, d_model) if attention else None
        self.cell = nn.GRUCell(d_embed + d_model, d_model)  # input: [embed(y_{t-1}); context]
        self.out = nn.Linear(2 * d_model, tgt_vocab_size)  # from [s_t; context]

    # --- input checks (run once, at the outermost call) ----------------------------------------
    def _check_encode(self, src, src_lengths):
        for name, t in (("src", src), ("src_lengths", src_lengths)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be an integer torch.Tensor, got {type(t).__name__}")
        if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
            raise ValueError(f"src must be (B, S) and src_lengths (B,), got {tuple(src.shape)} and "
                             f"{tuple(src_lengths.shape)}")
        _checks.check_token_ids("src", src, self.src_embed.num_embeddings, length="S")
        if src_lengths.dtype not in _checks.ID_DTYPES:
            raise TypeError(f"src_lengths must be an integer tensor (B,), got dtype {src_lengths.dtype}")
        if src_lengths.numel() and (src_lengths.min() < 1 or src_lengths.max() > src.shape[1]):
            raise ValueError(f"src_lengths must hold lengths in [1, S={src.shape[1]}], got values from "
                             f"{int(src_lengths.min())} to {int(src_lengths.max())}")

    def _check_forward(self, src, src_lengths, tgt_in):
        self._check_encode(src, src_lengths)
        if not isinstance(tgt_in, torch.Tensor) or tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must be a (B, T) tensor of target ids with B={src.shape[0]} rows like src, "
                             f"got {shape_of(tgt_in) if isinstance(tgt_in, torch.Tensor) else type(tgt_in).__name__}")
        _checks.check_token_ids("tgt_in", tgt_in, self.tgt_embed.num_embeddings)

    def _check_greedy_decode(self, src, src_lengths, max_len=30):
        self._check_encode(src, src_lengths)
        _checks.check_positive_int("max_len", max_len)

    def _check_decode_step(self, y_prev, state, H, mask):
        d = self.d_model
        _checks.check_stream("H", H, d, f"(B, S, d_model={d})")
        B, S = H.shape[:2]
        if not isinstance(y_prev, torch.Tensor) or y_prev.shape != (B,):
            raise ValueError(f"y_prev must be a tensor of B={B} target ids (B,), got "
                             f"{shape_of(y_prev) if isinstance(y_prev, torch.Tensor) else type(y_prev).__name__}")
        _checks.check_token_ids("y_prev", y_prev[:, None], self.tgt_embed.num_embeddings)
        _checks.check_stream("state", state, d, f"(B={B}, d_model={d})", dim=2)
        if state.shape[0] != B:
            raise ValueError(f"state must have shape (B={B}, d_model={d}), got {shape_of(state)}")
        _checks.check_mask(mask, (B, S), f"(B, S) = ({B}, {S})")

    @_checks.checked_by(_check_encode)
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor):
        """src (B, S) ids, src_lengths (B,) -> H (B, S, d), s_0 (B, d), mask (B, S) True on real words."""
        S = src.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), src_lengths.cpu(),
                                                   batch_first=True, enforce_sorted=False)
        out, last = self.encoder(packed)  # packing keeps the backward GRU from reading padding
        H, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=S)
        s0 = torch.tanh(self.init_state(torch.cat([last[0], last[1]], dim=-1)))  # (B, d)
        mask = torch.arange(S, device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        return H, s0, mask

    @_checks.checked_by(_check_decode_step)
    def decode_step(self, y_prev: torch.Tensor, state: torch.Tensor, H: torch.Tensor, mask: torch.Tensor):
        """One decoder step: y_prev (B,), state s_{t-1} (B, d) -> logits (B, V), s_t (B, d), a (B, S)."""
        if self.attention:
            # steps 1-3: query q = s_{t-1}; a_i = softmax(s(h_i, q)); context = sum_i a_i h_i
            context, a = attend(state, H, score=self.score, mask=mask[:, None, :])  # (B, d), (B, S)
        else:
            context, a = self.fixed_context(H, mask), torch.zeros(H.shape[:2], dtype=H.dtype, device=H.device)
        # step 4: the RNN cell reads the context and the previous output word
        state = self.cell(torch.cat([self.tgt_embed(y_prev), context], dim=-1), state)
        # step 5: predict the next word
        logits = self.out(torch.cat([state, context], dim=-1))
        return logits, state, a

    def _check_fixed_context(self, H, mask):
        d = self.d_model
        _checks.check_stream("H", H, d, f"(B, S, d_model={d})")
        _checks.check_mask(mask, tuple(H.shape[:2]), f"(B, S) = {tuple(H.shape[:2])}")
        if mask.shape != H.shape[:2] or (H.shape[1] and not mask.any(dim=1).all()):
            raise ValueError(f"mask must be (B, S) = {tuple(H.shape[:2])} with at least one real word per row, "
                             f"got {shape_of(mask)}")

    @_checks.checked_by(_check_fixed_context)
    def fixed_context(self, H: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The context of the model without attention: the last encoder state, (B, d).

        H (B, S, d) joins the forward GRU (first d/2 numbers) and the backward GRU (last d/2). Each
        direction's last state is the one after it has read the whole sentence: the forward state at
        the last real word n, the backward state at word 1. The same vector serves every step.
        """
        half = self.d_model // 2
        last = mask.sum(dim=1) - 1  # (B,): index of word n
        forward_last = H[torch.arange(H.shape[0], device=H.device), last, :half]
        return torch.cat([forward_last, H[:, 0, half:]], dim=-1)

    @_checks.checked_by(_check_forward)
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor):
        """Teacher forcing: tgt_in (B, T) starts with <bos>. Returns logits (B, T, V), weights (B, T, S)."""
        H, state, mask = self.encode(src, src_lengths)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, a = self.decode_step(tgt_in[:, t], state, H, mask)
            logits.append(step_logits)
            weights.append(a)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1)

    @torch.no_grad()
    @_checks.checked_by(_check_greedy_decode)
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int = 30):
        """Translate by taking the most likely word at each step.

        Returns ids (B, T') without <bos> (each row ends at its first <eos>, padded with <eos>),
        and the attention weights of every step (B, T', S).
        """
        H, state, mask = self.encode(src, src_lengths)
        B = src.shape[0]
        y = torch.full((B,), self.bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        ids, weights = [], []
        for _ in range(max_len):
            logits, state, a = self.decode_step(y, state, H, mask)
            y = logits.argmax(dim=-1).masked_fill(done, self.eos_id)
            ids.append(y)
            weights.append(a)
            done |= y == self.eos_id
            if done.all():
                break
        return torch.stack(ids, dim=1), torch.stack(weights, dim=1)


# ---------------------------------------------------------------------------
# Data, loss and evaluation
# ---------------------------------------------------------------------------
