"""Speed of the course's MultiHeadAttention against torch.nn.MultiheadAttention.

Run from the repository root::

    python benchmarks/attention.py            # the full table
    python benchmarks/attention.py --quick    # fewer repetitions, for a smoke test

Both modules get the same weights and the same input (self-attention, query = key = value)
and are timed for one forward + backward pass, on 2 CPU threads, after a warm-up. The two are
measured in alternation, so a busy machine slows both alike, and each time is the median of
the repetitions. Two comparisons, each against torch in the same run:

- with weights (what pictures need): ours (``need_weights=True``, the explicit path) against
  ``torch.nn.MultiheadAttention(..., need_weights=True, average_attn_weights=False)``, which
  returns what ours returns (the weights of every head). Target: ours / torch <= 1.25.
- without weights (what training uses): ours (``need_weights=False``, which calls
  ``torch.nn.functional.scaled_dot_product_attention``) against torch's fused path
  (``need_weights=False``). Target: ours fast / torch fused <= 1.1.

The attention explorer's response times (notebook 01) are in ``benchmarks/widgets.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.attention import MultiHeadAttention
from timing import compare, fmt_time, report_machine_load, setup, start_machine_load

TARGET_RATIO = 1.25
TARGET_FUSED = 1.1
THREADS = 2

SHAPES = [
    # name, B, T, d, h
    ("tiny", 2, 8, 32, 4),
    ("course-size", 32, 16, 64, 4),
    ("long", 4, 512, 128, 4),
]


def same_weights(d: int, h: int) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    ours = MultiHeadAttention(d, h)
    ref = nn.MultiheadAttention(d, h, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        ref.out_proj.bias.copy_(ours.w_o.bias)
    return ours, ref


def step_ours(module: MultiHeadAttention, x: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    out, weights = module(x, x, x)
    out.sum().backward()


def step_ours_fused(module: MultiHeadAttention, x: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    out, _ = module(x, x, x, need_weights=False)
    out.sum().backward()


def step_torch(module: nn.MultiheadAttention, x: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    out, weights = module(x, x, x, need_weights=True, average_attn_weights=False)
    out.sum().backward()


def step_torch_fused(module: nn.MultiheadAttention, x: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    out, _ = module(x, x, x, need_weights=False)
    out.sum().backward()


def main() -> None:
    repeats, min_seconds, warmup = setup(__doc__.splitlines()[0], THREADS)
    load = start_machine_load()
    print(f"forward + backward, self-attention, float32, CPU; median of {repeats} samples; "
          f"targets: with weights ours / torch <= {TARGET_RATIO}, without ours / torch <= {TARGET_FUSED}")
    print()
    header = (f"{'shape':<12} {'B':>3} {'T':>4} {'d':>4} {'h':>2} | {'ours':>11} {'torch':>11} "
              f"{'ours/torch':>10} {'target':>6} | {'ours fast':>11} {'torch fused':>11} {'fast/fused':>10} "
              f"{'target':>6}")
    print(header)
    print("-" * len(header))
    all_ok = True
    for name, B, T, d, h in SHAPES:
        ours, ref = same_weights(d, h)
        x_ours = torch.randn(B, T, d, requires_grad=True)
        x_ref = x_ours.detach().clone().requires_grad_(True)
        with torch.no_grad():  # same module, same numbers: a benchmark of the wrong thing is worthless
            out_a, _ = ours(x_ours, x_ours, x_ours)
            out_b, _ = ref(x_ref, x_ref, x_ref, need_weights=True, average_attn_weights=False)
            torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-4)
            out_c, _ = ours(x_ours, x_ours, x_ours, need_weights=False)
            torch.testing.assert_close(out_c, out_b, atol=1e-5, rtol=1e-4)
        times = compare(
            {
                "ours": lambda: step_ours(ours, x_ours),
                "torch": lambda: step_torch(ref, x_ref),
                "ours fast": lambda: step_ours_fused(ours, x_ours),
                "fused": lambda: step_torch_fused(ref, x_ref),
            },
            repeats=repeats, min_seconds=min_seconds, warmup=warmup,
        )
        ratio = times["ours"] / times["torch"]
        fast_ratio = times["ours fast"] / times["fused"]
        ok, fast_ok = ratio <= TARGET_RATIO, fast_ratio <= TARGET_FUSED
        all_ok &= ok and fast_ok
        print(f"{name:<12} {B:>3} {T:>4} {d:>4} {h:>2} | {fmt_time(times['ours'])} {fmt_time(times['torch'])} "
              f"{ratio:>10.2f} {'ok' if ok else 'SLOW':>6} | {fmt_time(times['ours fast'])} "
              f"{fmt_time(times['fused'])} {fast_ratio:>10.2f} {'ok' if fast_ok else 'SLOW':>6}")
    print()
    print("all shapes meet the target" if all_ok else "some shapes miss the target (see 'SLOW')")
    report_machine_load(load)


if __name__ == "__main__":
    main()
