"""``python -m course_lib.pretrain``: tokens per second with 1 and 2 processes, and the command against
a bare PyTorch loop training ``transformers.GPT2LMHeadModel`` on nanoGPT's CPU Shakespeare recipe.

Run from the repository root::

    python benchmarks/pretrain.py            # about 2 minutes on 2 cores
    python benchmarks/pretrain.py --quick    # fewer steps, for a smoke test

The text is the course's story world (``make_story_corpus(5000)``, about 0.5 MB, written to a
temporary file), not Tiny Shakespeare: the course downloads nothing, and the stories are made on
the spot, the same on every machine. Character-level, as nanoGPT's ``shakespeare_char``.

1. Throughput: the command's ``tokens_per_s`` (read from log.jsonl, the median of the logged
   values after the first) for one process with 1 and with 2 threads and for two processes
   (``torch.distributed.run --nproc_per_node=2``, gloo) with 1 thread each, on the recipe's model.
   On a 2-core machine two processes can at best match one process with both cores: they compute
   the same, plus an all-reduce of the gradients every step.
2. nanoGPT's CPU recipe in spirit (``config/train_shakespeare_char.py`` with its "on a MacBook"
   settings: block_size 64, batch_size 12, n_layer 4, n_head 4, n_embd 128, dropout 0, lr 1e-3),
   but 200 steps, not 2000, to stay short: the command (one process, one thread) against the same
   size ``transformers.GPT2LMHeadModel`` started from the same weights (saved with
   ``GPT.save_hf_gpt2``) and trained by a bare PyTorch loop (AdamW, the same cosine schedule and
   gradient clipping) on the same batches, in this process with one thread too. Train loss (mean
   of the last 20 steps), validation loss (the same 4 held-out batches) and time per step, side by
   side. One thread each: two threads on a 2-core machine that is doing anything else slow down
   many times over (their workers wait for each other), which would time the machine's load, not
   the code.

Measured once (not a median of repeats: each row is a whole training run); the machine's load
during the run is printed, since other processes make every number slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from course_lib.data.stories import make_story_corpus
from course_lib.gpt import GPT, GPTConfig
from course_lib.pretrain.data import GPTData, build_tokenizer
from course_lib.pretrain.loop import EVAL_SEED_OFFSET
from course_lib.training import cosine_factor, set_seed
from timing import busy_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"block_size": 64, "batch_size": 12, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.0, "lr": 1e-3}
SEED, WARMUP, CLIP, EVAL_BATCHES = 0, 0.05, 1.0, 4


def command(text: Path, out: Path, steps: int, processes: int, threads: int) -> tuple[list[dict], float]:
    """Run the command; return its log records and its wall time (process start included)."""
    launch = [sys.executable] + (["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                                 if processes > 1 else [])
    args = ["-m", "course_lib.pretrain", "gpt", "--text", str(text), "--out", str(out), "--steps", str(steps),
            "--block-size", "64", "--batch-size", "12", "--n-layer", "4", "--n-head", "4", "--n-embd", "128",
            "--dropout", "0", "--lr", "1e-3", "--seed", str(SEED), "--log-every", "1", "--eval-every", str(steps),
            "--eval-batches", str(EVAL_BATCHES), "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), COURSE_DEVICE="cpu")
    start = time.perf_counter()
    subprocess.run(launch + args, check=True, cwd=ROOT, env=env, capture_output=True)
    wall = time.perf_counter() - start
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()], wall


def reference(text: str, steps: int, folder: Path) -> tuple[list[float], float, float]:
    """transformers' GPT-2 of the recipe's size, trained by a bare loop on the command's batches.

    Returns (losses, val_loss, seconds of the loop)."""
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the table, not a loading bar

    tokenizer = build_tokenizer("char", "gpt", text, 0)
    data = GPTData(text, tokenizer, RECIPE["block_size"])
    set_seed(SEED)  # the command's initial weights: the same seed, the same model built the same way
    GPT(GPTConfig(vocab_size=len(tokenizer), block_size=64, n_layer=4, n_head=4, n_embd=128)).save_hf_gpt2(folder)
    model = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(SEED)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = RECIPE["lr"] * cosine_factor(step, steps, warmup=WARMUP)
        x, y = data.batch(g, RECIPE["batch_size"])
        loss = F.cross_entropy(model(x).logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    model.eval()
    g = torch.Generator().manual_seed(SEED + EVAL_SEED_OFFSET)
    with torch.no_grad():
        val = statistics.fmean(F.cross_entropy(model(x).logits.flatten(0, 1), y.flatten()).item()
                               for x, y in (data.batch(g, RECIPE["batch_size"], "validation")
                                            for _ in range(EVAL_BATCHES)))
    return losses, val, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test, noisy numbers)")
    quick = parser.parse_args().quick
    speed_steps, recipe_steps = (20, 40) if quick else (60, 200)
    torch.set_num_threads(1)  # the reference's threads: the same as the command's (OMP_NUM_THREADS=1)
    print(f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
          f"os.cpu_count() = {os.cpu_count()}")
    busy0, own0, wall0 = busy_cpu_seconds(), sum(os.times()[:4]), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = make_story_corpus(5000, seed=0)
        text = "\n".join(s.text for s in corpus.train)
        (tmp / "stories.txt").write_text(text)
        print(f"text: the story world, {len(text):,} characters, {len(set(text))} distinct; "
              f"model: {RECIPE}")
        print()
        print(f"1. throughput of the command, {speed_steps} steps, global batch 12 x 64 tokens (gloo on the CPU)")
        header = f"{'processes x threads':<20} {'tokens/s':>10} {'vs 1 x 1':>9} {'wall s':>8} {'final loss':>11}"
        print(header)
        print("-" * len(header))
        base = None
        for processes, threads in ((1, 1), (1, 2), (2, 1)):
            records, wall = command(tmp / "stories.txt", tmp / f"speed{processes}{threads}", speed_steps, processes,
                                    threads)
            tps = statistics.median(r["tokens_per_s"] for r in records[1:])
            base = base or tps
            print(f"{f'{processes} x {threads}':<20} {tps:>10,.0f} {tps / base:>9.2f} {wall:>8.1f} "
                  f"{records[-1]['loss']:>11.4f}")
        print()
        print(f"2. nanoGPT's CPU shakespeare_char recipe in spirit: {recipe_steps} steps (nanoGPT: 2000), "
              "same weights at the start, same batches")
        records, wall = command(tmp / "stories.txt", tmp / "recipe", recipe_steps, 1, 1)
        ref_losses, ref_val, ref_seconds = reference(text, recipe_steps, tmp / "gpt2init")
        ours_step = statistics.fmean(12 * 64 / r["tokens_per_s"] for r in records[1:])
        header = f"{'':<44} {'train loss':>10} {'val loss':>9} {'ms/step':>8} {'wall s':>7}"
        print(header)
        print("-" * len(header))
        print(f"{'python -m course_lib.pretrain gpt (1 x 1)':<44} "
              f"{statistics.fmean(r['loss'] for r in records[-20:]):>10.4f} {records[-1]['val_loss']:>9.4f} "
              f"{ours_step * 1e3:>8.1f} {wall:>7.1f}")
        print(f"{'transformers GPT2LMHeadModel, bare loop':<44} {statistics.fmean(ref_losses[-20:]):>10.4f} "
              f"{ref_val:>9.4f} {ref_seconds / recipe_steps * 1e3:>8.1f} {ref_seconds:>7.1f}")
        print(f"ratio command / reference, time per step: {ours_step / (ref_seconds / recipe_steps):.2f} "
              f"(the command's wall time also holds starting Python, tokenising, evaluating and saving)")
    busy1, own1, wall1 = busy_cpu_seconds(), sum(os.times()[:4]), time.perf_counter()
    if busy0 is not None and busy1 is not None:
        others = max(((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0), 0.0)
        print(f"other processes used {others:.2f} CPU cores on average during the run"
              + ("  WARNING: the machine was not quiet; the numbers are unreliable" if others > 0.25 else ""))


if __name__ == "__main__":
    main()
