"""The same BERT in two codes: ``course_lib.bert.BertForPreTraining`` and ``transformers.BertForPreTraining``.

- :func:`transformers_config`: a course :class:`~course_lib.bert.BertConfig` as a ``transformers.BertConfig``.
- :func:`weight_names`: the public name map, transformers' tensor name -> the course's (in memory, no file).
- :func:`to_transformers` / :func:`from_transformers`: copy the weights one way and the other; the
  two models then give the same MLM and NSP logits (eval mode).
- :func:`parameter_table`: the two models' parameters side by side (name, name, shape, count).

Shapes: H hidden size, V vocabulary size, L layers.
"""

from __future__ import annotations

import torch
import transformers

from ..bert import BertConfig, BertForPreTraining, hf_pretraining_config, hf_pretraining_names

__all__ = ["transformers_config", "weight_names", "to_transformers", "from_transformers", "parameter_table",
           "TIED_NAMES"]

# transformers keeps these two entries in its state_dict, but they are the same tensors as the word
# embeddings and cls.predictions.bias (tied), so they are not separate weights to copy.
TIED_NAMES = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def transformers_config(config: BertConfig) -> transformers.BertConfig:
    """``config`` as a ``transformers.BertConfig`` that builds the same model (every setting spelt out)."""
    if not isinstance(config, BertConfig):
        raise TypeError(f"config must be a course_lib.bert.BertConfig, got {type(config).__name__}")
    return transformers.BertConfig(**hf_pretraining_config(config))


def weight_names(num_layers: int) -> dict[str, str]:
    """transformers' ``BertForPreTraining`` tensor names -> ``course_lib.bert.BertForPreTraining``'s, for
    ``num_layers`` encoder layers: ``{"bert.embeddings.word_embeddings.weight": "bert.word_embeddings.weight", ...}``.

    One entry per weight tensor; the tied copies (:data:`TIED_NAMES`) are left out. Both sides
    hold the same tensor shapes (a Linear's weight is (out, in) in both codes), so a copy needs
    no transpose.
    """
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int (config.num_hidden_layers), got {num_layers!r}")
    return hf_pretraining_names(num_layers)


def _check_pair(ours, theirs) -> None:
    if not isinstance(ours, BertForPreTraining):
        raise TypeError(f"ours must be a course_lib.bert.BertForPreTraining, got {type(ours).__name__}")
    if not isinstance(theirs, transformers.BertForPreTraining):
        raise TypeError(f"theirs must be a transformers.BertForPreTraining, got {type(theirs).__name__}")


def _copy(src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor], pairs, what: str) -> None:
    """Copy src[a] into dst[b] for each (a, b) in pairs, in place, after checking every shape."""
    wrong = [f"{a} {tuple(src[a].shape)} -> {b} {tuple(dst[b].shape)}" for a, b in pairs
             if src[a].shape != dst[b].shape]
    if wrong:
        raise ValueError(f"{what}: the two models do not have the same shapes (different configs?): "
                         + ", ".join(wrong[:3]))
    with torch.no_grad():
        for a, b in pairs:
            dst[b].copy_(src[a])


def to_transformers(model: BertForPreTraining, hf_model: transformers.BertForPreTraining | None = None
                    ) -> transformers.BertForPreTraining:
    """Copy the course model's weights into a ``transformers.BertForPreTraining`` (built from
    :func:`transformers_config` when ``hf_model`` is None) and return it, in eval mode.

    In memory: no file is written. ``hf_model`` given must have the same config (``ValueError``
    naming the first tensors whose shapes differ otherwise).
    """
    if not isinstance(model, BertForPreTraining):
        raise TypeError(f"model must be a course_lib.bert.BertForPreTraining, got {type(model).__name__}")
    if hf_model is None:
        hf_model = transformers.BertForPreTraining(transformers_config(model.bert.config))
    _check_pair(model, hf_model)
    names = weight_names(model.bert.config.num_hidden_layers)
    ours, theirs = model.state_dict(), hf_model.state_dict()
    _copy(ours, theirs, [(o, t) for t, o in names.items()], "to_transformers")
    return hf_model.eval()


def from_transformers(hf_model: transformers.BertForPreTraining, model: BertForPreTraining | None = None
                      ) -> BertForPreTraining:
    """Copy a ``transformers.BertForPreTraining``'s weights into the course's ``BertForPreTraining``
    (built from its config when ``model`` is None) and return it, in eval mode. In memory."""
    if not isinstance(hf_model, transformers.BertForPreTraining):
        raise TypeError(f"hf_model must be a transformers.BertForPreTraining, got {type(hf_model).__name__}")
    if model is None:
        c = hf_model.config
        config = BertConfig(**{f: getattr(c, f) for f in BertConfig().to_dict()})
        model = BertForPreTraining(config)
    _check_pair(model, hf_model)
    names = weight_names(model.bert.config.num_hidden_layers)
    _copy(hf_model.state_dict(), model.state_dict(), list(names.items()), "from_transformers")
    return model.eval()


def parameter_table(model: BertForPreTraining, hf_model: transformers.BertForPreTraining) -> list[tuple]:
    """The two models' weights side by side: a list of (transformers' name, the course's name,
    shape, number of numbers), in transformers' order, then a last row ("total", "total", None, count)
    whose count is the same for both (asserted)."""
    _check_pair(model, hf_model)
    names = weight_names(model.bert.config.num_hidden_layers)
    theirs = dict(hf_model.named_parameters())   # named_parameters lists a tied tensor once
    ours = dict(model.named_parameters())
    if set(theirs) != set(names) or set(ours) != set(names.values()):
        raise ValueError("the two models' parameter names do not follow weight_names: different layer counts?")
    rows = [(t, names[t], tuple(p.shape), p.numel()) for t, p in theirs.items()]
    total_theirs, total_ours = sum(r[3] for r in rows), sum(p.numel() for p in ours.values())
    if total_theirs != total_ours:
        raise ValueError(f"the two models have {total_theirs:,} and {total_ours:,} parameters")
    return rows + [("total", "total", None, total_theirs)]
