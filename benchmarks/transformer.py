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

Then the redraw time of notebook 02's three widgets as a learner moves their controls, PNG
included (the design's target: at most 50 ms). The attention explorer runs on an untrained model
of the notebook's size, since drawing does not depend on what the weights learned; translating
the sentence is not counted. A sentence the explorer has not shown before needs one full draw
of its word labels (target 150 ms); every other change repaints only what moved.
"""

from __future__ import annotations


import torch
from torch import nn

from course_lib.transformer import EncoderDecoder, EncoderLayer, to_torch
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


def widget_redraws(repeats: int = 21) -> bool:
    """Median redraw time (ms) of each notebook-02 widget control; True when all meet the target."""
    import statistics

    from course_lib import seq2seq
    from course_lib.data import make_translation_corpus
    from course_lib.tokenizers import WordVocab
    from course_lib.transformer_widgets import PositionExplorer, ScalingExplorer, TransformerAttentionExplorer

    corpus = make_translation_corpus(seed=0)
    sv, tv = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    torch.manual_seed(0)
    model = EncoderDecoder(len(sv), len(tv), max_len=32)
    scaling, positions = ScalingExplorer(), PositionExplorer()
    explorer = TransformerAttentionExplorer(lambda w: seq2seq.trace_transformer(model, w, sv, tv),
                                            [p.zh for p in corpus.test[:repeats]])
    moves = {
        "sqrt(d_k) explorer: d_k slider": (scaling, lambda i: setattr(scaling.d_k, "value", scaling.d_ks[i % 11])),
        "position explorer: position slider": (positions, lambda i: setattr(positions.position, "value", i % 64)),
        "attention explorer: head": (explorer, lambda i: setattr(explorer.head, "value", i % 4)),
        "attention explorer: layer": (explorer, lambda i: setattr(explorer.layer, "value", i % 2)),
        "attention explorer: kind (layout seen before)": (
            explorer, lambda i: setattr(explorer.kind, "value", ["cross", "encoder self"][i % 2])),
        "attention explorer: new sentence (full draw)": (
            explorer, lambda i: setattr(explorer.sentence, "value", explorer.sentence.options[i][1])),
    }
    targets = {name: 150 if "full draw" in name else 50 for name in moves}
    print()
    print(f"notebook 02 widgets, median redraw of {repeats - 1} control changes")
    all_ok = True
    for name, (widget, move) in moves.items():
        widget.redraw_ms.clear()
        for i in range(1, repeats):
            move(i)
        ms = statistics.median(widget.redraw_ms)
        ok = ms <= targets[name]
        all_ok &= ok
        print(f"  {name:<48} {ms:6.1f} ms (target <= {targets[name]} ms) {'ok' if ok else 'SLOW'}")
    return all_ok


if __name__ == "__main__":
    main()
    widget_redraws()
