"""The story world's MLM + NSP pairs as a plain ``torch.utils.data.Dataset`` for ``transformers.Trainer``.

Why not the ``datasets`` library: it stores tables in Apache Arrow (pyarrow, with pandas beside
it), which pays off for corpora larger than memory, streaming from the Hub and cached
``map``-preprocessing. Our pairs are a list of a few tens of thousands of short id lists, made in
a second; ``Trainer`` takes any ``torch.utils.data.Dataset`` (``__len__`` + ``__getitem__``
returning a dict), so the lesson stays what notebook 05 taught, with nothing more to install.

- :class:`PretrainingPairs`: item i is ``{"input_ids", "token_type_ids", "next_sentence_label"}``
  of one pair of :func:`course_lib.tasks.bert.nsp_examples`, unpadded and unmasked: a collator
  (``DataCollatorForLanguageModeling``) pads a batch, adds ``attention_mask`` and draws the
  masking afresh for every batch, giving the dict ``transformers.BertForPreTraining`` wants:
  input_ids, token_type_ids, attention_mask, labels (MLM), next_sentence_label (NSP).
- :func:`transformers_batch`: a :func:`course_lib.tasks.bert.bert_batch` dict under transformers'
  names (``mlm_labels`` -> ``labels``, ``nsp_labels`` -> ``next_sentence_label``).

Lives in a module (not a notebook) so that DataLoader workers can import it.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..bert import IS_NEXT, NOT_NEXT

__all__ = ["PretrainingPairs", "transformers_batch"]


class PretrainingPairs(Dataset):
    """``examples``: the list of (input_ids, token_type_ids, is_next) that ``nsp_examples`` returns.

    ``dataset[i]`` -> {"input_ids": list[int] (T_i,), "token_type_ids": list[int] (T_i,),
    "next_sentence_label": int, IS_NEXT (0) or NOT_NEXT (1)}.
    """

    def __init__(self, examples):
        if isinstance(examples, (str, bytes)) or not hasattr(examples, "__len__"):
            raise TypeError(f"examples must be the list nsp_examples returns, got {type(examples).__name__}")
        for i, example in enumerate(examples):
            if not (isinstance(example, (tuple, list)) and len(example) == 3):
                raise TypeError(f"examples[{i}] must be (input_ids, token_type_ids, is_next) as nsp_examples makes "
                                f"them, got {type(example).__name__}")
            ids, types, _ = example
            if len(ids) != len(types):
                raise ValueError(f"examples[{i}]: input_ids has {len(ids)} ids but token_type_ids {len(types)}")
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        ids, types, is_next = self.examples[index]
        return {"input_ids": list(ids), "token_type_ids": list(types),
                "next_sentence_label": IS_NEXT if is_next else NOT_NEXT}


def transformers_batch(batch: dict) -> dict[str, torch.Tensor]:
    """A :func:`~course_lib.tasks.bert.bert_batch` dict with transformers' key names:
    input_ids, token_type_ids, attention_mask (B, T), labels (B, T), next_sentence_label (B,)."""
    if not isinstance(batch, dict) or not {"input_ids", "mlm_labels", "nsp_labels"} <= set(batch):
        raise TypeError("batch must be the dict bert_batch returns (input_ids, token_type_ids, attention_mask, "
                        f"mlm_labels, nsp_labels), got {type(batch).__name__}")
    rename = {"mlm_labels": "labels", "nsp_labels": "next_sentence_label"}
    return {rename.get(k, k): v for k, v in batch.items()}
