"""How fast every widget of notebooks 01-04 answers its controls (the Python side).

Run from the repository root::

    python benchmarks/widgets.py            # every control, 20 moves each
    python benchmarks/widgets.py --quick    # 5 moves each, a smoke test

Each widget is built as a notebook builds it, on a model of the notebook's size: untrained (what
the weights learned changes no drawing; an untrained translator or GPT writes the longest output,
so these are upper bounds), except notebook 04's model view, which shows the bundled
all-MiniLM-L6-v2 as the notebook does. A move is one ``control.value = ...``, timed from the
assignment to the new picture's PNG (the callback's whole work: translating, sampling, drawing),
on 2 CPU threads; each row is the median of the moves.

Two kinds of control, two targets (what the browser adds, about 60-80 ms for sending and showing
the picture, comes on top):

- a *view* control shows another part of what is already computed (step, layer, head, position,
  temperature, seed): at most 50 ms here, so that it answers within 100 ms in the browser;
- a *recompute* control asks for new work (a typed or chosen sentence, another trained model,
  another table): at most 150 ms here, for 250 ms in the browser. Every move of a recompute row
  asks for something the widget has not computed before (no cache helps it), except the rows
  marked "seen before", which go back to values chosen a moment ago.
"""

from __future__ import annotations

import statistics
import time

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from course_lib.attention import SCORE_NAMES  # noqa: E402
from course_lib.bert import BertConfig, BertForPreTraining, BertModel  # noqa: E402
from course_lib.data import make_translation_corpus  # noqa: E402
from course_lib.data.stories import make_story_corpus  # noqa: E402
from course_lib.encoder_decoder import EncoderDecoder  # noqa: E402
from course_lib.gpt import GPT, GPTConfig  # noqa: E402
from course_lib.pretrained import minilm_path  # noqa: E402
from course_lib.tasks import translation  # noqa: E402
from course_lib.tokenizers import SPECIAL_TOKENS, WordPieceTokenizer, WordVocab, segment_chinese  # noqa: E402
from course_lib.widgets.attention import AttentionExplorer  # noqa: E402
from course_lib.widgets.bert import FillMaskExplorer, MaskingExplorer, ModelView  # noqa: E402
from course_lib.widgets.gpt import GenerationExplorer  # noqa: E402
from course_lib.widgets.transformer import PositionExplorer, ScalingExplorer, TransformerAttentionExplorer  # noqa: E402
from timing import report_machine_load, setup, start_machine_load  # noqa: E402

THREADS = 2
TARGET_MS = {"view": 50.0, "recompute": 150.0}


def timed_moves(move, moves: int, prepare=None) -> float:
    """Median ms of ``move(i)`` for i = 1..moves; ``prepare(i)`` runs first, untimed."""
    samples = []
    for i in range(1, moves + 1):
        if prepare is not None:
            prepare(i)
        start = time.perf_counter()
        move(i)
        samples.append(1000 * (time.perf_counter() - start))
    return statistics.median(samples)


def pasted(texts: list[str], sep: str = "") -> list[str]:
    """Each text repeated to 5,000 characters: what a learner pastes by mistake (the widget cuts it)."""
    return [((t + sep) * (5000 // len(t) + 1))[:5000] for t in texts]


def notebook_01(moves: int) -> list[tuple]:
    corpus = make_translation_corpus(seed=0)
    sv, tv = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    torch.manual_seed(0)
    models = {name: translation.AttentionGRUTranslator(len(sv), len(tv), d_model=64, score=name,
                                                      bos_id=tv.bos_id, eos_id=tv.eos_id) for name in SCORE_NAMES}
    sentences = [p.zh for p in corpus.test[:3 * moves + 3]]
    explorer = AttentionExplorer(lambda score, words: translation.trace_translation(models[score], words, sv, tv),
                                 sentences=sentences, score_names=list(SCORE_NAMES),
                                 segment=lambda text: segment_chinese(text, sv.itos))
    options = explorer.sentence.options
    typed = ["".join(p.zh) for p in corpus.test[-moves - 1:]]
    return [
        ("01 attention explorer", "step", "view",
         lambda i: setattr(explorer.step, "value", 1 + i % explorer.step.max), None),
        ("01 attention explorer", "s(h, q) (another model)", "recompute",
         lambda i: setattr(explorer.score, "value", SCORE_NAMES[i % len(SCORE_NAMES)]),
         lambda i: setattr(explorer.sentence, "value", options[2 * moves + i][1])),
        ("01 attention explorer", "sentence", "recompute",
         lambda i: setattr(explorer.sentence, "value", options[i][1]), None),
        ("01 attention explorer", "sentence (seen before)", "recompute",
         lambda i: setattr(explorer.sentence, "value", options[moves - i % 8][1]), None),
        ("01 attention explorer", "your own (typed)", "recompute",
         lambda i: setattr(explorer.typed, "value", typed[i]), None),
        ("01 attention explorer", "your own (5,000 chars)", "recompute",
         lambda i: setattr(explorer.typed, "value", pasted(typed)[i]), None),
    ]


def notebook_02(moves: int) -> list[tuple]:
    corpus = make_translation_corpus(seed=0)
    sv, tv = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    torch.manual_seed(0)
    model = EncoderDecoder(len(sv), len(tv), d_model=64, num_heads=4, d_ff=128, num_layers=2, max_len=32)
    scaling, positions = ScalingExplorer(), PositionExplorer()
    fresh = {}  # a new position explorer per move: every width it is asked for is new to it

    def new_positions(i: int) -> None:
        fresh["explorer"] = PositionExplorer()

    def visit_every_width(i: int) -> None:
        if i == 1:
            for d in d_models:
                positions.d_model.value = d

    explorer = TransformerAttentionExplorer(lambda words: translation.trace_transformer(model, words, sv, tv),
                                            [p.zh for p in corpus.test[:moves + 1]],
                                            segment=lambda text: segment_chinese(text, sv.itos))
    d_models = positions.d_model.options
    other_widths = [d for d in d_models if d != positions.d_model.value]
    kinds = explorer.kind.options
    typed = ["".join(p.zh) for p in corpus.test[-moves - 1:]]
    return [
        ("02 sqrt(d_k) explorer", "d_k", "view",
         lambda i: setattr(scaling.d_k, "value", scaling.d_ks[i % len(scaling.d_ks)]), None),
        ("02 position explorer", "position p", "view",
         lambda i: setattr(positions.position, "value", (7 * i) % positions.max_len), None),
        ("02 position explorer", "d_model (another table)", "recompute",
         lambda i: setattr(fresh["explorer"].d_model, "value", other_widths[i % len(other_widths)]), new_positions),
        ("02 position explorer", "d_model (seen before)", "recompute",
         lambda i: setattr(positions.d_model, "value", d_models[i % len(d_models)]), visit_every_width),
        ("02 attention explorer", "head", "view",
         lambda i: setattr(explorer.head, "value", explorer.head.options[i % len(explorer.head.options)][1]), None),
        ("02 attention explorer", "layer", "view",
         lambda i: setattr(explorer.layer, "value", explorer.layer.options[i % 2][1]), None),
        ("02 attention explorer", "attention (kind)", "view",
         lambda i: setattr(explorer.kind, "value", kinds[i % len(kinds)]), None),
        ("02 attention explorer", "sentence", "recompute",
         lambda i: setattr(explorer.sentence, "value", explorer.sentence.options[i][1]), None),
        ("02 attention explorer", "your own (typed)", "recompute",
         lambda i: setattr(explorer.typed, "value", typed[i]), None),
        ("02 attention explorer", "your own (5,000 chars)", "recompute",
         lambda i: setattr(explorer.typed, "value", pasted(typed)[i]), None),
    ]


def notebook_03(moves: int) -> list[tuple]:
    corpus = make_story_corpus(seed=0)
    vocab = WordVocab(corpus.words)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=2, n_head=4, n_embd=64))
    explorer = GenerationExplorer(model, vocab, prompt="the man went to the park . he found a coin . he felt")
    prompts = [" ".join(s.words[:8]) for s in corpus.test[:moves + 1]]
    return [
        ("03 generation explorer", "temperature", "view",
         lambda i: setattr(explorer.temperature, "value", round(0.5 + 0.1 * (i % 20), 1)), None),
        ("03 generation explorer", "top-k", "view", lambda i: setattr(explorer.top_k, "value", i % 12), None),
        ("03 generation explorer", "seed", "view", lambda i: setattr(explorer.seed, "value", i % 100), None),
        ("03 generation explorer", "prompt (typed)", "recompute",
         lambda i: setattr(explorer.prompt, "value", prompts[i]), None),
    ]


def notebook_04(moves: int) -> list[tuple]:
    path = minilm_path()
    real_tok = WordPieceTokenizer.from_file(path / "vocab.txt")
    corpus = make_story_corpus(seed=0)
    story_tok = WordPieceTokenizer(list(SPECIAL_TOKENS) + [w for w in corpus.words if w not in SPECIAL_TOKENS])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(story_tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=256, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    story_bert = BertForPreTraining(config)
    masking = MaskingExplorer(real_tok, "the man went to the store", "he bought a gallon of milk")
    fill = FillMaskExplorer(story_bert, story_tok,
                            "the man went to [MASK] store . [SEP] he bought a gallon [MASK] milk .")
    view = ModelView(BertModel.from_pretrained(path), real_tok, "the man went to the store",
                     "he bought a gallon of milk")
    sentences = [s.sentences[0] for s in corpus.test[:moves + 1]]
    blanks = [" ".join(["[MASK]" if k == 2 else w for k, w in enumerate(s.split())]) for s in sentences]
    return [
        ("04 masking explorer", "rate", "view",
         lambda i: setattr(masking.rate, "value", round(0.05 * (1 + i % 10), 2)), None),
        ("04 masking explorer", "seed", "view", lambda i: setattr(masking.seed, "value", i % 100), None),
        ("04 masking explorer", "sentence A (typed)", "recompute",
         lambda i: setattr(masking.text_a, "value", sentences[i]), None),
        ("04 fill-mask explorer", "text (typed)", "recompute", lambda i: setattr(fill.text, "value", blanks[i]),
         None),
        ("04 model view", "layer", "view", lambda i: setattr(view.layer, "value", 1 + i % 6), None),
        ("04 model view", "head", "view", lambda i: setattr(view.head, "value", 1 + i % 12), None),
        ("04 model view", "sentence A (typed)", "recompute",
         lambda i: setattr(view.text_a, "value", sentences[i]), None),
        ("04 model view", "sentence A (5,000 chars)", "recompute",
         lambda i: setattr(view.text_a, "value", pasted(sentences, " ")[i]), None),
    ]


def main() -> None:
    repeats, _, _ = setup(__doc__.splitlines()[0], THREADS)
    moves = min(repeats, 20)
    load = start_machine_load()
    print(f"median ms of {moves} moves per control; targets: view <= {TARGET_MS['view']:.0f} ms, "
          f"recompute <= {TARGET_MS['recompute']:.0f} ms")
    print()
    header = f"{'widget':<24} {'control':<26} {'kind':<9} | {'ms':>7} {'target':>6}"
    print(header)
    print("-" * len(header))
    all_ok = True
    for build in (notebook_01, notebook_02, notebook_03, notebook_04):
        for widget, control, kind, move, prepare in build(moves):
            ms = timed_moves(move, moves, prepare)
            ok = ms <= TARGET_MS[kind]
            all_ok &= ok
            print(f"{widget:<24} {control:<26} {kind:<9} | {ms:7.1f} {'ok' if ok else 'SLOW':>6}", flush=True)
    print()
    print("every control meets its target" if all_ok else "some controls miss their target (see 'SLOW')")
    report_machine_load(load)


if __name__ == "__main__":
    main()
