"""Speed of the course's BERT and WordPiece tokenizer against Hugging Face transformers.

Run from the repository root::

    python benchmarks/bert.py            # the full table
    python benchmarks/bert.py --quick    # fewer repetitions, for a smoke test

1. Forward pass of ``course_lib.bert.BertModel`` over ``transformers.BertModel``
   (``attn_implementation="eager"``: attention weights computed explicitly, as ours are), both
   with the bundled all-MiniLM-L6-v2 weights, batch 8 x 128 tokens, eval mode, no gradients, 2 CPU
   threads, timed in alternation (median). Both return every layer's attention weights. Target:
   ours / transformers <= 1.2.
2. WordPiece tokenisation throughput (characters per second) of ``WordPieceTokenizer.tokenize``
   against ``transformers.BertTokenizerLegacy`` (the slow, pure-Python BERT tokenizer) and, for
   reference, ``transformers.BertTokenizer`` (Rust), on the same text; the tokens are checked equal.

The model view's response times (notebook 04) are in ``benchmarks/widgets.py``.
"""

from __future__ import annotations

import random
import statistics
import time

import torch

from course_lib.bert import BertModel
from course_lib.pretrained import minilm_path
from course_lib.tokenizers import WordPieceTokenizer
from timing import compare, fmt_time, report_machine_load, setup, start_machine_load

TARGET_RATIO = 1.2
THREADS = 2


def model_forward(repeats: int, min_seconds: float, warmup: int) -> bool:
    import transformers

    transformers.logging.set_verbosity_error()
    path = minilm_path()
    ours = BertModel.from_pretrained(path)
    theirs = transformers.BertModel.from_pretrained(str(path), attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (8, 128), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    types = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a = ours(ids, types, mask)
        b = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, output_attentions=True)
        torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-4, rtol=1e-4)

    def run_ours():
        with torch.no_grad():
            ours(ids, types, mask)

    def run_theirs():
        with torch.no_grad():
            theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, output_attentions=True)

    times = compare({"ours": run_ours, "transformers": run_theirs}, repeats=repeats, min_seconds=min_seconds,
                    warmup=warmup)
    ratio = times["ours"] / times["transformers"]
    ok = ratio <= TARGET_RATIO
    print(f"MiniLM forward, batch 8 x 128 tokens, attention weights returned: ours {fmt_time(times['ours'])}, "
          f"transformers (eager) {fmt_time(times['transformers'])}, ratio {ratio:.2f} "
          f"(target <= {TARGET_RATIO}) {'ok' if ok else 'SLOW'}")
    return ok


def tokenizer_throughput(repeats: int) -> None:
    import transformers

    path = minilm_path()
    ours = WordPieceTokenizer.from_file(path / "vocab.txt")
    slow = transformers.BertTokenizerLegacy.from_pretrained(str(path))
    fast = transformers.BertTokenizer.from_pretrained(str(path))
    rng = random.Random(0)
    words = ("the man went to store bought gallon milk penguins are flightless birds attention transformer "
             "pretraining unbelievable naïve café 北京 tokenization, (really)! 2024 e-mail").split()
    text = " ".join(rng.choice(words) for _ in range(20000))
    assert ours.tokenize(text) == slow.tokenize(text) == fast.tokenize(text)
    rates = {}
    for name, tok in (("ours", ours), ("BertTokenizerLegacy (Python)", slow), ("BertTokenizer (Rust)", fast)):
        samples = []
        for _ in range(max(3, repeats // 3)):
            start = time.perf_counter()
            tok.tokenize(text)
            samples.append(time.perf_counter() - start)
        rates[name] = len(text) / statistics.median(samples)
    print(f"WordPiece on {len(text):,} characters ({len(ours.tokenize(text)):,} tokens, identical for all three):")
    for name, rate in rates.items():
        print(f"  {name:<30} {rate / 1e6:6.2f} M characters/s  ({rate / rates['ours']:.2f} x ours)")


def main() -> None:
    repeats, min_seconds, warmup = setup(__doc__.splitlines()[0], THREADS)
    load = start_machine_load()
    model_forward(repeats, min_seconds, warmup)
    print()
    tokenizer_throughput(repeats)
    report_machine_load(load)


if __name__ == "__main__":
    main()
