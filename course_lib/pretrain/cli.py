"""The command line of ``python -m course_lib.pretrain``: arguments, their checks, and clear errors.

Every mistake a learner can make on the command line (a missing or empty --text, a text shorter
than one block, an --out that cannot be written, a --batch-size the processes cannot share, sizes
that do not fit together) ends the command with exit code 2 and ONE line naming the argument,
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..data.stories import load_text
from . import distributed
from .data import UsageError

__all__ = ["build_parser", "main"]

PROG = "python -m course_lib.pretrain"

EPILOG = """\
examples:
  python -m course_lib.pretrain gpt --text input.txt --out runs/gpt --steps 2000
  python -m course_lib.pretrain bert --text input.txt --out runs/bert --tokenizer wordpiece
  python -m course_lib.pretrain gpt --text input.txt --out runs/gpt --resume      # continue a run
  torchrun --standalone --nproc_per_node=2 -m course_lib.pretrain gpt --text input.txt --out runs/gpt2p

--batch-size is the global batch: with N processes each one takes batch-size / N rows.
DIR receives log.jsonl, tb/ (TensorBoard), tokenizer.json, config.json + model.safetensors
(the Hugging Face layout) and checkpoint.pt (for --resume)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake prints one line (no usage block) and exits with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value!r}")
    return n


def _seed(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"must be an int from 0 to 2**32 - 1, got {value!r}")
    return n


def _number(low: float, high: float | None = None, low_inclusive: bool = False):
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
        bad = (x < low if low_inclusive else x <= low) or (high is not None and x >= high) or x != x
        if bad:
            where = f"{'>=' if low_inclusive else '>'} {low:g}" + (f" and < {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be a number {where}, got {value!r}")
        return x
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Pretrain the course's GPT (next token) or BERT (MLM + NSP, "
                     "notebook 04) on your own text, in one process or under torchrun (DistributedDataParallel).",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["gpt", "bert"], help="gpt: next-token prediction; bert: MLM + NSP")
    parser.add_argument("--text", required=True, metavar="FILE", help="a UTF-8 text file to learn from")
    parser.add_argument("--out", required=True, metavar="DIR", help="where logs, tokenizer and checkpoints go")
    parser.add_argument("--steps", type=_positive_int, default=1000, help="optimizer updates in all (default 1000)")
    parser.add_argument("--batch-size", type=_positive_int, default=16, metavar="B",
                        help="GLOBAL batch: rows per step over all processes (default 16)")
    parser.add_argument("--block-size", type=_positive_int, default=64, metavar="T",
                        help="tokens per row: the context window (default 64)")
    parser.add_argument("--n-layer", type=_positive_int, default=4, help="blocks (default 4)")
    parser.add_argument("--n-head", type=_positive_int, default=4, help="attention heads (default 4)")
    parser.add_argument("--n-embd", type=_positive_int, default=128, help="width, divisible by --n-head (default 128)")
    parser.add_argument("--dropout", type=_number(0.0, 1.0, low_inclusive=True), default=0.0,
                        help="dropout probability (default 0)")
    parser.add_argument("--tokenizer", choices=["char", "word", "wordpiece"], default=None,
                        help="default: char for gpt, wordpiece for bert")
    parser.add_argument("--vocab-size", type=_positive_int, default=8000,
                        help="largest vocabulary for word / wordpiece (default 8000; char: every character)")
    parser.add_argument("--lr", type=_number(0.0), default=1e-3, help="peak learning rate of AdamW (default 1e-3)")
    parser.add_argument("--warmup", type=_number(0.0, 1.0, low_inclusive=True), default=0.05,
                        help="share of the steps warming up before the cosine decay (default 0.05)")
    parser.add_argument("--weight-decay", type=_number(0.0, low_inclusive=True), default=0.0,
                        help="AdamW weight decay (default 0)")
    parser.add_argument("--clip", type=_number(0.0, low_inclusive=True), default=1.0,
                        help="largest gradient norm, 0 for none (default 1)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the weights and of the batches (default 0)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: mixed precision (autocast), for GPUs that have it (default fp32)")
    parser.add_argument("--log-every", type=_positive_int, default=10, help="steps between log lines (default 10)")
    parser.add_argument("--eval-every", type=_positive_int, default=100,
                        help="steps between validation losses (default 100, and at the end)")
    parser.add_argument("--eval-batches", type=_positive_int, default=4,
                        help="validation batches per evaluation (default 4)")
    parser.add_argument("--save-every", type=_positive_int, default=500,
                        help="steps between checkpoints (default 500, and at the end)")
    parser.add_argument("--stop-after", type=_positive_int, default=None, metavar="STEP",
                        help="stop after STEP steps of the --steps schedule (checkpoint written); "
                             "continue later with --resume")
    parser.add_argument("--resume", action="store_true", help="continue the run in DIR, bit for bit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_out(out: str) -> None:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError("--out", f"{out!r} is a file, not a folder")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise UsageError("--out", f"{out!r} cannot be made: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError("--out", f"{out!r} cannot be written: no permission to write in {str(existing)!r}")


def check_args(args) -> str:
    """Every check that needs no model; returns the text."""
    if args.tokenizer is None:
        args.tokenizer = "char" if args.model == "gpt" else "wordpiece"
    try:
        text = load_text(args.text)
    except (ValueError, FileNotFoundError, TypeError) as e:
        raise UsageError("--text", str(e)) from None
    if distributed.env_rank() == 0:  # only rank 0 writes
        _check_out(args.out)
    world = distributed.env_world_size()
    if args.batch_size % world:
        raise UsageError("--batch-size", f"{args.batch_size} rows cannot be shared by {world} processes: "
                                         f"use a multiple of {world}")
    if args.n_embd % args.n_head:
        raise UsageError("--n-embd", f"{args.n_embd} is not divisible by --n-head {args.n_head}")
    if args.model == "bert" and args.block_size < 5:
        raise UsageError("--block-size", f"bert needs at least 5 tokens ([CLS] A [SEP] B [SEP]), got {args.block_size}")
    if args.stop_after is not None and args.stop_after > args.steps:
        raise UsageError("--stop-after", f"{args.stop_after} is past --steps {args.steps}")
    if args.resume and not (Path(args.out) / "checkpoint.pt").is_file():
        raise UsageError("--resume", f"no checkpoint at {Path(args.out) / 'checkpoint.pt'}: run once without --resume")
    return text


def main(argv=None) -> int:
    """Parse, check, prepare the data, start the process group (under torchrun), train, stop it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        text = check_args(args)
        from .loop import prepare, run  # the model code loads only once the arguments are fine
        tokenizer, data = prepare(args, text)
    except UsageError as e:
        parser.error(str(e))
    ctx = distributed.start()
    finished = False
    try:
        record = run(args, text, tokenizer, data, ctx)
        finished = True
    except UsageError as e:
        parser.error(str(e))
    finally:
        distributed.stop(ctx, wait_for_all=finished)
    if ctx.is_main and not args.quiet and record:
        print(f"step {record['step']}: loss {record['loss']:.4f}"
              + (f", val_loss {record['val_loss']:.4f}" if "val_loss" in record else "")
              + f"; wrote {args.out}", file=sys.stderr)
    return 0
