"""Train a small GPT with Hugging Face ``Trainer``, in one process or several (notebook 06, section 7).

    python -m course_lib.frameworks.trainer_run --out runs/one --steps 20 --per-device-batch-size 16
    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        -m course_lib.frameworks.trainer_run --out runs/two --steps 20 --per-device-batch-size 8

The same script, launched alone or by ``torchrun`` (``python -m torch.distributed.run``): ``Trainer``
reads the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), joins
the process group and wraps the model in ``DistributedDataParallel`` by itself; nothing in this file
says "distributed" except the backend for CPUs (gloo; on GPUs it would be NCCL). The global batch
is ``per-device-batch-size * processes``: 1 x 16 and 2 x 8 are the same batch of 16.

Why the loss curves agree: the model is built from the same seed in every process; the training
text is the story world (:func:`course_lib.data.stories.make_story_corpus`) cut into blocks of
``--block-size`` word tokens with no padding, so every row has the same number of predicted tokens
and the mean of the processes' mean losses is the mean over the global batch; dropout is off; and
``Trainer`` (through ``accelerate``) draws ONE shuffled order of the blocks from ``--seed`` and
deals each global batch out in consecutive slices of per-device rows, so 2 processes with 8 rows
see together exactly the 16 rows that 1 process sees (check it: ``--no-shuffle`` gives the same
equality with the blocks in order). DDP averages the gradients, every process takes the same
AdamW step, and the losses differ only by float rounding (sums added in another order).

Rank 0 writes ``DIR/log.json``: {"world_size", "per_device_batch_size", "global_batch_size",
"losses" (the training loss of every step), "log_history" (``trainer.state.log_history``),
"seconds"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

__all__ = ["StoryBlocks", "build_parser", "main", "command", "launch"]

PROG = "python -m course_lib.frameworks.trainer_run"


class StoryBlocks(torch.utils.data.Dataset):
    """The story corpus as a stream of word ids cut into blocks: item i is {"input_ids": (T,),
    "labels": (T,)} (the same ids: the GPT model shifts them itself to predict each next word).

    ``num_stories`` stories of :func:`~course_lib.data.stories.make_story_corpus` (seed ``seed``);
    their training split, every story followed by an end-of-text token, the stream cut into
    ``block_size`` ids (the last, partial block dropped). ``vocab``: the WordVocab of the ids.
    """

    def __init__(self, num_stories: int = 2000, block_size: int = 32, seed: int = 0):
        from .. import _checks
        from ..data.stories import make_story_corpus
        from ..tokenizers import WordVocab

        _checks.check_positive_int("block_size", block_size)
        if block_size < 2:
            raise ValueError(f"block_size must be at least 2 (an input and a next word), got {block_size}")
        corpus = make_story_corpus(num_stories=num_stories, seed=seed)
        self.vocab = WordVocab(corpus.words)
        stream = [i for s in corpus.train for i in self.vocab.encode(s.words) + [self.vocab.eos_id]]
        n = len(stream) // block_size
        if n == 0:
            raise ValueError(f"num_stories={num_stories} gives {len(stream)} tokens, fewer than one block of "
                             f"block_size={block_size}")
        self.blocks = torch.tensor(stream[:n * block_size]).view(n, block_size)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.blocks[i], "labels": self.blocks[i]}


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value!r}")
    return n


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value!r}")
    return x


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake prints one line and exits with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Train a small GPT (transformers' GPT2LMHeadModel) on the story world "
                     "with Trainer, alone or under torchrun (DistributedDataParallel, gloo on CPUs).")
    parser.add_argument("--out", required=True, metavar="DIR", help="where log.json goes (rank 0 writes it)")
    parser.add_argument("--steps", type=_positive_int, default=20, help="optimizer updates (default 20)")
    parser.add_argument("--per-device-batch-size", type=_positive_int, default=16, metavar="B",
                        help="rows per process per step; the global batch is B * processes (default 16)")
    parser.add_argument("--block-size", type=_positive_int, default=32, metavar="T", help="tokens per row (default 32)")
    parser.add_argument("--n-layer", type=_positive_int, default=2, help="blocks (default 2)")
    parser.add_argument("--n-head", type=_positive_int, default=2, help="attention heads (default 2)")
    parser.add_argument("--n-embd", type=_positive_int, default=64, help="width, divisible by --n-head (default 64)")
    parser.add_argument("--lr", type=_positive_float, default=3e-3, help="AdamW learning rate, constant (default 3e-3)")
    parser.add_argument("--num-stories", type=_positive_int, default=2000, help="stories generated (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and of the data order (default 0)")
    parser.add_argument("--no-shuffle", action="store_true", help="the blocks in order, not shuffled")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_embd % args.n_head:
        parser.error(f"argument --n-embd: {args.n_embd} is not divisible by --n-head {args.n_head}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"argument --out: {args.out!r} is a file, not a folder")
    if args.block_size < 2:
        parser.error(f"argument --block-size: must be at least 2, got {args.block_size}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()   # notes about defaults, not news for this run

    data = StoryBlocks(args.num_stories, args.block_size, args.seed)
    world = int(os.environ.get("WORLD_SIZE", 1))   # set by torchrun; 1 when run alone
    config = GPT2Config(vocab_size=len(data.vocab), n_positions=args.block_size, n_embd=args.n_embd,
                        n_layer=args.n_layer, n_head=args.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=data.vocab.eos_id, eos_token_id=data.vocab.eos_id)
    set_seed(args.seed)
    model = GPT2LMHeadModel(config)   # the same initial weights in every process (same seed)

    training_args = TrainingArguments(
        output_dir=str(out),
        max_steps=args.steps,
        per_device_train_batch_size=args.per_device_batch_size,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        optim="adamw_torch",
        seed=args.seed,
        data_seed=args.seed,
        logging_steps=1,                  # every step's loss (averaged over the processes) in log_history
        save_strategy="no",               # the lesson is the loss curve; checkpoints: see section 4
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_drop_last=True,
        use_cpu=True,                     # the course's comparison runs on CPUs; on GPUs drop it
        ddp_backend="gloo" if world > 1 else None,   # CPU processes talk over gloo; GPUs would use "nccl"
        ddp_find_unused_parameters=False,  # every weight gets a gradient: no extra search of the graph
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=data)
    if args.no_shuffle:
        # Trainer's sampler is a RandomSampler; a SequentialSampler keeps the blocks in order
        trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(data)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        history = trainer.state.log_history
        record = {"world_size": world, "per_device_batch_size": args.per_device_batch_size,
                  "global_batch_size": args.per_device_batch_size * world,
                  "losses": [h["loss"] for h in history if "loss" in h], "log_history": history, "seconds": seconds}
        (out / "log.json").write_text(json.dumps(record, indent=1))
        print(f"{world} process(es) x {args.per_device_batch_size} rows: step {trainer.state.global_step}, "
              f"loss {record['losses'][-1]:.4f}, {seconds:.1f} s; wrote {out / 'log.json'}", file=sys.stderr)
    return 0


def command(out, *, processes: int = 1, **options) -> list[str]:
    """The command line that runs this module in ``processes`` processes (torchrun for more than one),
    as a list for ``subprocess.run``; ``options`` are its flags, e.g. ``per_device_batch_size=8``
    for ``--per-device-batch-size 8`` (True for a bare flag such as ``no_shuffle``)."""
    from .. import _checks

    _checks.check_positive_int("processes", processes)
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or Path), got {type(out).__name__}")
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    flags = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:
            flags += [flag, str(value)]
    return [*launcher, "-m", "course_lib.frameworks.trainer_run", "--out", str(out), *flags]


def launch(out, *, processes: int = 1, timeout: float = 300, **options) -> dict:
    """Run :func:`command` in a subprocess (the CPU, no GPU; nothing downloaded) and return its
    ``log.json``. A failed run raises RuntimeError with the end of its error output."""
    import subprocess

    argv = command(out, processes=processes, **options)
    env = dict(os.environ, HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):   # a fresh group, not ours
        env.pop(name, None)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed (exit code {result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads((Path(out) / "log.json").read_text())


if __name__ == "__main__":
    raise SystemExit(main())
