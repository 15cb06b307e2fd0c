"""Training-step time of the course's GPT against the same model built from torch.nn.

Run from the repository root::

    python benchmarks/gpt.py            # the full table
    python benchmarks/gpt.py --quick    # fewer repetitions, for a smoke test

The reference is the same architecture assembled from PyTorch's own modules: token and position
embeddings, ``torch.nn.TransformerEncoderLayer(norm_first=True, activation=GELU-tanh,
batch_first=True)`` blocks run with a causal mask, a final LayerNorm and a tied output layer. Both
get the same weights (checked: same logits) and are timed for one full training step (forward,
cross-entropy, backward, AdamW update) on 2 CPU threads, in alternation, median of the samples.
Ours also keeps every head's attention weights for visualisation, which torch's layer does not
compute.

Two sizes: notebook 03's (2 layers, 64 wide, 48 tokens) and a larger one. Tokens per second
counts the tokens of one batch over the step time.

The target: ours / torch <= 1.15 at every size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from course_lib.gpt import GPT, GPTConfig
from course_lib.transformer import to_torch
from timing import compare, fmt_time, report_machine_load, setup, start_machine_load

TARGET_RATIO = 1.15
THREADS = 2

SIZES = [
    # name, batch, block, layers, heads, width, vocab
    ("notebook 03", 32, 48, 2, 4, 64, 111),
    ("larger", 16, 128, 4, 4, 256, 512),
]


class TorchGPT(nn.Module):
    """The course GPT's architecture from torch.nn parts, with a copy of its weights."""

    def __init__(self, ours: GPT):
        super().__init__()
        self.wte = nn.Embedding.from_pretrained(ours.wte.weight.detach().clone(), freeze=False)
        self.wpe = nn.Embedding.from_pretrained(ours.wpe.weight.detach().clone(), freeze=False)
        self.blocks = nn.ModuleList(to_torch(block) for block in ours.blocks)
        self.ln_f = nn.LayerNorm(ours.config.n_embd)
        self.ln_f.load_state_dict(ours.ln_f.state_dict())
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(ours.config.block_size))

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x, src_mask=self.causal[:T, :T], is_causal=True)
        return self.ln_f(x) @ self.wte.weight.T  # tied output layer


def training_step(model, optimizer, idx, targets, ours: bool) -> None:
    logits = model(idx)[0] if ours else model(idx)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    repeats, min_seconds, warmup = setup(__doc__.splitlines()[0], THREADS)
    load = start_machine_load()
    print(f"one training step (forward, loss, backward, AdamW), float32, CPU; median of {repeats} samples; "
          f"target ours / torch <= {TARGET_RATIO}")
    print()
    header = (f"{'size':<12} {'B':>3} {'T':>4} {'L':>2} {'d':>4} | {'ours':>11} {'torch':>11} {'ours/torch':>10} "
              f"{'tokens/s (ours)':>16} {'target':>6}")
    print(header)
    print("-" * len(header))
    all_ok = True
    for name, B, T, L, h, d, V in SIZES:
        torch.manual_seed(0)
        ours = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=h, n_embd=d)).train()
        ref = TorchGPT(ours).train()
        idx = torch.randint(0, V, (B, T))
        targets = torch.randint(0, V, (B, T))
        with torch.no_grad():  # a benchmark of the wrong thing is worthless
            torch.testing.assert_close(ours.eval()(idx)[0], ref.eval()(idx), atol=1e-4, rtol=1e-4)
        ours.train(), ref.train()
        opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
        opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-4)
        times = compare({"ours": lambda: training_step(ours, opt_ours, idx, targets, True),
                         "torch": lambda: training_step(ref, opt_ref, idx, targets, False)},
                        repeats=repeats, min_seconds=min_seconds, warmup=warmup)
        ratio = times["ours"] / times["torch"]
        ok = ratio <= TARGET_RATIO
        all_ok &= ok
        print(f"{name:<12} {B:>3} {T:>4} {L:>2} {d:>4} | {fmt_time(times['ours'])} {fmt_time(times['torch'])} "
              f"{ratio:>10.2f} {B * T / times['ours']:>16,.0f} {'ok' if ok else 'SLOW':>6}")
    print()
    print("all sizes meet the target" if all_ok else "some sizes miss the target (see 'SLOW')")
    report_machine_load(load)


if __name__ == "__main__":
    main()
