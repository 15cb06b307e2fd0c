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

The widgets' response times are in ``benchmarks/widgets.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.transformer import EncoderLayer, to_torch
from timing import compare, fmt_time, report_machine_load, setup, start_machine_load

TARGET_RATIO = 1.3
THREADS = 2

SIZES = [
    # name, B, T, d, h, d_ff
    ("course-size", 32, 16, 64, 4, 128),
    ("larger", 8, 128, 256, 8, 1024),
]


def same_weights(d: int, h: int, d_ff: int) -> tuple[EncoderLayer, nn.TransformerEncoderLayer]:
    ours = EncoderLayer(d, h, d_ff, dropout=0.0)
    with torch.no_grad():
        for norm in (ours.norm1, ours.norm2):  # not the default 1 and 0, so a swapped norm would be noticed
            norm.weight.copy_(1 + 0.1 * torch.randn(d))
            norm.bias.copy_(0.1 * torch.randn(d))
    return ours.train(), to_torch(ours).train()


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


def main() -> None:
    repeats, min_seconds, warmup = setup(__doc__.splitlines()[0], THREADS)
    load = start_machine_load()
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
    report_machine_load(load)


if __name__ == "__main__":
    main()
