"""GPT: a stack of masked self-attention blocks trained to predict the next token (notebook 03).

The notes' formulas, for tokens U = (u_1, ..., u_n), a context window of k tokens, the token
embedding matrix W_e and the position embedding matrix W_p:

    h_0 = U W_e + W_p                          (``wte``, ``wpe``)
    h_l = transformer_block(h_{l-1}),  l = 1..n   (``blocks``: masked self-attention, notebook 02)
    P(u) = softmax(h_n W_e^T)                  (``ln_f``, then ``lm_head``, whose weight IS ``wte.weight``)
    L1(U) = sum_i log P(u_i | u_{i-k}, ..., u_{i-1}; Θ)   (the loss is its negative mean)

Each block is notebook 02's :class:`~course_lib.transformer.EncoderLayer` in its pre-norm form
(GPT-2's arrangement) with GPT-2's GELU, run with a causal mask: one-directional, position t sees
positions <= t only. Fine-tuning (the notes' L2 and L3 = L2 + λ L1) is :class:`GPTForClassification`.
``GPT.from_hf_gpt2(folder)`` loads a Hugging Face GPT-2 folder; ``model.save_hf_gpt2(folder)`` writes
one that ``transformers.GPT2LMHeadModel.from_pretrained`` reads with the same logits.

Shapes: B batch, T sequence length (T <= block_size), d = n_embd, V vocabulary size.

Refused with a ``TypeError`` or ``ValueError`` naming the argument: ids that are not a (B, T)
integer tensor with at least one row and one token or lie outside [0, V); targets outside
[0, V) other than ``IGNORE_INDEX``, or with no position to predict; labels outside
[0, num_classes); lengths outside [1, T]; a negative or non-finite ``lm_weight``,
``temperature`` or ``layer_norm_eps``; bad sizes in :class:`GPTConfig`; and checkpoint folders
that do not hold a GPT-2 (each problem named, nothing loaded half-way).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from . import _checks
from .attention import KVCache, causal_mask
from .checkpoints import check_model_folder, save_model_folder
from .batching import IGNORE_INDEX  # targets with this value (padding) do not count in the loss
from .training import evaluating
from .transformer import EncoderLayer, init_normal

__all__ = ["GPTConfig", "GPT", "GPTForClassification", "IGNORE_INDEX"]


def _check_rows(name: str, idx: torch.Tensor) -> None:
    """A model call needs at least one sequence: ``idx`` (B, T) with B >= 1."""
    if idx.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sequence, got {_checks.shape_of(idx)}")


@dataclass
class GPTConfig:
    """Sizes of a :class:`GPT`. block_size is the context window k; n_embd the width d.

    Sizes are positive ints, n_embd divisible by n_head; dropout in [0, 1); bias True or False;
    layer_norm_eps a finite number > 0. Anything else raises when the config is made.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            _checks.check_positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be divisible by n_head, got n_embd={self.n_embd}, n_head={self.n_head}")
        _checks.check_probability("dropout", self.dropout)
        _checks.check_bool("bias", self.bias)
        _checks.check_number("layer_norm_eps", self.layer_norm_eps, positive=True)


class GPT(nn.Module):
    """A decoder-only Transformer language model (GPT-2's layout, course_lib's parts)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)   # W_e: token embeddings
        self.wpe = nn.Embedding(c.block_size, c.n_embd)   # W_p: learned position embeddings
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            EncoderLayer(c.n_embd, c.n_head, 4 * c.n_embd, c.dropout, norm_first=True, activation="gelu_tanh",
                         bias=c.bias, layer_norm_eps=c.layer_norm_eps)
            for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: P(u) = softmax(h_n W_e^T), one matrix fewer to learn
        self.register_buffer("mask", causal_mask(c.block_size), persistent=False)  # (block, block)
        self.apply(init_normal)
        for block in self.blocks:  # GPT-2: residual projections scaled down by the depth
            for linear in (block.self_attn.w_o, block.ffn.linear2):
                nn.init.normal_(linear.weight, std=0.02 / math.sqrt(2 * c.n_layer))

    def num_parameters(self, embeddings: bool = True) -> int:
        """Parameters counted once (the tied lm_head adds none); without ``wte``/``wpe`` if not embeddings."""
        _checks.check_bool("embeddings", embeddings)
        n = sum(p.numel() for p in self.parameters())
        return n if embeddings else n - self.wte.weight.numel() - self.wpe.weight.numel()

    def new_cache(self) -> list[KVCache]:
        """An empty key/value cache for :meth:`hidden_states`, one :class:`KVCache` per block."""
        return [KVCache() for _ in self.blocks]

    def _check_hidden_states(self, idx, cache=None):
        """The input check of :meth:`hidden_states`: ids in the vocabulary, at most block_size of them."""
        _checks.check_token_ids("idx", idx, self.config.vocab_size, self.config.block_size, limit="block_size")
        _check_rows("idx", idx)
        if cache is not None:
            if not (isinstance(cache, list) and len(cache) == len(self.blocks)
                    and all(isinstance(c, KVCache) and not c.static for c in cache)):
                raise TypeError(f"cache must be None or GPT.new_cache() (a list of {len(self.blocks)} KVCache), "
                                f"got {type(cache).__name__}")
            c = self.config
            for i, kv in enumerate(cache):
                KVCache.check(f"cache[{i}]", kv, idx.shape[0], c.n_head, c.n_embd // c.n_head, idx.shape[1])
            if len(cache[0]) + idx.shape[1] > c.block_size:
                raise ValueError(f"the cache holds {len(cache[0])} positions: {idx.shape[1]} more would pass "
                                 f"block_size={c.block_size}")

    @_checks.checked_by(_check_hidden_states)
    def hidden_states(self, idx: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """idx (B, T) -> h_n after the final LayerNorm, (B, T, d).

        cache: None, or :meth:`new_cache`'s list holding the keys and values of the P tokens
        before idx: idx then sits at positions P, ..., P + T - 1 (P + T <= block_size), attends to
        the cached ones too, and its keys and values are appended (decoding one token at a time).
        """
        T = idx.shape[1]
        P = 0 if cache is None else len(cache[0])  # positions already cached
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(P, P + T, device=idx.device)))  # h_0 = U W_e + W_p
        mask = self.mask[P:P + T, :P + T]  # (T, P + T): position P + t sees positions <= P + t
        for i, block in enumerate(self.blocks):
            # h_l = transformer_block(h_{l-1}): position t sees positions <= t
            x = block(x, mask, None if cache is None else cache[i])
        return self.ln_f(x)

    def _check_inputs(self, idx, targets=None):
        """The input checks of :meth:`forward`."""
        self._check_hidden_states(idx)
        if targets is not None:
            _checks.check_same_shape("targets", targets, "idx", idx)
            if targets.dtype not in _checks.ID_DTYPES:
                raise TypeError(f"targets must hold integer token ids (torch.long or torch.int), "
                                f"got dtype {targets.dtype}")
            predicted = targets[targets != IGNORE_INDEX]
            if predicted.numel() == 0:
                raise ValueError(f"targets must hold at least one token to predict, got only "
                                 f"IGNORE_INDEX={IGNORE_INDEX} in {_checks.shape_of(targets)}: "
                                 "the mean loss over no tokens is undefined")
            V = self.config.vocab_size
            if predicted.min() < 0 or predicted.max() >= V:
                raise ValueError(f"targets must hold ids in [0, vocab_size={V}) or IGNORE_INDEX={IGNORE_INDEX}, "
                                 f"got values from {int(predicted.min())} to {int(predicted.max())}")

    @_checks.checked_by(_check_inputs)
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids -> (logits (B, T, V), loss or None).

        targets (B, T): the next token at every position (``IGNORE_INDEX`` where nothing is to be
        predicted, e.g. padding); loss = -L1 / (number of predicted tokens), the mean negative
        log-likelihood in nats per token. Targets must hold at least one id to predict (a mean over
        no token is undefined: ValueError, never NaN).
        """
        logits = self.lm_head(self.hidden_states(idx))  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten().long(), ignore_index=IGNORE_INDEX)

    def _check_generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None, stop_token=None,
                        use_cache=True):
        """The input checks of :meth:`generate`."""
        _checks.check_bool("use_cache", use_cache)
        _checks.check_token_ids("idx", idx, self.config.vocab_size)  # any length: cropped below
        _check_rows("idx", idx)
        _checks.check_positive_int("max_new_tokens", max_new_tokens)
        _checks.check_number("temperature", temperature, positive=True)
        _checks.check_positive_int("top_k", top_k, allow_none=True)
        _checks.check_generator("generator", generator)
        if stop_token is not None:
            _checks.check_int("stop_token", stop_token, self.config.vocab_size)

    @torch.no_grad()
    @_checks.checked_by(_check_generate)
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, stop_token: int | None = None,
                 use_cache: bool = True) -> torch.Tensor:
        """Continue each row of idx (B, T) by sampling ``max_new_tokens`` tokens; returns (B, T + new).

        temperature > 0 divides the logits (below 1: sharper, above 1: flatter); top_k keeps only
        the k most likely tokens; generator makes the sampling reproducible. Longer contexts than
        block_size are cropped to the last block_size tokens. With ``stop_token`` (an id in [0, V)),
        stops once every row has produced it. The model runs in eval mode (no dropout), then gets its
        mode back. idx must hold at least one row of at least one token; temperature must be a
        finite number > 0; top_k a positive int or None. The model runs on idx's device (put idx on
        the model's); with a CPU ``generator`` the sampling itself runs on the CPU.

        use_cache: True (default) keeps every block's keys and values (:meth:`new_cache`): the
        prompt runs once, then each step runs the newest token only. False re-runs the whole
        context at every step. Both give the same tokens for the same ``generator`` (the
        probabilities agree to float rounding). Once the text is longer than block_size the
        window slides: every position would move, so the cache is dropped and each further step
        re-runs the last block_size tokens, as without the cache.
        """
        block = self.config.block_size
        with evaluating(self):
            done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
            cache = self.new_cache() if use_cache and idx.shape[1] <= block else None
            for _ in range(max_new_tokens):
                if cache is not None and idx.shape[1] > block:
                    cache = None  # the window slides from now on: crop and recompute
                if cache is None:
                    h = self.hidden_states(idx[:, -block:])  # (B, T, d)
                else:  # the first step runs the whole prompt, later ones the newest token
                    h = self.hidden_states(idx[:, len(cache[0]):], cache)
                logits = self.lm_head(h[:, -1:])  # (B, 1, V)
                probs = next_token_probs(logits[:, -1], temperature, top_k)  # (B, V)
                if generator is not None and generator.device != probs.device:
                    # torch.multinomial needs the generator on the probabilities' device: sample where
                    # the generator is (the CPU for torch.Generator()), so a seed gives the same tokens
                    # on every device, then bring them back to the model.
                    nxt = torch.multinomial(probs.to(generator.device), 1, generator=generator).to(idx.device)
                else:
                    nxt = torch.multinomial(probs, 1, generator=generator)     # (B, 1)
                idx = torch.cat([idx, nxt], dim=1)
                if stop_token is not None:
                    done |= nxt[:, 0] == stop_token
                    if bool(done.all()):
                        break
        return idx

    # --- GPT-2 checkpoints ----------------------------------------------------------------
    @classmethod
    def from_hf_gpt2(cls, path) -> "GPT":
        """Load a Hugging Face GPT-2 folder (config.json + model.safetensors) into a course GPT.

        Every tensor of the checkpoint is renamed to this module's name and the whole state dict
        loaded strictly: a missing or unused tensor raises ``ValueError`` naming it. GPT-2 stores
        its linear layers as ``Conv1D`` with (in, out) weights, and W_q, W_k, W_v in one ``c_attn``
        matrix; they are transposed and split here. Skipped: each block's causal-mask buffers
        (``attn.bias``, ``attn.masked_bias``) and ``lm_head.weight``, the tied copy of ``wte.weight``.
        The result's logits equal ``transformers.GPT2LMHeadModel``'s on the same folder.

        Refused, before any weight is loaded (``ValueError`` naming the file and the problem):
        a config.json that is not a JSON object with GPT-2's fields and valid sizes, a
        model.safetensors that safetensors cannot read, tensors of the wrong shape, not floating
        point, or holding NaN or inf. ``path`` must be a str or a path (``TypeError``); a folder
        without the two files raises ``FileNotFoundError``.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or a pathlib.Path of a GPT-2 folder, got {type(path).__name__}")
        path = pathlib.Path(path)
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path} must contain config.json and model.safetensors (a GPT-2 folder)")
        config = _gpt2_config(path / "config.json")
        try:
            state = load_file(str(path / "model.safetensors"))
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"{path / 'model.safetensors'} is not a readable safetensors file: {e}") from None
        # GPT2LMHeadModel saves its tensors under "transformer.", GPT2Model without a prefix
        prefix = "transformer." if any(k.startswith("transformer.") for k in state) else ""
        names = {prefix + theirs: ours for theirs, ours in _gpt2_names(config.n_layer).items()}
        _checks.check_checkpoint_keys(f"{path / 'model.safetensors'} (GPT-2)", state, names,
                                      skip=rf"({re.escape(prefix)}h\.\d+\.attn\.(masked_)?bias|lm_head\.weight)")
        ours = {}
        for theirs, targets in names.items():
            t = state[theirs]
            if theirs.endswith(".weight") and (".attn." in theirs or ".mlp." in theirs):
                t = t.T  # Conv1D (in, out) -> nn.Linear (out, in)
            for name, part in zip(targets, t.chunk(len(targets))):  # c_attn: W_q, W_k, W_v stacked
                ours[name] = part
        model = cls(config)
        _check_gpt2_tensors(path / "model.safetensors", ours, model.state_dict(), names)
        ours["lm_head.weight"] = ours["wte.weight"]  # tied: the same matrix, listed under both names
        model.load_state_dict(ours, strict=True)
        return model.eval()

    def save_hf_gpt2(self, path) -> pathlib.Path:
        """Save this model as a Hugging Face GPT-2 folder: ``path/config.json`` + ``path/model.safetensors``.

        The inverse of :meth:`from_hf_gpt2`: ``transformers.GPT2LMHeadModel.from_pretrained(path)``
        then computes the same logits as this model (eval mode), and ``GPT.from_hf_gpt2(path)``
        gives back the same weights. The tensors get GPT-2's names under ``transformer.``, as
        ``GPT2LMHeadModel.save_pretrained`` writes them: linear weights transposed to ``Conv1D``'s
        (in, out), and W_q, W_k, W_v stacked into one ``c_attn``; ``lm_head.weight`` is left out
        (it is ``wte.weight``, tied, and transformers ties it again when loading).

        config.json fixes every GPT-2 setting that changes the computation rather than leaving it
        to transformers' defaults: ``activation_function`` "gelu_pytorch_tanh" (the course's
        GELU, torch's tanh approximation: GPT-2's "gelu_new" is the same formula written out,
        equal only to float rounding), ``n_inner`` = 4 * n_embd (the MLP width), attention scaled
        by 1 / sqrt(head size) only (``scale_attn_weights`` true, no per-layer scaling, no
        reordering), ``layer_norm_epsilon``, the three dropouts = config.dropout, tied embeddings.
        ``bos_token_id`` and ``eos_token_id`` are null: the ids depend on the tokenizer.

        A model made with ``bias=False`` is saved with zero biases (GPT-2 always has them): the
        same function, and it loads back as ``bias=True`` with those zeros.

        Each file is written to a temporary file in the folder, then renamed over the old one, so an
        interrupted save leaves the folder's previous files whole. ``path`` is the folder (created
        with its parents if missing), a str or a path (``TypeError`` otherwise); an existing file
        there, or a folder that cannot be written, raises ``ValueError`` naming it. Other files in
        the folder (a tokenizer, logs) are left alone. Returns the folder as a ``pathlib.Path``.
        """
        folder = check_model_folder("path", path)
        c = self.config
        state = {k: v.detach().to("cpu") for k, v in self.state_dict().items()}
        tensors = {}
        for theirs, targets in _gpt2_names(c.n_layer).items():
            parts = [state[name] if name in state else _zero_bias(state, name) for name in targets]
            t = torch.cat(parts) if len(parts) > 1 else parts[0]  # c_attn: W_q, W_k, W_v stacked
            if theirs.endswith(".weight") and (".attn." in theirs or ".mlp." in theirs):
                t = t.T  # nn.Linear (out, in) -> Conv1D (in, out)
            tensors["transformer." + theirs] = t.contiguous()
        dtype = str(self.wte.weight.dtype).removeprefix("torch.")
        config = {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": c.vocab_size, "n_positions": c.block_size, "n_ctx": c.block_size,
            "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head, "n_inner": 4 * c.n_embd,
            "activation_function": "gelu_pytorch_tanh", "layer_norm_epsilon": c.layer_norm_eps,
            "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
            "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
            "add_cross_attention": False, "tie_word_embeddings": True, "initializer_range": 0.02,
            "bos_token_id": None, "eos_token_id": None, "pad_token_id": None, "use_cache": True, "dtype": dtype,
        }
        return save_model_folder(folder, config, tensors)


_GPT2_FIELDS = ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd")


def _gpt2_config(file: pathlib.Path) -> GPTConfig:
    """The GPTConfig of a Hugging Face GPT-2 ``config.json``; ValueError naming the file if it is not one."""
    try:
        hf = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file} is not a JSON file: {e}") from None
    if not isinstance(hf, dict):
        raise ValueError(f"{file} must hold a JSON object with GPT-2's fields, got {type(hf).__name__}")
    if missing := [f for f in _GPT2_FIELDS if f not in hf]:
        raise ValueError(f"{file} is not a GPT-2 config: missing {', '.join(missing)}")
    if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"unsupported activation_function {hf['activation_function']!r}: GPT-2 uses gelu_new")
    try:
        return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                         n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=0.0, bias=True,
                         layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{file} does not describe a valid GPT-2: {e}") from None


def _check_gpt2_tensors(file: pathlib.Path, ours: dict, expected: dict, names: dict) -> None:
    """Every renamed checkpoint tensor must have its parameter's shape, be floating point and finite."""
    theirs_of = {o: theirs for theirs, targets in names.items() for o in targets}
    for name, t in ours.items():
        source = theirs_of[name]
        if t.shape != expected[name].shape:
            raise ValueError(f"{file} does not fit its config.json: {source} gives {name} the shape "
                             f"{_checks.shape_of(t)}, the config says {_checks.shape_of(expected[name])}")
        if not t.is_floating_point():
            raise ValueError(f"{file}: {source} must hold floating-point weights, got dtype {t.dtype}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{file}: {source} holds NaN or inf values (a damaged or diverged checkpoint)")


def _gpt2_names(n_layer: int) -> dict[str, tuple[str, ...]]:
    """Hugging Face GPT-2 tensor names (without a prefix) -> this module's (three for ``c_attn``)."""
    names = {n: (n,) for n in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias")}
    block = {"ln_1": ("norm1",), "ln_2": ("norm2",), "attn.c_proj": ("self_attn.w_o",),
             "attn.c_attn": ("self_attn.w_q", "self_attn.w_k", "self_attn.w_v"),
             "mlp.c_fc": ("ffn.linear1",), "mlp.c_proj": ("ffn.linear2",)}
    for i in range(n_layer):
        for theirs, ours in block.items():
            for kind in ("weight", "bias"):
                names[f"h.{i}.{theirs}.{kind}"] = tuple(f"blocks.{i}.{o}.{kind}" for o in ours)
    return names


def _zero_bias(state: dict, name: str) -> torch.Tensor:
    """The zero bias GPT-2 needs where a ``bias=False`` model has none: ``name`` ends in ``.bias``."""
    weight = state[name.removesuffix(".bias") + ".weight"]  # Linear (out, in) or LayerNorm (d,)
    return torch.zeros(weight.shape[0], dtype=weight.dtype)


def _check_next_token_probs(logits, temperature=1.0, top_k=None):
    """The input checks of :func:`next_token_probs`."""
    _checks.check_tensor("logits", logits, 1, "(..., V)")
    if logits.shape[-1] == 0:
        raise ValueError(f"logits must have at least one entry per row (V >= 1), got {_checks.shape_of(logits)}")
    _checks.check_number("temperature", temperature, positive=True)
    _checks.check_positive_int("top_k", top_k, allow_none=True)


@_checks.checked_by(_check_next_token_probs)
def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """softmax(logits / temperature), keeping only the top_k largest: (..., V) -> (..., V).

    temperature: a finite number > 0 (a tiny one gives the one-hot argmax, never NaN);
    top_k: a positive int or None (no cut).
    """
    scaled = logits / temperature
    if not torch.isfinite(scaled).all() and torch.isfinite(logits).all():
        # a tiny temperature overflowed the division: shift the largest logit to 0 first (0 / 0 stays 0)
        scaled = ((logits - logits.max(dim=-1, keepdim=True).values) / temperature).nan_to_num(nan=0.0)
    logits = scaled
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=-1)


class GPTForClassification(nn.Module):
    """Supervised fine-tuning (有监督的微调): a linear layer W_y on the last token's h.

    For a labelled sequence x^1 ... x^m with label y:

        P(y | x^1, ..., x^m) = softmax(h_l^m W_y)
        L2 = -sum log P(y | x^1, ..., x^m)           (here: its mean over the batch)
        L3 = L2 + λ * L1                             (L1: the language-model loss on the same texts)

    Args: gpt (pretrained or fresh), num_classes.
    forward(idx (B, T), labels (B,) or None, lengths (B,) or None, lm_weight λ) -> (class_logits (B, C), loss).
    ``lengths`` gives each row's number of real tokens (the rest is padding); the class is read at
    position length - 1. Without it every row is taken as full.

    Inputs: labels an integer tensor (B,) of classes in [0, num_classes); lengths an integer tensor
    (B,) with values in [1, T] (a list of ints: convert it with ``torch.tensor``); lm_weight a finite
    number >= 0. L1 needs a next token: a row of length 1 has none, and when no row has one (every
    length is 1, or T = 1) the L1 term is 0 and the loss is L2 alone, never NaN.
    """

    def __init__(self, gpt: GPT, num_classes: int):
        super().__init__()
        if not isinstance(gpt, GPT):
            raise TypeError(f"gpt must be a GPT, got {type(gpt).__name__}")
        _checks.check_positive_int("num_classes", num_classes)
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.n_embd, num_classes)  # W_y

    def _check_inputs(self, idx, labels=None, lengths=None, lm_weight=0.0):
        """The input checks of :meth:`forward`."""
        self.gpt._check_hidden_states(idx)
        B, T = idx.shape
        C = self.head.out_features
        for name, t, low, high, what in (("labels", labels, 0, C - 1, f"[0, num_classes={C})"),
                                         ("lengths", lengths, 1, T, f"[1, T={T}]")):
            if t is None:
                continue
            if not isinstance(t, torch.Tensor) or t.dtype not in _checks.ID_DTYPES:
                got = f"dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
                raise TypeError(f"{name} must be an integer torch.Tensor of shape (B,) = ({B},), got {got}"
                                + (": convert it with torch.tensor(...)" if isinstance(t, (list, tuple)) else ""))
            if t.shape != (B,):
                raise ValueError(f"{name} must have shape (B,) = ({B},), got {_checks.shape_of(t)}")
            if t.min() < low or t.max() > high:
                raise ValueError(f"{name} must be in {what}, got values from {int(t.min())} to {int(t.max())}")
        _checks.check_number("lm_weight", lm_weight)

    @_checks.checked_by(_check_inputs)
    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None, lengths: torch.Tensor | None = None,
                lm_weight: float = 0.0):
        h = self.gpt.hidden_states(idx)  # (B, T, d)
        B, T = idx.shape
        if lengths is None:
            lengths = torch.full((B,), T, device=idx.device)
        last = h[torch.arange(B, device=idx.device), lengths - 1]   # h_l^m: the last real token, (B, d)
        class_logits = self.head(last)                               # (B, C)
        if labels is None:
            return class_logits, None
        loss = F.cross_entropy(class_logits, labels.long())          # L2
        if lm_weight:
            lm_logits = self.gpt.lm_head(h[:, :-1])                  # predict token t + 1 from h_t
            targets = idx[:, 1:].masked_fill(torch.arange(1, T, device=idx.device)[None] >= lengths[:, None],
                                             IGNORE_INDEX)           # no target past the end
            if bool((targets != IGNORE_INDEX).any()):  # else no next token anywhere: the L1 term is 0
                loss = loss + lm_weight * F.cross_entropy(lm_logits.flatten(0, 1), targets.flatten().long(),
                                                          ignore_index=IGNORE_INDEX)  # L3 = L2 + λ L1
        return class_logits, loss
