"""The pretraining loop of ``python -m course_lib.pretrain``: one process or many (DDP).

Why not :func:`course_lib.training.train`: that loop trains one model in one process. Data-parallel
training needs three things it does not do, and they are all here, kept small:

1. every process computes the loss of ITS shard of the global batch (:func:`~course_lib.pretrain.data.shard`)
   through the ``DistributedDataParallel`` wrapper, whose backward averages the gradients of all
   processes (an all-reduce), so every process takes the same optimizer step;
2. the losses are scaled so that this average IS the gradient of the global batch's loss (below);
3. only rank 0 logs, shows the progress bar and writes files, while every process keeps the same
   random states (same seed, same data generator), so a checkpoint written by rank 0 resumes all.

(There is one backward per step, so ``DistributedDataParallel.no_sync``, which skips the all-reduce
of the micro-batches of gradient accumulation, is not needed.)

The losses, so that 1 process and N processes take the same steps:

- GPT: each shard has B/N rows of T predicted tokens; the mean of N equal-sized means is the
  mean over the global batch, so ``lm_loss`` of the shard is used as it is.
- BERT (MLM + NSP, notebook 04): the shards hold different numbers of masked tokens, so the mean
  of the shards' MLM means is NOT the global mean. Each process computes
  ``N * (sum of its masked-token losses / masked tokens in the GLOBAL batch + sum of its NSP
  losses / B)``; DDP's average over the N processes is then exactly ``bert_loss`` of the global
  batch (the count is read from the global batch, which every process has: no communication).

Files (rank 0, in ``--out DIR``): ``log.jsonl``, ``tb/`` (TensorBoard), ``tokenizer.json`` (+
``vocab.txt``), ``config.json`` + ``model.safetensors`` (the Hugging Face layout), and
``checkpoint.pt`` (model, optimizer, step, random states and the data generator: ``--resume``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from ..batching import IGNORE_INDEX
from ..bert import BertConfig, BertForPreTraining
from ..checkpoints import load_checkpoint, save_checkpoint
from ..gpt import GPT, GPTConfig
from ..training import cosine_factor, evaluating, set_seed
from . import distributed
from .data import BertData, GPTData, UsageError, build_tokenizer, save_tokenizer, shard

__all__ = ["prepare", "run", "gpt_loss", "bert_shard_loss", "RUN_FIELDS"]

# the arguments that define a run: --resume refuses to continue a run made with other values
RUN_FIELDS = ("model", "tokenizer", "vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout",
              "batch_size", "lr", "seed", "steps", "warmup", "weight_decay", "clip", "precision")
EVAL_SEED_OFFSET = 1_000_003  # the validation batches' generator: the same batches at every evaluation


def gpt_loss(model, shard_batch, global_batch, world_size: int) -> torch.Tensor:
    """The mean next-token loss of this shard, as ``course_lib.tasks.gpt.lm_loss`` (through the
    DDP wrapper when there is one: its forward is what registers the gradient all-reduce)."""
    inputs, targets = shard_batch
    return model(inputs, targets)[1]


def bert_shard_loss(model, shard_batch, global_batch, world_size: int) -> torch.Tensor:
    """This shard's part of ``bert_loss`` (MLM + NSP) of the global batch, times world_size.

    Summed over the processes and divided by world_size (DDP's gradient average) it is the mean
    MLM loss over all masked tokens of the global batch plus the mean NSP loss over its rows.
    """
    b = shard_batch
    mlm_logits, nsp_logits, _ = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    masked = int((global_batch["mlm_labels"] != IGNORE_INDEX).sum())
    rows = global_batch["nsp_labels"].shape[0]
    mlm = F.cross_entropy(mlm_logits.flatten(0, 1).float(), b["mlm_labels"].flatten(), ignore_index=IGNORE_INDEX,
                          reduction="sum") / max(masked, 1)  # no masked token: 0, as BertForPreTraining does
    nsp = F.cross_entropy(nsp_logits.float(), b["nsp_labels"], reduction="sum") / rows
    return world_size * (mlm + nsp)


def _to(batch, device):
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return tuple(v.to(device) for v in batch)


def build_model(args, vocab_size: int):
    """The course's GPT or BertForPreTraining with the command's sizes (built on the CPU, seeded)."""
    try:
        if args.model == "gpt":
            return GPT(GPTConfig(vocab_size=vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                                 n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout))
        return BertForPreTraining(BertConfig(
            vocab_size=vocab_size, hidden_size=args.n_embd, num_hidden_layers=args.n_layer,
            num_attention_heads=args.n_head, intermediate_size=4 * args.n_embd,
            max_position_embeddings=args.block_size, hidden_dropout_prob=args.dropout,
            attention_probs_dropout_prob=args.dropout))
    except ValueError as e:
        raise UsageError("--n-embd/--n-head", str(e)) from None


def prepare(args, text: str):
    """Tokenizer and data from the text (every check that can fail happens here, before any
    process group is started): returns (tokenizer, data)."""
    tokenizer = build_tokenizer(args.tokenizer, args.model, text, args.vocab_size)
    if args.model == "gpt":
        data = GPTData(text, tokenizer, args.block_size)
    else:
        data = BertData(text, tokenizer, args.block_size, args.seed)
    return tokenizer, data


def _save_hf(model, out: Path) -> None:
    if isinstance(model, GPT):
        model.save_hf_gpt2(out)
    else:
        model.save_pretrained(out)


@torch.no_grad()
def _val_loss(model, data, args, device) -> float:
    """The mean loss over ``--eval-batches`` validation batches, always the same ones (a fixed seed)."""
    g = torch.Generator().manual_seed(args.seed + EVAL_SEED_OFFSET)
    loss_fn = gpt_loss if args.model == "gpt" else bert_shard_loss
    total = 0.0
    with evaluating(model):
        for _ in range(args.eval_batches):
            batch = data.batch(g, args.batch_size, split="validation")
            total += float(loss_fn(model, _to(batch, device), batch, 1))
    return total / args.eval_batches


def _run_identity(args, text: str) -> dict:
    ident = {k: getattr(args, k) for k in RUN_FIELDS}
    ident["text_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return ident


def _check_same_run(saved: dict, now: dict) -> None:
    for key, value in now.items():
        if saved.get(key) != value:
            arg = "--text" if key == "text_sha256" else "--" + key.replace("_", "-")
            raise UsageError(arg, f"differs from the run being resumed ({saved.get(key)!r} there, {value!r} now): "
                                  "--resume continues a run with the same settings; drop --resume (and choose "
                                  "another --out) to start a new one")


def _truncate_log(log: Path, step: int) -> None:
    """Keep the log lines of the steps up to ``step``: a resumed run writes the later ones again."""
    if log.exists():
        lines = [line for line in log.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        log.write_text("".join(line + "\n" for line in lines))


def run(args, text: str, tokenizer, data, ctx: distributed.Context) -> dict:
    """Train; return the last logged record. ``ctx`` says which process this is (see distributed.py)."""
    out = Path(args.out)
    N, device = ctx.world_size, ctx.device
    set_seed(args.seed)  # the same initial weights in every process (DDP also broadcasts rank 0's)
    model = build_model(args, len(tokenizer)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    data_gen = torch.Generator().manual_seed(args.seed)  # draws the global batches, the same in every process
    ident = _run_identity(args, text)
    start = 0
    if args.resume:
        ckpt = out / "checkpoint.pt"
        if not ckpt.is_file():
            raise UsageError("--resume", f"no checkpoint at {ckpt} to resume from: run once without --resume")
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)["extra"].get("run", {})
        _check_same_run(saved, ident)
        start = load_checkpoint(ckpt, model, optimizer=optimizer, restore_rng=True,
                                generators={"data": data_gen})["step"]
    stop = min(args.stop_after or args.steps, args.steps)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_tokenizer(tokenizer, out)
        log_path = out / "log.jsonl"
        if args.resume:
            _truncate_log(log_path, start)
        else:
            log_path.write_text("")
    net = model
    if ctx.distributed:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = gpt_loss if args.model == "gpt" else bert_shard_loss
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    writer = bar = None
    if ctx.is_main:
        from tqdm.auto import tqdm
        try:  # imported late: rank 0 only, and it is slow
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"), purge_step=start + 1 if args.resume else None)
        except ImportError:  # tensorboard is in requirements.txt, not a dependency of the package itself
            print("tensorboard is not installed: no TensorBoard logs (log.jsonl is written all the same)",
                  file=sys.stderr)
        bar = tqdm(total=stop, initial=start, desc=f"pretrain {args.model} x{N}", disable=args.quiet)

    def save(step: int) -> None:
        if ctx.is_main:
            _save_hf(model, out)
            save_checkpoint(out / "checkpoint.pt", model, optimizer=optimizer, step=step,
                            extra={"run": ident}, rng=True, generators={"data": data_gen})

    record: dict = {}
    tokens, clock = 0, time.perf_counter()
    model.train()
    try:
        for step in range(start, stop):
            lr = args.lr * cosine_factor(step, args.steps, warmup=args.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = data.batch(data_gen, args.batch_size)  # the GLOBAL batch, identical in every process
            tokens += data.num_tokens(batch)
            with autocast:
                loss = loss_fn(net, _to(shard(batch, ctx.rank, N), device), batch, N)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # under DDP: gradients averaged over the processes here
            if args.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            done = step + 1
            last = done == stop
            evaluate = data.has_validation and (done % args.eval_every == 0 or last)
            if done % args.log_every == 0 or evaluate or last:  # every process takes part in the all-reduce
                value = distributed.all_mean(loss, ctx)
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss is {value} at step {done} (lr={lr:g}): try a lower --lr")
                now = time.perf_counter()
                record = {"step": done, "loss": value, "lr": lr, "tokens_per_s": tokens / max(now - clock, 1e-9)}
                if ctx.is_main:
                    if evaluate:
                        record["val_loss"] = _val_loss(model, data, args, device)
                    with open(out / "log.jsonl", "a") as f:
                        f.write(json.dumps(record) + "\n")
                    for key, v in record.items():
                        if key != "step" and writer is not None:
                            writer.add_scalar(key, v, done)
                    bar.set_postfix(loss=f"{value:.4f}")
                tokens, clock = 0, time.perf_counter()  # the evaluation's time is not training time
            if done % args.save_every == 0 or last:
                save(done)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return record
