"""Speed of decoding with a key/value cache against re-running the whole prefix at every step.

Run from the repository root::

    python benchmarks/decoding.py            # the full table
    python benchmarks/decoding.py --quick    # fewer repetitions, for a smoke test

Two decoders, each timed with ``use_cache=False`` (the reference: step t re-runs all t tokens) and
``use_cache=True`` (step t runs the newest token against the cached keys and values), in
alternation on 2 CPU threads, median of the repetitions; the cached path must return the same
tokens (checked before timing):

- ``EncoderDecoder.greedy_decode`` at notebook 02's size (d = 64, 4 heads, d_ff = 128, 2 + 2
  layers, max_len 32) on notebook 02's sentences: the notes' examples one at a time (what the
  attention explorer traces) and the 600 test sentences in batches of 500 (what
  ``evaluate_translation`` does), each decoded for as many steps as its reference needs
  (longest English sentence + <eos>, + 1 as in ``evaluate_translation``).
- ``GPT.generate`` at notebook 03's size (block_size 48, 2 layers, 4 heads, d = 64, the story
  vocabulary) from the notes' story prompt, filling the context window; and the character model
  of notebook 03 (block_size 64), whose 80 new tokens run past the window, where the cache gives
  way to cropping and recomputing.

The weights are random: speed depends on sizes and the number of steps, not on what was learned
(a random translator rarely emits <eos>, so it decodes the full budget, as a trained one does for
the batch's longest sentence). Speed-up = uncached time / cached time; above 1 the cache helps.
"""

from __future__ import annotations

import torch

from course_lib.data import NOTES_EXAMPLES, make_translation_corpus
from course_lib.data.stories import NOTES_STORY, make_story_corpus
from course_lib.encoder_decoder import EncoderDecoder
from course_lib.gpt import GPT, GPTConfig
from course_lib.tasks.translation import encode_pairs
from course_lib.tokenizers import WordVocab
from timing import compare, fmt_time, report_machine_load, setup, start_machine_load

THREADS = 2


def translation_cases() -> list[tuple[str, EncoderDecoder, dict]]:
    """(name, model, greedy_decode keyword arguments) at notebook 02's size, on its sentences."""
    corpus = make_translation_corpus(num_sentences=6000, seed=0)   # notebook 02's corpus
    src_vocab, tgt_vocab = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    torch.manual_seed(0)
    model = EncoderDecoder(len(src_vocab), len(tgt_vocab), d_model=64, num_heads=4, d_ff=128, num_layers=2,
                           max_len=32).eval()
    ids = dict(bos_id=tgt_vocab.bos_id, eos_id=tgt_vocab.eos_id)
    cases = []
    for pair in NOTES_EXAMPLES[:3]:
        src = torch.tensor([src_vocab.encode(pair.zh)])
        cases.append((f"notes: {' '.join(pair.zh)}", model, dict(src=src, max_len=len(pair.en) + 1, **ids)))
    for i in range(0, len(corpus.test), 500):
        chunk = corpus.test[i:i + 500]
        src = encode_pairs(chunk, src_vocab, tgt_vocab)[0]
        cases.append((f"test[{i}:{i + len(chunk)}] (B={len(chunk)})", model,
                      dict(src=src, max_len=max(len(p.en) for p in chunk) + 2, **ids)))
    return cases


def gpt_cases() -> list[tuple[str, GPT, dict]]:
    """(name, model, generate keyword arguments) at notebook 03's sizes."""
    corpus = make_story_corpus(num_stories=20000, seed=0)           # notebook 03's corpus
    vocab = WordVocab(corpus.words)
    torch.manual_seed(0)
    words = GPT(GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=2, n_head=4, n_embd=64)).eval()
    prompt = torch.tensor([vocab.encode(NOTES_STORY.split()[:5], add_bos=True)])  # <bos> the man went to the
    chars = GPT(GPTConfig(vocab_size=40, block_size=64, n_layer=2, n_head=4, n_embd=64)).eval()
    char_prompt = torch.randint(0, 40, (1, 4))                    # "the " in notebook 03
    fill = 48 - prompt.shape[1]
    return [
        (f"words, B=1, {fill} new (fills block 48)", words, dict(idx=prompt, max_new_tokens=fill)),
        (f"words, B=16, {fill} new", words, dict(idx=prompt.repeat(16, 1), max_new_tokens=fill)),
        ("chars, B=1, 80 new (past block 64)", chars, dict(idx=char_prompt, max_new_tokens=80)),
    ]


def run(name: str, fn, kwargs: dict, repeats: int, min_seconds: float, warmup: int, seeded: bool) -> float:
    def call(use_cache):
        extra = dict(generator=torch.Generator().manual_seed(0)) if seeded else {}
        return fn(**kwargs, **extra, use_cache=use_cache)

    slow, fast = call(False), call(True)
    assert torch.equal(slow, fast), f"{name}: the cached path changed the tokens"
    steps = slow.shape[1] - (kwargs["idx"].shape[1] if seeded else 0)
    times = compare({"uncached": lambda: call(False), "cached": lambda: call(True)},
                    repeats=repeats, min_seconds=min_seconds, warmup=warmup)
    speedup = times["uncached"] / times["cached"]
    print(f"{name:<40} {steps:>5} | {fmt_time(times['uncached'])} {fmt_time(times['cached'])} {speedup:>8.2f}")
    return speedup


def main() -> None:
    repeats, min_seconds, warmup = setup(__doc__.splitlines()[0], THREADS)
    warmup = min(warmup, 3)
    load = start_machine_load()
    header = f"{'case':<40} {'steps':>5} | {'uncached':>11} {'cached':>11} {'speed-up':>8}"
    print(f"median of {repeats} samples per path; speed-up = uncached / cached")
    for title, cases, seeded in (("EncoderDecoder.greedy_decode (notebook 02's size)", translation_cases(), False),
                                 ("GPT.generate (notebook 03's sizes)", gpt_cases(), True)):
        print()
        print(title)
        print(header)
        print("-" * len(header))
        for name, model, kwargs in cases:
            fn = model.generate if seeded else model.greedy_decode
            run(name, fn, kwargs, repeats, min_seconds, warmup, seeded)
    print()
    report_machine_load(load)


if __name__ == "__main__":
    main()
