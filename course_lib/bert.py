"""BERT: a bidirectional Transformer encoder pretrained with MLM + NSP (notebook 04).

> BERT 采用的是不经过 mask 的多层双向 Transformer  (the notes)
> *BERT is a multi-layer bidirectional Transformer without the mask.*

- :class:`BertModel`: token + segment + position embeddings (summed, LayerNorm, dropout), then
  notebook 02's post-norm :class:`~course_lib.transformer.EncoderLayer` s with GELU and **no causal
  mask** (only padding is hidden), then the pooler (dense + tanh on the [CLS] position).
  ``BertModel.from_pretrained(folder)`` loads a Hugging Face BERT folder, e.g. the bundled
  all-MiniLM-L6-v2 (:func:`course_lib.pretrained.minilm_path`).
- :class:`BertForPreTraining`: the masked-language-model head (tied to the word embeddings)
  and the next-sentence head on [CLS]; the pretraining loss is their sum.
- :func:`mask_tokens`: the notes' 15% / 80-10-10 rule. :func:`make_nsp_pairs`: 50% IsNext, 50% NotNext.

Shapes: B batch, T tokens, H hidden size, h heads, V vocabulary size.
"""

from __future__ import annotations

import json
import pathlib
import random
import re
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from . import _checks
from .batching import IGNORE_INDEX  # MLM labels at positions that were not selected: no loss there
from .training import evaluating
from .transformer import EncoderLayer, init_normal

__all__ = ["BertConfig", "BertModel", "BertOutput", "BertForPreTraining", "mask_tokens", "make_nsp_pairs",
           "mean_pool", "sentence_embeddings", "IGNORE_INDEX", "IS_NEXT", "NOT_NEXT"]

IS_NEXT, NOT_NEXT = 0, 1  # NSP labels, as in the original BERT


@dataclass
class BertConfig:
    """Hugging Face's BERT field names, so a ``config.json`` loads as it is."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    hidden_act: str = "gelu"

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            _checks.check_positive_int(name, getattr(self, name))
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            _checks.check_probability(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size must be divisible by num_attention_heads, got {self.hidden_size} and "
                             f"{self.num_attention_heads}")
        if self.hidden_act not in ("gelu", "relu"):
            raise ValueError(f"hidden_act must be 'gelu' or 'relu', got {self.hidden_act!r}")

    @classmethod
    def from_json(cls, path) -> "BertConfig":
        """Read a Hugging Face ``config.json``, keeping the fields this class knows."""
        raw = json.loads(pathlib.Path(path).read_text())
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


class BertOutput(NamedTuple):
    last_hidden_state: torch.Tensor   # (B, T, H)
    pooler_output: torch.Tensor       # (B, H): tanh(W [CLS] + b)
    attentions: tuple                 # one (B, h, T, T) per layer


class BertModel(nn.Module):
    """The BERT encoder. ``forward(input_ids, token_type_ids=None, attention_mask=None) -> BertOutput``.

    attention_mask: (B, T), 1 for real tokens, 0 for padding (no position attends to padding).
    The attention is **bidirectional**: every real token sees every real token, before and after it.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
        self.config = c = config
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)  # segment A / B
        self.embeddings_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.embeddings_dropout = nn.Dropout(c.hidden_dropout_prob)
        self.layers = nn.ModuleList(
            EncoderLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size, c.hidden_dropout_prob,
                         norm_first=False, activation=c.hidden_act, layer_norm_eps=c.layer_norm_eps)
            for _ in range(c.num_hidden_layers))
        for layer in self.layers:  # BERT drops attention weights at its own rate
            layer.self_attn.dropout = c.attention_probs_dropout_prob
        self.pooler = nn.Linear(c.hidden_size, c.hidden_size)
        self.apply(init_normal)

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token + segment + position embeddings, LayerNorm, dropout: (B, T) -> (B, T, H)."""
        T = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(torch.arange(T, device=input_ids.device)))
        return self.embeddings_dropout(self.embeddings_norm(x))

    def _check_inputs(self, input_ids, token_type_ids=None, attention_mask=None):
        """The input checks of :meth:`forward`."""
        c = self.config
        _checks.check_token_ids("input_ids", input_ids, c.vocab_size, c.max_position_embeddings,
                                limit="max_position_embeddings")
        if token_type_ids is not None:
            _checks.check_same_shape("token_type_ids", token_type_ids, "input_ids", input_ids)
            _checks.check_id_range("token_type_ids", token_type_ids, c.type_vocab_size, "type_vocab_size")
        if attention_mask is not None:
            _checks.check_same_shape("attention_mask", attention_mask, "input_ids", input_ids)

    @_checks.checked_by(_check_inputs)
    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> BertOutput:
        x = self.embed(input_ids, token_type_ids)
        # no causal mask: only padding keys are hidden, (B, 1, 1, T) True = may attend
        keep = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        attentions = []
        for layer in self.layers:
            x = layer(x, keep)
            attentions.append(layer.attn_weights)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # the [CLS] position
        return BertOutput(x, pooled, tuple(attentions))

    @classmethod
    def from_pretrained(cls, path) -> "BertModel":
        """Load a Hugging Face BERT folder (config.json + model.safetensors), in eval mode.

        Every tensor of the checkpoint is renamed to this module's name and the whole state dict
        loaded strictly: a missing or unused tensor raises ``ValueError`` naming it. Skipped: the
        ``position_ids`` buffer and the pretraining heads (``cls.*``) that BertModel has not.
        """
        path = pathlib.Path(path)
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path} must contain config.json and model.safetensors (a BERT folder)")
        model = cls(BertConfig.from_json(path / "config.json"))
        state = load_file(str(path / "model.safetensors"))
        # BertForPreTraining & co. save the encoder under "bert.", BertModel without a prefix
        prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
        # very old checkpoints call LayerNorm's weight and bias gamma and beta
        norm = ("gamma", "beta") if f"{prefix}embeddings.LayerNorm.gamma" in state else ("weight", "bias")
        names = {prefix + theirs: ours for theirs, ours in _bert_names(model.config.num_hidden_layers, norm).items()}
        _checks.check_checkpoint_keys(f"{path / 'model.safetensors'} (BERT)", state, names,
                                      skip=rf"{re.escape(prefix)}embeddings\.position_ids|cls\..*")
        model.load_state_dict({ours: state[theirs] for theirs, ours in names.items()}, strict=True)
        return model.eval()


def _bert_names(num_layers: int, norm: tuple[str, str] = ("weight", "bias")) -> dict[str, str]:
    """Hugging Face BERT tensor names (without a prefix) -> this module's; ``norm``: LayerNorm's two names."""
    names = {"embeddings.word_embeddings.weight": "word_embeddings.weight",
             "embeddings.position_embeddings.weight": "position_embeddings.weight",
             "embeddings.token_type_embeddings.weight": "token_type_embeddings.weight",
             "pooler.dense.weight": "pooler.weight", "pooler.dense.bias": "pooler.bias"}
    linears = {"self_attn.w_q": "attention.self.query", "self_attn.w_k": "attention.self.key",
               "self_attn.w_v": "attention.self.value", "self_attn.w_o": "attention.output.dense",
               "ffn.linear1": "intermediate.dense", "ffn.linear2": "output.dense"}
    norms = {"embeddings_norm": "embeddings.LayerNorm"}
    for i in range(num_layers):
        for ours, theirs in linears.items():
            for kind in ("weight", "bias"):
                names[f"encoder.layer.{i}.{theirs}.{kind}"] = f"layers.{i}.{ours}.{kind}"
        norms[f"layers.{i}.norm1"] = f"encoder.layer.{i}.attention.output.LayerNorm"
        norms[f"layers.{i}.norm2"] = f"encoder.layer.{i}.output.LayerNorm"
    for ours, theirs in norms.items():
        for kind, their_kind in zip(("weight", "bias"), norm):
            names[f"{theirs}.{their_kind}"] = f"{ours}.{kind}"
    return names


class BertForPreTraining(nn.Module):
    """BERT with its two pretraining heads; the pretraining loss is MLM loss + NSP loss.

    - MLM head: dense + GELU + LayerNorm, then a projection to the vocabulary whose weight **is**
      the word-embedding matrix (plus its own bias): predicts the original token at masked positions.
    - NSP head: a linear layer on the pooled [CLS] vector: IsNext (0) or NotNext (1).

    ``forward(input_ids, token_type_ids=None, attention_mask=None, mlm_labels=None, nsp_labels=None)``
    -> (mlm_logits (B, T, V), nsp_logits (B, 2), loss or None). mlm_labels hold the original id at the
    selected positions and ``IGNORE_INDEX`` elsewhere (as :func:`mask_tokens` returns them).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.bert = BertModel(config)
        H = config.hidden_size
        self.mlm_transform = nn.Sequential(nn.Linear(H, H), nn.GELU(), nn.LayerNorm(H, eps=config.layer_norm_eps))
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.nsp_head = nn.Linear(H, 2)
        init_normal(self.mlm_transform[0])
        init_normal(self.nsp_head)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, mlm_labels=None, nsp_labels=None):
        out = self.bert(input_ids, token_type_ids, attention_mask)
        # tied: the same matrix turns ids into vectors and vectors back into scores over ids
        mlm_logits = self.mlm_transform(out.last_hidden_state) @ self.bert.word_embeddings.weight.T + self.mlm_bias
        nsp_logits = self.nsp_head(out.pooler_output)
        loss = None
        if mlm_labels is not None:
            loss = F.cross_entropy(mlm_logits.flatten(0, 1), mlm_labels.flatten(), ignore_index=IGNORE_INDEX)
        if nsp_labels is not None:
            nsp_loss = F.cross_entropy(nsp_logits, nsp_labels)
            loss = nsp_loss if loss is None else loss + nsp_loss  # the two losses add up
        return mlm_logits, nsp_logits, loss


def mask_tokens(input_ids: torch.Tensor, *, vocab_size: int, mask_token_id: int, special_token_ids,
                mlm_probability: float = 0.15, generator: torch.Generator | None = None):
    """The notes' MLM rule. Returns (inputs, labels), both shaped like ``input_ids``.

    Each non-special position is selected with probability ``mlm_probability`` (15%). Of the
    selected ones, 80% become [MASK], 10% a random non-special token, 10% stay unchanged (so
    the model cannot rely on seeing [MASK], which never occurs when it is fine-tuned). ``labels``
    hold the original id at selected positions and ``IGNORE_INDEX`` elsewhere; ``input_ids`` is
    not modified.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in _checks.ID_DTYPES:
        raise TypeError("input_ids must be an integer tensor")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    special = torch.tensor(sorted(set(int(i) for i in special_token_ids)), dtype=input_ids.dtype)
    if len(special) >= vocab_size:
        raise ValueError("special_token_ids must leave some ordinary tokens in the vocabulary")
    candidates = ~torch.isin(input_ids, special)
    u = torch.rand(input_ids.shape, generator=generator)
    selected = candidates & (u < mlm_probability)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator)  # 80% [MASK], 10% random, 10% unchanged
    inputs = input_ids.clone()
    inputs[selected & (action < 0.8)] = mask_token_id
    randomise = selected & (action >= 0.8) & (action < 0.9)
    all_ids = torch.arange(vocab_size, dtype=input_ids.dtype)
    ordinary = all_ids[~torch.isin(all_ids, special)]  # the non-special ids, in order
    picks = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]
    inputs[randomise] = picks[randomise]
    return inputs, labels


def make_nsp_pairs(documents, *, generator: random.Random | torch.Generator | None = None):
    """Sentence pairs for next-sentence prediction: list of (sentence_a, sentence_b, is_next).

    documents: lists of sentences. For each pair of consecutive sentences (A, B) of a document,
    with probability 0.5 the pair is kept (is_next True, label IsNext), otherwise B is replaced by a
    sentence of a different document (is_next False, label NotNext).
    """
    docs = [list(d) for d in documents]
    if sum(1 for d in docs if d) < 2:
        raise ValueError("make_nsp_pairs needs at least two non-empty documents (NotNext takes B from another one)")
    if isinstance(generator, torch.Generator):
        rng = random.Random(int(torch.randint(0, 2 ** 31, (1,), generator=generator)))
    else:
        rng = generator or random.Random()
    pairs = []
    for d, doc in enumerate(docs):
        for a, b in zip(doc, doc[1:]):
            if rng.random() < 0.5:
                pairs.append((a, b, True))
            else:
                other = rng.randrange(len(docs) - 1)
                other += other >= d  # any document but this one
                while not docs[other]:
                    other = rng.randrange(len(docs))
                    other = other if other != d else (other + 1) % len(docs)
                pairs.append((a, rng.choice(docs[other]), False))
    return pairs


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The average of the real tokens' vectors: (B, T, H), (B, T) -> (B, H). Padding is left out."""
    weights = attention_mask.to(last_hidden_state.dtype)[..., None]  # (B, T, 1)
    return (last_hidden_state * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


@torch.no_grad()
def sentence_embeddings(model: BertModel, tokenizer, sentences, normalize: bool = True) -> torch.Tensor:
    """One vector per sentence, mean-pooled (and L2-normalised), as sentence-transformers does for
    all-MiniLM-L6-v2: (N, H). The cosine similarity of two sentences is then a dot product."""
    batch = tokenizer.encode_batch(list(sentences))  # (N, T) each, padded with [PAD] / 0
    with evaluating(model):
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    pooled = mean_pool(out.last_hidden_state, batch["attention_mask"])
    return F.normalize(pooled, dim=-1) if normalize else pooled
