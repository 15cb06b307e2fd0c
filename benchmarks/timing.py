"""Timing helpers shared by the benchmarks: interleaved medians, and how busy the machine was.

Imported as ``from timing import ...`` by the scripts beside it (run as ``python benchmarks/NAME.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch


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


def start_machine_load() -> tuple:
    """Remember the machine's and this process's CPU time now (see :func:`report_machine_load`)."""
    return busy_cpu_seconds(), time.process_time(), time.perf_counter()


def report_machine_load(start: tuple) -> None:
    """Print how many CPU cores other processes used since ``start``; warn when the run was not quiet."""
    busy_start, own_start, wall_start = start
    busy_end = busy_cpu_seconds()
    if busy_start is None or busy_end is None:
        return
    others = ((busy_end - busy_start) - (time.process_time() - own_start)) / (time.perf_counter() - wall_start)
    print(f"other processes used {max(others, 0.0):.2f} CPU cores on average during the run")
    if others > 0.25:
        print("WARNING: the machine was not quiet; the times, and even the ratios, are unreliable: "
              "run again when nothing else is running")


def setup(description: str, threads: int) -> tuple[int, float, int]:
    """Parse --quick / --repeats, fix threads and seed, print the machine; return (repeats, min_seconds, warmup)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test, noisy numbers)")
    parser.add_argument("--repeats", type=int, default=None, help="timing samples per implementation")
    args = parser.parse_args()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}")
    print(f"threads: torch.get_num_threads() = {torch.get_num_threads()} "
          f"(machine: os.cpu_count() = {os.cpu_count()})")
    if args.quick:
        return args.repeats or 5, 0.01, 3
    return args.repeats or 21, 0.05, 10
