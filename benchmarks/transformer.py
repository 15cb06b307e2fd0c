"""Speed of the course's EncoderLayer against torch.nn.TransformerEncoderLayer.

Run from the repository root::

    python benchmarks/transformer.py            # the full table
    python benchmarks/transformer.py --quick    # fewer repetitions, for a smoke test

Both layers get the same weights and the same input and are timed for one forward + backward
pass in train mode (dropout 0, so the numbers are deterministic), on 2 CPU threads, after a
warm-up. The two are measured in alternation, so a busy machine slows both alike, and each time
is the median of the repetitions. torch's layer is ``TransformerEncoderLayer(batch_first=True,
norm_first=False, activation="relu", dropout=0.0)``: the post-norm layer of the notes. In train
mode with gradients, torch takes its Python path (no fused "fast path"), like ours; ours also
returns the attention weights of every head, which torch's layer does not compute.

Two sizes: the course's (the size the notebooks train) and a larger one.

The target: ours / torch <= 1.3 at every size.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from torch import nn

from course_lib.transformer import EncoderLayer

TARGET_RATIO = 1.3
THREADS = 2

SIZES = [
    # name, B, T, d, h, d_ff
    ("course-size", 32, 16, 64, 4, 128),
    ("larger", 8, 128, 256, 8, 1024),
]


def same_weights(d: int, h: int, d_ff: int) -> tuple[EncoderLayer, nn.TransformerEncoderLayer]:
    ours = EncoderLayer(d, h, d_ff, dropout=0.0)
    ref = nn.TransformerEncoderLayer(d, h, d_ff, dropout=0.0, activation="relu", batch_first=True,
                                     norm_first=False)
    with torch.no_grad():
        sa = ours.self_attn
        ref.self_attn.in_proj_weight.copy_(torch.cat([sa.w_q.weight, sa.w_k.weight, sa.w_v.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([sa.w_q.bias, sa.w_k.bias, sa.w_v.bias]))
        ref.self_attn.out_proj.weight.copy_(sa.w_o.weight)
        ref.self_attn.out_proj.bias.copy_(sa.w_o.bias)
        for name in ("linear1", "linear2"):
            getattr(ref, name).weight.copy_(getattr(ours.ffn, name).weight)
            getattr(ref, name).bias.copy_(getattr(ours.ffn, name).bias)
        for name in ("norm1", "norm2"):  # not the default 1 and 0, so a swapped norm would be noticed
            getattr(ours, name).weight.copy_(1 + 0.1 * torch.randn(d))
            getattr(ours, name).bias.copy_(0.1 * torch.randn(d))
            getattr(ref, name).weight.copy_(getattr(ours, name).weight)
            getattr(ref, name).bias.copy_(getattr(ours, name).bias)
    return ours.train(), ref.train()


def step(module: nn.Module, x: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    module(x).sum().backward()


def check_same_numbers(ours: EncoderLayer, ref: nn.TransformerEncoderLayer, x: torch.Tensor) -> None:
    """Same outputs and same gradients: a benchmark of the wrong thing is worthless."""
    x1 = x.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    upstream = torch.randn_like(x)
    out1, out2 = ours(x1), ref(x2)
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-4)
    (out1 * upstream).sum().backward()
    (out2 * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.ffn.linear1.weight.grad, ref.linear1.weight.grad, atol=1e-4, rtol=1e-4)
    ours.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)


def calls_per_sample(fn, min_seconds: float) -> int:
    """How many calls make one timing sample last at least ``min_seconds``."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= min_seconds or n >= 1 << 16:
            return n
        n *= 2


def compare(fns: dict, repeats: int, min_seconds: float, warmup: int) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    n = max(calls_per_sample(fn, min_seconds) for fn in fns.values())
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux), None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test, noisy numbers)")
    parser.add_argument("--repeats", type=int, default=None, help="timing samples per implementation")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 21)
    min_seconds = 0.01 if args.quick else 0.05
    warmup = 3 if args.quick else 10

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}")
    print(f"threads: torch.get_num_threads() = {torch.get_num_threads()} "
          f"(machine: os.cpu_count() = {os.cpu_count()})")
    busy_start, own_start, wall_start = busy_cpu_seconds(), time.process_time(), time.perf_counter()
    print(f"encoder layer (post-norm), forward + backward, train mode, dropout 0, float32, CPU; "
          f"median of {repeats} samples; target ours / torch <= {TARGET_RATIO}")
    print()
    header = (f"{'size':<12} {'B':>3} {'T':>4} {'d':>4} {'h':>2} {'d_ff':>5} | {'ours':>11} {'torch':>11} "
              f"{'ours/torch':>10} {'target':>6}")
    print(header)
    print("-" * len(header))
    all_ok = True
    for name, B, T, d, h, d_ff in SIZES:
        ours, ref = same_weights(d, h, d_ff)
        x = torch.randn(B, T, d)
        check_same_numbers(ours, ref, x)
        x_ours = x.clone().requires_grad_(True)
        x_ref = x.clone().requires_grad_(True)
        times = compare(
            {"ours": lambda: step(ours, x_ours), "torch": lambda: step(ref, x_ref)},
            repeats=repeats, min_seconds=min_seconds, warmup=warmup,
        )
        ratio = times["ours"] / times["torch"]
        ok = ratio <= TARGET_RATIO
        all_ok &= ok
        print(f"{name:<12} {B:>3} {T:>4} {d:>4} {h:>2} {d_ff:>5} | {fmt_time(times['ours'])} "
              f"{fmt_time(times['torch'])} {ratio:>10.2f} {'ok' if ok else 'SLOW':>6}")
    print()
    print("all sizes meet the target" if all_ok else "some sizes miss the target (see 'SLOW')")
    busy_end = busy_cpu_seconds()
    if busy_start is not None and busy_end is not None:
        # what the rest of the machine used meanwhile, in CPU cores
        others = ((busy_end - busy_start) - (time.process_time() - own_start)) / (time.perf_counter() - wall_start)
        print(f"other processes used {max(others, 0.0):.2f} CPU cores on average during the run")
        if others > 0.25:
            print("WARNING: the machine was not quiet; the times, and even the ratios, are unreliable: "
                  "run again when nothing else is running")


if __name__ == "__main__":
    main()
