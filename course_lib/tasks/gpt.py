"""Recipes of notebooks 03 and 04: pretrain on the story world (GPT, then BERT), fine-tune on few labels.

- :func:`lm_batches` / :func:`evaluate_lm`: stories as ``<bos> w_1 ... w_n <eos>`` rows, padded;
  the loss counts every predicted token (the words and ``<eos>``), as :func:`entropy_floor` does.
- :func:`pretrain_gpt`: the course's training loop on those batches.
- :func:`finetune_classifier`: the notes' supervised fine-tuning with loss L3 = L2 + λ L1, from a
  pretrained GPT or from scratch, and :func:`classifier_accuracy`.
- BERT (notebook 04): :func:`story_tokenizer`, :func:`nsp_examples`, :func:`bert_batch`,
  :func:`pretrain_bert`, :func:`evaluate_bert`: MLM + NSP on pairs of story sentences.

Shapes: B batch, T tokens per row (<= block_size), V vocabulary size.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator, Sequence

import torch

from .attention import _shape
from .gpt import GPT, IGNORE_INDEX, GPTConfig, GPTForClassification
from .tokenizers import WordVocab

__all__ = ["encode_stories", "lm_batches", "text_windows", "lm_loss", "evaluate_lm", "pretrain_gpt",
           "encode_examples", "finetune_classifier", "classifier_accuracy", "story_tokenizer", "nsp_examples",
           "bert_batch", "bert_loss", "evaluate_bert", "pretrain_bert"]


def encode_stories(texts: Sequence[Sequence[str]], vocab: WordVocab, block_size: int):
    """Word lists -> inputs (B, T) = <bos> w_1..w_n and targets (B, T) = w_1..w_n <eos>, padded.

    Padding is ``vocab.pad_id`` in the inputs and ``IGNORE_INDEX`` in the targets (no loss there).
    """
    rows = [vocab.encode(words, add_bos=True, add_eos=True) for words in texts]
    longest = max(len(r) for r in rows) - 1
    if longest > block_size:
        raise ValueError(f"a text has {longest} tokens with <bos>, more than block_size={block_size}")
    inputs = torch.full((len(rows), longest), vocab.pad_id, dtype=torch.long)
    targets = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
    for i, r in enumerate(rows):
        inputs[i, :len(r) - 1] = torch.tensor(r[:-1])
        targets[i, :len(r) - 1] = torch.tensor(r[1:])
    return inputs, targets


def lm_batches(texts: Sequence[Sequence[str]], vocab: WordVocab, block_size: int, batch_size: int = 32,
               seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches (inputs, targets) of whole stories, reshuffled every epoch."""
    from .training import epoch_batches

    return epoch_batches(texts, batch_size, lambda chunk: encode_stories(chunk, vocab, block_size), seed)


def text_windows(ids: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator):
    """One batch of random windows from a long token stream (your own text): (inputs, targets), each (B, T).

    ids: (N,) token ids, N > block_size; targets are the inputs shifted by one token.
    """
    if ids.dim() != 1 or len(ids) <= block_size:
        raise ValueError(f"ids must be a 1-D stream longer than block_size={block_size}, got {_shape(ids)}")
    starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)
    windows = torch.stack([ids[s:s + block_size + 1] for s in starts.tolist()])  # (B, T + 1)
    return windows[:, :-1], windows[:, 1:]


def lm_loss(model: GPT, batch) -> torch.Tensor:
    """The mean negative log-likelihood per predicted token, -L1 / tokens."""
    inputs, targets = batch
    return model(inputs, targets)[1]


@torch.no_grad()
def evaluate_lm(model: GPT, texts: Sequence[Sequence[str]], vocab: WordVocab, batch_size: int = 256) -> float:
    """Cross-entropy in nats per predicted token over all ``texts`` (directly comparable to the floor)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for i in range(0, len(texts), batch_size):
        inputs, targets = encode_stories(texts[i:i + batch_size], vocab, model.config.block_size)
        logits, _ = model(inputs.to(device))
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(),
                                                ignore_index=IGNORE_INDEX, reduction="sum")
        total += nll.item()
        count += int((targets != IGNORE_INDEX).sum())
    model.train(was_training)
    return total / count


def pretrain_gpt(train_texts, validation_texts, vocab: WordVocab, config: GPTConfig, *, steps: int = 1000,
                 batch_size: int = 32, lr: float = 3e-3, seed: int = 0, eval_every: int | None = None,
                 live_plot=None, progress: bool = True):
    """Build a GPT and pretrain it with the language-model loss; returns (model, history).

    AdamW (weight decay 0.01) with warm-up and cosine decay; validation loss (nats per token)
    every ``eval_every`` steps.
    """
    from .training import set_seed, train

    set_seed(seed)
    model = GPT(config)
    history = train(model, lm_batches(train_texts, vocab, config.block_size, batch_size, seed=seed), lm_loss,
                    steps=steps, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed, eval_every=eval_every,
                    eval_fn=lambda m: {"val_loss": evaluate_lm(m, validation_texts, vocab)},
                    live_plot=live_plot, progress=progress, desc="pretraining GPT")
    return model, history


def encode_examples(texts: Sequence[Sequence[str]], vocab: WordVocab):
    """Labelled texts -> ids (B, T) = <bos> w_1..w_n (padded) and lengths (B,)."""
    rows = [vocab.encode(words, add_bos=True) for words in texts]
    ids = torch.full((len(rows), max(map(len, rows))), vocab.pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return ids, torch.tensor([len(r) for r in rows])


def finetune_classifier(examples, vocab: WordVocab, *, pretrained: GPT | None = None, config: GPTConfig | None = None,
                        lm_weight: float = 0.0, num_classes: int = 2, steps: int = 150, batch_size: int = 16,
                        lr: float = 1e-3, seed: int = 0) -> GPTForClassification:
    """Fine-tune on labelled ``examples`` (objects with ``.words`` and ``.label``) with L3 = L2 + λ L1.

    ``pretrained``: a GPT to start from (copied, the original is untouched); otherwise a fresh GPT
    of ``config`` (from scratch). Every parameter is trained, the new head W_y too.
    """
    from .training import set_seed, train

    if (pretrained is None) == (config is None):
        raise ValueError("give exactly one of pretrained (fine-tune) or config (from scratch)")
    set_seed(seed)
    gpt = copy.deepcopy(pretrained) if pretrained is not None else GPT(config)
    model = GPTForClassification(gpt, num_classes)
    ids, lengths = encode_examples([e.words for e in examples], vocab)
    labels = torch.tensor([e.label for e in examples])
    g = torch.Generator().manual_seed(seed)
    size = min(batch_size, len(examples))

    def batch(step):
        pick = torch.randperm(len(examples), generator=g)[:size]
        return ids[pick], labels[pick], lengths[pick]

    def loss_fn(m, b):
        return m(b[0], labels=b[1], lengths=b[2], lm_weight=lm_weight)[1]

    train(model, batch, loss_fn, steps=steps, lr=lr, weight_decay=0.01, seed=seed, live_plot=False, progress=False)
    return model


@torch.no_grad()
def classifier_accuracy(model: GPTForClassification, examples, vocab: WordVocab) -> float:
    """Share of ``examples`` whose predicted class is their label."""
    was_training = model.training
    model.eval()
    ids, lengths = encode_examples([e.words for e in examples], vocab)
    logits, _ = model(ids, lengths=lengths)
    model.train(was_training)
    return (logits.argmax(-1) == torch.tensor([e.label for e in examples])).float().mean().item()


# ---------------------------------------------------------------------------
# BERT on the story world (notebook 04): MLM + NSP
# ---------------------------------------------------------------------------

def story_tokenizer(words: Sequence[str]):
    """A WordPiece tokenizer whose vocabulary is BERT's special tokens and the story world's words.

    Every story word is a whole vocabulary entry, so WordPiece never splits one: the same class
    that reads the real 30,522-token vocabulary serves the toy world.
    """
    from .tokenizers import SPECIAL_TOKENS, WordPieceTokenizer

    return WordPieceTokenizer(list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS])


def nsp_examples(stories, tokenizer, seed: int = 0):
    """Sentence pairs of the stories, half IsNext and half NotNext (:func:`~course_lib.bert.make_nsp_pairs`),
    encoded as ``[CLS] A [SEP] B [SEP]``: a list of (input_ids, token_type_ids, is_next)."""
    from .bert import make_nsp_pairs

    pairs = make_nsp_pairs([s.sentences for s in stories], generator=random.Random(seed))
    out = []
    for a, b, is_next in pairs:
        e = tokenizer.encode(a, b)
        out.append((e["input_ids"], e["token_type_ids"], is_next))
    return out


def bert_batch(examples, tokenizer, generator: torch.Generator, mlm_probability: float = 0.15):
    """Pad a list of nsp_examples and apply the MLM rule: a dict of tensors for BertForPreTraining."""
    from .bert import IS_NEXT, NOT_NEXT, mask_tokens

    T = max(len(ids) for ids, _, _ in examples)
    ids = torch.full((len(examples), T), tokenizer.pad_id, dtype=torch.long)
    types = torch.zeros((len(examples), T), dtype=torch.long)
    for i, (x, t, _) in enumerate(examples):
        ids[i, :len(x)] = torch.tensor(x)
        types[i, :len(t)] = torch.tensor(t)
    special = [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id]
    inputs, labels = mask_tokens(ids, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_id,
                                 special_token_ids=special, mlm_probability=mlm_probability, generator=generator)
    return {"input_ids": inputs, "token_type_ids": types, "attention_mask": (ids != tokenizer.pad_id).long(),
            "mlm_labels": labels,
            "nsp_labels": torch.tensor([IS_NEXT if is_next else NOT_NEXT for _, _, is_next in examples])}


def bert_loss(model, batch) -> torch.Tensor:
    """MLM loss + NSP loss (the notes: the two tasks' losses add up)."""
    return model(**batch)[2]


@torch.no_grad()
def evaluate_bert(model, examples, tokenizer, seed: int = 1, batch_size: int = 512) -> dict[str, float]:
    """MLM accuracy on the masked positions and NSP accuracy, on held-out pairs (masking seeded)."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    mlm_hits = mlm_total = nsp_hits = 0
    for i in range(0, len(examples), batch_size):
        batch = bert_batch(examples[i:i + batch_size], tokenizer, g)
        mlm_logits, nsp_logits, _ = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        chosen = batch["mlm_labels"] != IGNORE_INDEX
        mlm_hits += int((mlm_logits.argmax(-1)[chosen] == batch["mlm_labels"][chosen]).sum())
        mlm_total += int(chosen.sum())
        nsp_hits += int((nsp_logits.argmax(-1) == batch["nsp_labels"]).sum())
    model.train(was_training)
    return {"mlm_accuracy": mlm_hits / mlm_total, "nsp_accuracy": nsp_hits / len(examples)}


def pretrain_bert(train_examples, validation_examples, tokenizer, config, *, steps: int = 800, batch_size: int = 64,
                  lr: float = 2e-3, seed: int = 0, eval_every: int | None = None, live_plot=None,
                  progress: bool = True):
    """Build a :class:`~course_lib.bert.BertForPreTraining` and pretrain it with MLM + NSP.

    A fresh masking of a random batch at every step; AdamW with warm-up and cosine decay.
    Returns (model, history); evaluations hold validation MLM and NSP accuracy.
    """
    from .bert import BertForPreTraining
    from .training import set_seed, train

    set_seed(seed)
    model = BertForPreTraining(config)
    g = torch.Generator().manual_seed(seed)

    def batches(step):
        pick = torch.randint(len(train_examples), (batch_size,), generator=g).tolist()
        return bert_batch([train_examples[i] for i in pick], tokenizer, g)

    history = train(model, batches, bert_loss, steps=steps, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed,
                    eval_every=eval_every, eval_fn=lambda m: evaluate_bert(m, validation_examples, tokenizer),
                    live_plot=live_plot, progress=progress, desc="pretraining BERT (MLM + NSP)")
    return model, history
