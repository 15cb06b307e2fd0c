"""BERT: a bidirectional Transformer encoder pretrained with MLM + NSP (notebook 04).

> BERT 采用的是不经过 mask 的多层双向 Transformer  (the notes)
> *BERT is a multi-layer bidirectional Transformer without the mask.*

- :class:`BertModel`: token + segment + position embeddings (summed, LayerNorm, dropout), then
  notebook 02's post-norm :class:`~course_lib.transformer.EncoderLayer` s with GELU and **no causal
  mask** (only padding is hidden), then the pooler (dense + tanh on the [CLS] position).
  ``BertModel.from_pretrained(folder)`` loads a Hugging Face BERT folder, e.g. the bundled
  all-MiniLM-L6-v2 (:func:`course_lib.pretrained.minilm_path`).
- :class:`BertForPreTraining`: the masked-language-model head (tied to the word embeddings)
  and the next-sentence head on [CLS]; the pretraining loss is their sum. ``save_pretrained(folder)``
  writes a folder that ``transformers.BertForPreTraining.from_pretrained`` reads with the same
  logits; ``BertForPreTraining.from_pretrained(folder)`` reads one back, heads included.
- :class:`BertForClassification`: fine-tuning (微调): a linear layer on the pooled [CLS] vector.
- :func:`mask_tokens`: the notes' 15% / 80-10-10 rule. :func:`make_nsp_pairs`: 50% IsNext, 50% NotNext.

Shapes: B batch, T tokens, H hidden size, h heads, V vocabulary size.
"""

from __future__ import annotations

import json
import numbers
import pathlib
import random
import re
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from . import _checks
from .batching import IGNORE_INDEX  # MLM labels at positions that were not selected: no loss there
from .checkpoints import check_model_folder, save_model_folder, write_files_atomically
from .tokenizers import WordPieceTokenizer
from .training import evaluating
from .transformer import EncoderLayer, init_normal

__all__ = ["BertConfig", "BertModel", "BertOutput", "BertForPreTraining", "BertForClassification", "mask_tokens", "make_nsp_pairs",
           "mean_pool", "sentence_embeddings", "hf_pretraining_names", "hf_pretraining_config", "IGNORE_INDEX", "IS_NEXT",
           "NOT_NEXT"]

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
        _checks.check_number("layer_norm_eps", self.layer_norm_eps, positive=True)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size must be divisible by num_attention_heads, got {self.hidden_size} and "
                             f"{self.num_attention_heads}")
        if self.hidden_act not in ("gelu", "relu"):
            raise ValueError(f"hidden_act must be 'gelu' or 'relu', got {self.hidden_act!r}")

    @classmethod
    def from_json(cls, path) -> "BertConfig":
        """Read a Hugging Face ``config.json``, keeping the fields this class knows.

        Refused: a missing file, one that is not a JSON object, a config of another model type.
        """
        path = _checks.check_path("path", path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is not a JSON config file: {e}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path} must hold a JSON object of BERT settings, got a {type(raw).__name__}")
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{path} describes a {raw['model_type']!r} model, not a BERT one")
        try:
            return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})
        except (TypeError, ValueError) as e:
            raise type(e)(f"{path}: {e}") from None

    def to_dict(self) -> dict:
        """The fields as a plain dict, ``{"vocab_size": 30522, ...}``: ``BertConfig(**d)`` rebuilds it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self, path) -> pathlib.Path:
        """Write a Hugging Face ``config.json`` at ``path`` (a file name); returns it as a ``pathlib.Path``.

        The inverse of :meth:`from_json`: the fields of :meth:`to_dict`, plus ``model_type``
        "bert" and the Hugging Face settings whose defaults could differ from this model
        (see :func:`_hf_config`), so that ``transformers.BertConfig.from_pretrained`` reads the
        same model. Written atomically (a temporary file, then renamed over the old one); missing
        folders are created. Refused: ``path`` not a str or path (``TypeError``), a folder or a
        path under a file (``ValueError``).
        """
        path = _checks.check_writable_path("path", path)
        text = json.dumps(_hf_config(self), indent=2, sort_keys=True) + "\n"
        write_files_atomically(path.parent, {path.name: lambda tmp: pathlib.Path(tmp).write_text(text, encoding="utf-8")})
        return path


def _hf_config(config: BertConfig, architectures: list[str] | None = None, dtype: torch.dtype | None = None) -> dict:
    """``config`` as a Hugging Face BERT config.json dict, every setting that changes the computation spelt out.

    ``pad_token_id`` 0: the course's tokenizers put [PAD] (or <pad>) at id 0; transformers uses it
    only as the word embedding's ``padding_idx`` (that row gets no gradient when it trains), never
    in the forward pass. ``position_embedding_type`` "absolute": learned positions, as here.
    """
    hf = {**config.to_dict(), "model_type": "bert", "pad_token_id": 0, "position_embedding_type": "absolute",
          "tie_word_embeddings": True, "is_decoder": False, "add_cross_attention": False, "use_cache": True,
          "classifier_dropout": None, "initializer_range": 0.02}
    if architectures is not None:
        hf["architectures"] = list(architectures)
    if dtype is not None:
        hf["dtype"] = str(dtype).removeprefix("torch.")
    return hf


class BertOutput(NamedTuple):
    last_hidden_state: torch.Tensor   # (B, T, H)
    pooler_output: torch.Tensor       # (B, H): tanh(W [CLS] + b)
    attentions: tuple                 # one (B, h, T, T) per layer; None in training mode (see BertModel)


class BertModel(nn.Module):
    """The BERT encoder. ``forward(input_ids, token_type_ids=None, attention_mask=None) -> BertOutput``.

    attention_mask: (B, T), 1 for real tokens, 0 for padding (no position attends to padding).
    The attention is **bidirectional**: every real token sees every real token, before and after it.

    ``attentions`` holds each layer's weights in eval mode; in training mode the layers run the
    fused attention kernel and the entries are None (``course_lib.transformer.set_need_weights(model,
    True)`` keeps them anyway).

    Refused, naming the argument: input_ids not a (B, T) integer tensor with 1 <= T <=
    max_position_embeddings and ids in [0, vocab_size); token_type_ids not an integer tensor like
    input_ids with ids in [0, type_vocab_size); an attention_mask not an integer or bool tensor of
    0 and 1 like input_ids (a float one may be an additive mask, 0 and -inf: the opposite meaning).
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

    def _check_embed(self, input_ids, token_type_ids=None):
        """The input checks of :meth:`embed`."""
        c = self.config
        _checks.check_token_ids("input_ids", input_ids, c.vocab_size, c.max_position_embeddings,
                                limit="max_position_embeddings")
        if token_type_ids is not None:
            _check_ids_like("token_type_ids", token_type_ids, input_ids, c.type_vocab_size, "type_vocab_size")

    @_checks.checked_by(_check_embed)
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
        self._check_embed(input_ids, token_type_ids)
        if attention_mask is not None:
            _check_attention_mask("attention_mask", attention_mask, tuple(input_ids.shape), "input_ids")

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
        Names and shapes are checked against config.json before the model is built: a file that
        does not fit (another size, a damaged header) is refused without building it.
        """
        path = _checks.check_path("path", path)
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path} must contain config.json and model.safetensors (a BERT folder)")
        config = BertConfig.from_json(path / "config.json")
        file = path / "model.safetensors"
        shapes = _safetensors_shapes(file)
        # BertForPreTraining & co. save the encoder under "bert.", BertModel without a prefix
        prefix = "bert." if any(k.startswith("bert.") for k in shapes) else ""
        layers = {m[1] for k in shapes if (m := re.match(rf"{re.escape(prefix)}encoder\.layer\.(\d+)\.", k))}
        if len(layers) != config.num_hidden_layers:
            raise ValueError(f"{file} holds {len(layers)} encoder layers, but config.json says "
                             f"num_hidden_layers={config.num_hidden_layers}")
        # very old checkpoints call LayerNorm's weight and bias gamma and beta
        norm = ("gamma", "beta") if f"{prefix}embeddings.LayerNorm.gamma" in shapes else ("weight", "bias")
        names = {prefix + theirs: ours for theirs, ours in _bert_names(config.num_hidden_layers, norm).items()}
        _checks.check_checkpoint_keys(f"{file} (BERT)", shapes, names,
                                      skip=rf"{re.escape(prefix)}embeddings\.position_ids|cls\..*")
        with torch.device("meta"):  # the shapes config.json asks for, without allocating them
            expected = {k: tuple(v.shape) for k, v in cls(config).state_dict().items()}
        wrong = [f"{theirs} {shapes[theirs]} (config.json asks for {expected[ours]})"
                 for theirs, ours in names.items() if shapes[theirs] != expected[ours]]
        if wrong:
            raise ValueError(f"{file} does not fit config.json: " + ", ".join(wrong))
        model = cls(config)
        try:
            state = load_file(str(file))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{file} is not a readable safetensors file ({e}): a damaged or truncated download? "
                             "Download or copy it again") from None
        model.load_state_dict({ours: state[theirs] for theirs, ours in names.items()}, strict=True)
        return model.eval()


def _check_ids_like(name: str, ids, ref: torch.Tensor, size: int, size_name: str) -> None:
    """``ids`` must be an integer tensor shaped like input_ids ``ref``, every id in [0, size)."""
    _checks.check_same_shape(name, ids, "input_ids", ref)
    if ids.dtype not in _checks.ID_DTYPES:
        raise TypeError(f"{name} must be an integer tensor (torch.long or torch.int), got dtype {ids.dtype}")
    _checks.check_id_range(name, ids, size, size_name)


def _check_attention_mask(name: str, mask, expected: tuple[int, ...], what: str) -> None:
    """``mask`` must be an integer or bool tensor of shape ``expected`` holding only 1 (real token) and 0 (padding)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with the shape of {what} {tuple(expected)}, "
                        f"1 for real tokens and 0 for padding, got {type(mask).__name__}")
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"{name} must be an integer or bool tensor of 1 (real token) and 0 (padding), got dtype "
                        f"{mask.dtype}; if it holds 1.0 and 0.0, pass mask.long()")
    if tuple(mask.shape) != tuple(expected):
        raise ValueError(f"{name} must have the shape of {what} {tuple(expected)}, got {_checks.shape_of(mask)}")
    if mask.dtype != torch.bool and mask.numel() and ((mask != 0) & (mask != 1)).any():
        raise ValueError(f"{name} must hold only 1 (real token) and 0 (padding), got values from "
                         f"{int(mask.min())} to {int(mask.max())}")


def _safetensors_shapes(file: pathlib.Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's name and shape in a safetensors file, read from its header (no tensor is loaded)."""
    try:
        with safe_open(str(file), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{file} is not a readable safetensors file ({e}): a damaged or truncated download? "
                         "Download or copy it again") from None


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

    The MLM loss is the mean cross-entropy over the selected positions; when none is selected
    (mlm_labels all ``IGNORE_INDEX``: a short batch, now and then) it is 0 with zero gradients, never
    the NaN of a mean over nothing. Refused: mlm_labels not an integer tensor like input_ids of ids
    in [0, vocab_size) or ``IGNORE_INDEX``; nsp_labels not a (B,) integer tensor of IS_NEXT (0) and
    NOT_NEXT (1); what :class:`BertModel` refuses.
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

    def _check_inputs(self, input_ids, token_type_ids=None, attention_mask=None, mlm_labels=None, nsp_labels=None):
        """The input checks of :meth:`forward`."""
        self.bert._check_inputs(input_ids, token_type_ids, attention_mask)
        if mlm_labels is not None:
            _checks.check_same_shape("mlm_labels", mlm_labels, "input_ids", input_ids)
            if mlm_labels.dtype not in _checks.ID_DTYPES:
                raise TypeError(f"mlm_labels must be an integer tensor (torch.long) of token ids and "
                                f"IGNORE_INDEX={IGNORE_INDEX}, got dtype {mlm_labels.dtype}")
            chosen = mlm_labels[mlm_labels != IGNORE_INDEX]
            _checks.check_id_range(f"mlm_labels (besides IGNORE_INDEX={IGNORE_INDEX})", chosen,
                                   self.bert.config.vocab_size)
        if nsp_labels is not None:
            B = input_ids.shape[0]
            if not isinstance(nsp_labels, torch.Tensor) or nsp_labels.dtype not in _checks.ID_DTYPES:
                got = f"dtype {nsp_labels.dtype}" if isinstance(nsp_labels, torch.Tensor) else type(nsp_labels).__name__
                raise TypeError(f"nsp_labels must be an integer tensor (B,) of IS_NEXT={IS_NEXT} and "
                                f"NOT_NEXT={NOT_NEXT}, got {got}")
            if tuple(nsp_labels.shape) != (B,):
                raise ValueError(f"nsp_labels must have shape (B,) = ({B},), one label per row of input_ids, "
                                 f"got {_checks.shape_of(nsp_labels)}")
            if nsp_labels.numel() and ((nsp_labels != IS_NEXT) & (nsp_labels != NOT_NEXT)).any():
                raise ValueError(f"nsp_labels must hold IS_NEXT={IS_NEXT} and NOT_NEXT={NOT_NEXT} only, "
                                 f"got values from {int(nsp_labels.min())} to {int(nsp_labels.max())}")

    @_checks.checked_by(_check_inputs)
    def forward(self, input_ids, token_type_ids=None, attention_mask=None, mlm_labels=None, nsp_labels=None):
        out = self.bert(input_ids, token_type_ids, attention_mask)
        # tied: the same matrix turns ids into vectors and vectors back into scores over ids
        mlm_logits = self.mlm_transform(out.last_hidden_state) @ self.bert.word_embeddings.weight.T + self.mlm_bias
        nsp_logits = self.nsp_head(out.pooler_output)
        loss = None
        if mlm_labels is not None:
            if (mlm_labels != IGNORE_INDEX).any():
                loss = F.cross_entropy(mlm_logits.flatten(0, 1), mlm_labels.flatten(), ignore_index=IGNORE_INDEX)
            else:  # nothing selected: a sum over no position is 0 (a mean would be 0 / 0 = NaN)
                loss = F.cross_entropy(mlm_logits.flatten(0, 1), mlm_labels.flatten(), ignore_index=IGNORE_INDEX,
                                       reduction="sum")
        if nsp_labels is not None:
            nsp_loss = F.cross_entropy(nsp_logits, nsp_labels)
            loss = nsp_loss if loss is None else loss + nsp_loss  # the two losses add up
        return mlm_logits, nsp_logits, loss

    # --- Hugging Face checkpoints ------------------------------------------------------------
    def save_pretrained(self, path) -> pathlib.Path:
        """Save as a Hugging Face ``BertForPreTraining`` folder: ``path/config.json`` + ``path/model.safetensors``.

        ``transformers.BertForPreTraining.from_pretrained(path)`` then gives the same
        ``prediction_logits`` and ``seq_relationship_logits`` as this model's MLM and NSP logits
        (eval mode), and :meth:`from_pretrained` gives back the same weights. The tensors get
        transformers' names, as its ``save_pretrained`` writes them: the encoder under ``bert.``,
        the heads under ``cls.`` (``cls.predictions.transform.dense`` / ``.LayerNorm``,
        ``cls.predictions.bias``, ``cls.seq_relationship``); the MLM decoder's weight (the word
        embeddings, tied) and bias (``cls.predictions.bias``, tied) are not written twice.
        config.json: :meth:`BertConfig.to_json`'s fields with ``architectures``
        ["BertForPreTraining"]; ``pad_token_id`` 0 (the course's [PAD] id).

        Each file is written to a temporary file in the folder, then renamed over the old one:
        an interrupted save leaves the folder's previous files whole; other files (a vocabulary,
        logs) are left alone. The folder is created with its parents if missing. Refused:
        ``path`` not a str or path (``TypeError``), an existing file or an unwritable folder
        (``ValueError`` naming it), a config with ``hidden_act`` "relu" (``ValueError``: this
        model's MLM head always uses GELU, transformers' would use ReLU). Returns the folder.
        """
        folder = check_model_folder("path", path)
        config = self.bert.config
        _check_gelu_head(config, "cannot be saved for transformers")
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        tensors = {f"bert.{theirs}": state[f"bert.{ours}"]
                   for theirs, ours in _bert_names(config.num_hidden_layers).items()}
        tensors.update({theirs: state[ours] for theirs, ours in _bert_head_names().items()})
        hf = _hf_config(config, ["BertForPreTraining"], self.bert.word_embeddings.weight.dtype)
        return save_model_folder(folder, hf, tensors)

    @classmethod
    def from_pretrained(cls, path) -> "BertForPreTraining":
        """Load a Hugging Face ``BertForPreTraining`` folder (config.json + model.safetensors), in eval mode.

        The encoder is loaded by :meth:`BertModel.from_pretrained`, with all its checks; the heads
        from the ``cls.*`` tensors: ``cls.predictions.transform.dense`` -> ``mlm_transform[0]``,
        ``cls.predictions.transform.LayerNorm`` -> ``mlm_transform[2]``, ``cls.predictions.bias``
        -> ``mlm_bias``, ``cls.seq_relationship`` -> ``nsp_head``. Skipped: the tied copies
        ``cls.predictions.decoder.weight`` (the word embeddings) and ``.bias`` that older files
        hold. The heads' names and shapes are checked against config.json before anything loads.

        Refused (``ValueError`` naming the file and the problem): a folder without the heads (a
        ``BertModel`` checkpoint: use :meth:`BertModel.from_pretrained`), a missing, unknown or
        misshapen head tensor, ``hidden_act`` other than "gelu" (the MLM head here always uses
        GELU), and whatever :meth:`BertModel.from_pretrained` refuses. ``path`` must be a str or
        a path (``TypeError``); a folder without the two files raises ``FileNotFoundError``.
        """
        path = _checks.check_path("path", path)
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"{path} must contain config.json and model.safetensors (a BERT folder)")
        config = BertConfig.from_json(path / "config.json")
        _check_gelu_head(config, f"in {path / 'config.json'} cannot be loaded into BertForPreTraining")
        file = path / "model.safetensors"
        shapes = _safetensors_shapes(file)
        found = {k for k in shapes if k.startswith("cls.")}
        if not found:
            raise ValueError(f"{file} holds no pretraining heads (no cls.* tensor): an encoder-only checkpoint? "
                             "Load it with BertModel.from_pretrained")
        # very old checkpoints call LayerNorm's weight and bias gamma and beta
        old_names = any(k.endswith("embeddings.LayerNorm.gamma") for k in shapes)
        norm = ("gamma", "beta") if old_names else ("weight", "bias")
        heads, skip = _bert_head_names(norm), r"cls\.predictions\.decoder\.(weight|bias)"
        if "cls.predictions.bias" not in found and "cls.predictions.decoder.bias" in found:
            heads["cls.predictions.decoder.bias"] = heads.pop("cls.predictions.bias")  # the tied copy only
            skip = r"cls\.predictions\.decoder\.weight"
        _checks.check_checkpoint_keys(f"{file} (BERT pretraining heads)", found, heads, skip=skip)
        H, V = config.hidden_size, config.vocab_size
        expected = {"mlm_transform.0.weight": (H, H), "mlm_transform.0.bias": (H,), "mlm_transform.2.weight": (H,),
                    "mlm_transform.2.bias": (H,), "mlm_bias": (V,), "nsp_head.weight": (2, H), "nsp_head.bias": (2,)}
        wrong = [f"{theirs} {shapes[theirs]} (config.json asks for {expected[ours]})"
                 for theirs, ours in heads.items() if shapes[theirs] != expected[ours]]
        if wrong:
            raise ValueError(f"{file} does not fit config.json: " + ", ".join(wrong))
        bert = BertModel.from_pretrained(path)
        try:
            with safe_open(str(file), framework="pt") as f:
                loaded = {ours: f.get_tensor(theirs) for theirs, ours in heads.items()}
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{file} is not a readable safetensors file ({e}): a damaged or truncated download? "
                             "Download or copy it again") from None
        with torch.device("meta"):  # the heads' shapes only: the encoder is the one just loaded
            model = cls(config)
        model.bert = bert
        dtype = bert.word_embeddings.weight.dtype  # a float16 file loads into float32 heads, as the encoder does
        state = {f"bert.{k}": v for k, v in bert.state_dict().items()}
        state.update({k: v.to(dtype) for k, v in loaded.items()})
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()


def _bert_head_names(norm: tuple[str, str] = ("weight", "bias")) -> dict[str, str]:
    """Hugging Face BertForPreTraining head names -> :class:`BertForPreTraining`'s; ``norm``: LayerNorm's two names."""
    names = {"cls.predictions.transform.dense.weight": "mlm_transform.0.weight",
             "cls.predictions.transform.dense.bias": "mlm_transform.0.bias",
             "cls.predictions.bias": "mlm_bias",
             "cls.seq_relationship.weight": "nsp_head.weight", "cls.seq_relationship.bias": "nsp_head.bias"}
    for kind, their_kind in zip(("weight", "bias"), norm):
        names[f"cls.predictions.transform.LayerNorm.{their_kind}"] = f"mlm_transform.2.{kind}"
    return names


def _check_gelu_head(config: BertConfig, what: str) -> None:
    """transformers' MLM head uses ``hidden_act``, this one always GELU: they agree only for "gelu"."""
    if config.hidden_act != "gelu":
        raise ValueError(f"a BERT with hidden_act={config.hidden_act!r} {what}: BertForPreTraining's MLM head "
                         "always uses GELU, transformers' uses hidden_act, so their predictions would differ")


def hf_pretraining_names(num_layers: int) -> dict[str, str]:
    """transformers' ``BertForPreTraining`` tensor names -> :class:`BertForPreTraining`'s, for a model with
    ``num_layers`` encoder layers (the tied copies ``cls.predictions.decoder.*`` left out)."""
    names = {f"bert.{theirs}": f"bert.{ours}" for theirs, ours in _bert_names(num_layers).items()}
    names.update(_bert_head_names())
    return names


def hf_pretraining_config(config: BertConfig) -> dict:
    """``config`` as the fields of a transformers ``BertConfig`` that builds the same BertForPreTraining
    (every setting spelt out); ``ValueError`` for a config whose MLM head transformers computes differently."""
    _check_gelu_head(config, "has no twin in transformers")
    return _hf_config(config, ["BertForPreTraining"])


class BertForClassification(nn.Module):
    """Fine-tuning BERT on a labelled task (微调): a new linear layer on the pooled [CLS] vector,

        P(y | A [, B]) = softmax(W_y tanh(W_p h_[CLS] + b_p) + b_y),

    the pooler (W_p, trained by NSP during pretraining) included, as the BERT paper and
    ``transformers.BertForSequenceClassification`` do. Every weight is trained.

    Args: bert, a :class:`BertModel` (pretrained, e.g. ``BertForPreTraining(...).bert``, or fresh);
    num_classes. ``forward(input_ids, token_type_ids=None, attention_mask=None, labels=None)``
    -> (logits (B, C), loss or None); labels an integer tensor (B,) of classes in [0, num_classes).
    """

    def __init__(self, bert: BertModel, num_classes: int):
        super().__init__()
        if not isinstance(bert, BertModel):
            raise TypeError(f"bert must be a BertModel (e.g. BertForPreTraining(config).bert), got {type(bert).__name__}")
        _checks.check_positive_int("num_classes", num_classes)
        self.bert = bert
        self.dropout = nn.Dropout(bert.config.hidden_dropout_prob)
        self.head = nn.Linear(bert.config.hidden_size, num_classes)   # W_y, b_y
        init_normal(self.head)

    def _check_inputs(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        """The input checks of :meth:`forward`."""
        self.bert._check_inputs(input_ids, token_type_ids, attention_mask)
        if labels is not None:
            B, C = input_ids.shape[0], self.head.out_features
            if not isinstance(labels, torch.Tensor) or labels.dtype not in _checks.ID_DTYPES:
                got = f"dtype {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
                raise TypeError(f"labels must be an integer tensor (B,) of classes, got {got}")
            if tuple(labels.shape) != (B,):
                raise ValueError(f"labels must have shape (B,) = ({B},), got {_checks.shape_of(labels)}")
            if labels.numel() and (labels.min() < 0 or labels.max() >= C):
                raise ValueError(f"labels must be in [0, num_classes={C}), got values from {int(labels.min())} "
                                 f"to {int(labels.max())}")

    @_checks.checked_by(_check_inputs)
    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        pooled = self.bert(input_ids, token_type_ids, attention_mask).pooler_output   # (B, H): tanh(W_p h_[CLS] + b_p)
        logits = self.head(self.dropout(pooled))                                      # (B, C)
        loss = None if labels is None else F.cross_entropy(logits, labels.long())
        return logits, loss


def mask_tokens(input_ids: torch.Tensor, *, vocab_size: int, mask_token_id: int, special_token_ids,
                mlm_probability: float = 0.15, generator: torch.Generator | None = None):
    """The notes' MLM rule. Returns (inputs, labels), both shaped like ``input_ids``.

    Each non-special position is selected with probability ``mlm_probability`` (15%). Of the
    selected ones, 80% become [MASK], 10% a random non-special token, 10% stay unchanged (so
    the model cannot rely on seeing [MASK], which never occurs when it is fine-tuned). ``labels``
    hold the original id at selected positions and ``IGNORE_INDEX`` elsewhere; ``input_ids`` is
    not modified. A tensor on a GPU is masked on the CPU (where ``generator`` draws) and the
    results moved back to it.

    Refused, naming the argument: input_ids not an integer tensor of ids in [0, vocab_size); a
    vocab_size not a positive int; a mask_token_id or special ids not ints in [0, vocab_size);
    special ids covering the whole vocabulary; an mlm_probability not in (0, 1); a generator not a
    CPU torch.Generator.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in _checks.ID_DTYPES:
        got = f"dtype {input_ids.dtype}" if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise TypeError(f"input_ids must be an integer tensor of token ids (torch.long or torch.int), got {got}")
    _checks.check_positive_int("vocab_size", vocab_size)
    _checks.check_id_range("input_ids", input_ids, vocab_size)
    _checks.check_int("mask_token_id", mask_token_id, vocab_size)
    special_list = _id_list("special_token_ids", special_token_ids, vocab_size)
    if isinstance(mlm_probability, bool) or not isinstance(mlm_probability, numbers.Real):
        raise TypeError(f"mlm_probability must be a float in (0, 1), e.g. 0.15, got {mlm_probability!r}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    _checks.check_generator("generator", generator)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator (the masks are drawn on the CPU), "
                         f"got one on {generator.device}")
    device = input_ids.device
    input_ids = input_ids.cpu()  # the same tensor when it is on the CPU already: never written to
    special = torch.tensor(sorted(set(special_list)), dtype=input_ids.dtype)
    if len(special) >= vocab_size:
        raise ValueError(f"special_token_ids must leave some ordinary tokens in the vocabulary: they cover all "
                         f"vocab_size={vocab_size} ids")
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
    return inputs.to(device), labels.to(device)


def _id_list(name: str, ids, size: int) -> list[int]:
    """``ids`` (a list, tuple, set or 1-D integer tensor of token ids in [0, size)) as a list of ints."""
    if isinstance(ids, torch.Tensor):
        if ids.dtype not in _checks.ID_DTYPES or ids.dim() > 1:
            raise TypeError(f"{name} must be a list of int token ids (or a 1-D integer tensor), "
                            f"got a tensor of shape {_checks.shape_of(ids)} and dtype {ids.dtype}")
        _checks.check_id_range(name, ids, size)
        return ids.reshape(-1).tolist()
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"{name} must be a list of int token ids, e.g. tokenizer.special_ids, got {ids!r}")
    out = list(ids)
    for i, value in enumerate(out):
        _checks.check_int(f"{name}[{i}]", value, size)
    return [int(v) for v in out]


def make_nsp_pairs(documents, *, generator: random.Random | torch.Generator | None = None):
    """Sentence pairs for next-sentence prediction: list of (sentence_a, sentence_b, is_next).

    documents: lists of sentences. For each pair of consecutive sentences (A, B) of a document,
    with probability 0.5 the pair is kept (is_next True, label IsNext), otherwise B is replaced by a
    sentence of a different document (is_next False, label NotNext).

    Refused: documents not a list of lists of str (a list of strings would pair up characters);
    fewer than two non-empty documents (NotNext takes B from another one); no document of two
    sentences (no pair to make); a generator not a random.Random, a torch.Generator or None.
    """
    docs = _documents(documents)
    if sum(1 for d in docs if d) < 2:
        raise ValueError(f"documents must hold at least two non-empty documents (NotNext takes B from another one), "
                         f"got {len(docs)} of which {sum(1 for d in docs if d)} non-empty")
    if all(len(d) < 2 for d in docs):
        raise ValueError("documents must have at least one document of two or more sentences: a pair is two "
                         "consecutive sentences of one document")
    if isinstance(generator, torch.Generator):
        rng = random.Random(int(torch.randint(0, 2 ** 31, (1,), generator=generator)))
    elif generator is None or isinstance(generator, random.Random):
        rng = generator or random.Random()
    else:
        raise TypeError(f"generator must be a random.Random, a torch.Generator or None (for a seed, pass "
                        f"random.Random(seed)), got {generator!r}")
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


def _documents(documents) -> list[list[str]]:
    """``documents`` as a list of lists of sentences, each a str; anything else is refused, naming it."""
    hint = "a list of documents, each a list of sentences (str), e.g. [['A cat sat.', 'It slept.'], ['Hi.']]"
    if isinstance(documents, (str, bytes)) or not hasattr(documents, "__iter__"):
        raise TypeError(f"documents must be {hint}, got {type(documents).__name__}")
    docs = []
    for i, doc in enumerate(documents):
        if isinstance(doc, (str, bytes)) or not hasattr(doc, "__iter__"):
            raise TypeError(f"documents[{i}] must be a list of sentences (str), got {type(doc).__name__} {doc!r:.40}: "
                            f"documents must be {hint}")
        doc = list(doc)
        for j, sentence in enumerate(doc):
            if not isinstance(sentence, str):
                raise TypeError(f"documents[{i}][{j}] must be a sentence (str), got {type(sentence).__name__}")
        docs.append(doc)
    return docs


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The average of the real tokens' vectors: (B, T, H), (B, T) -> (B, H). Padding is left out.

    A row with no real token gives a zero vector. Refused: a last_hidden_state that is not a float
    (B, T, H) tensor, an attention_mask that is not a (B, T) integer or bool tensor of 0 and 1.
    """
    _checks.check_tensor("last_hidden_state", last_hidden_state, 3, "(B, T, H)")
    if last_hidden_state.dim() != 3:
        raise ValueError(f"last_hidden_state must have shape (B, T, H), got {_checks.shape_of(last_hidden_state)}")
    _check_attention_mask("attention_mask", attention_mask, tuple(last_hidden_state.shape[:2]),
                          "last_hidden_state's (B, T)")
    weights = attention_mask.to(last_hidden_state.dtype)[..., None]  # (B, T, 1)
    return (last_hidden_state * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


@torch.no_grad()
def sentence_embeddings(model: BertModel, tokenizer, sentences, normalize: bool = True) -> torch.Tensor:
    """One vector per sentence, mean-pooled (and L2-normalised), as sentence-transformers does for
    all-MiniLM-L6-v2: (N, H). The cosine similarity of two sentences is then a dot product.

    Refused: a model not a BertModel; a tokenizer not a WordPieceTokenizer, or larger than the
    model's vocabulary; sentences not a non-empty list of str (a single str would give a vector
    per character); a sentence longer than max_position_embeddings tokens; a non-bool normalize.
    """
    if not isinstance(model, BertModel):
        hint = ": pass its .bert" if isinstance(model, BertForPreTraining) else ""
        raise TypeError(f"model must be a BertModel (e.g. BertModel.from_pretrained(minilm_path())), "
                        f"got {type(model).__name__}{hint}")
    if not isinstance(tokenizer, WordPieceTokenizer):
        raise TypeError(f"tokenizer must be a WordPieceTokenizer (e.g. WordPieceTokenizer.from_file(minilm_path() / "
                        f"'vocab.txt')), got {type(tokenizer).__name__}")
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the model's vocab_size="
                         f"{model.config.vocab_size}: use the tokenizer that belongs to the model")
    if isinstance(sentences, str) or not hasattr(sentences, "__iter__"):
        raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}"
                        + (" (one vector per character); wrap it: [sentence]" if isinstance(sentences, str) else ""))
    sentences = list(sentences)
    if not sentences:
        raise ValueError("sentences must hold at least one sentence, got none")
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f"sentences[{i}] must be a str, got {type(sentence).__name__}")
    _checks.check_bool("normalize", normalize)
    batch = tokenizer.encode_batch(sentences)  # (N, T) each, padded with [PAD] / 0
    lengths = batch["attention_mask"].sum(1)
    if batch["input_ids"].shape[1] > model.config.max_position_embeddings:
        i = int(lengths.argmax())
        raise ValueError(f"sentences[{i}] is {int(lengths[i])} tokens long, more than the model's "
                         f"max_position_embeddings={model.config.max_position_embeddings}: shorten it")
    with evaluating(model):
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    pooled = mean_pool(out.last_hidden_state, batch["attention_mask"])
    return F.normalize(pooled, dim=-1) if normalize else pooled
