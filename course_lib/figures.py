"""Regenerate every image in ``figures/``: ``python -m course_lib.figures``.

Each figure is computed from the library (training included), seeded, and saved without
timestamps, so running it twice on the same machine writes the same bytes. The folder must be a
path (str or pathlib.Path) and the step counts positive ints: checked before any training starts.
"""

from __future__ import annotations

import argparse
import numbers
import os
import pathlib

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from . import _checks
from . import diagnostics, diagrams, viz  # noqa: E402
from .bert import BertModel  # noqa: E402
from .data import NOTES_EXAMPLES, make_translation_corpus  # noqa: E402
from .data.stories import FEELINGS, entropy_floor, make_story_corpus  # noqa: E402
from .gpt import GPTConfig  # noqa: E402
from .pretrained import minilm_path  # noqa: E402
from .tasks import gpt as gpt_tasks  # noqa: E402
from .tasks import translation  # noqa: E402
from .tokenizers import WordPieceTokenizer, WordVocab  # noqa: E402
from .widgets.attention import TranslationAttentionView  # noqa: E402
from .widgets.bert import ModelView  # noqa: E402
from .widgets.transformer import TransformerAttentionExplorer  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parents[1] / "figures"


def _folder(out_dir) -> pathlib.Path:
    """``out_dir`` as a Path (a str or an os.PathLike); anything else is a TypeError."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise TypeError(f"out_dir must be a folder path (str or pathlib.Path), got {out_dir!r}")
    return pathlib.Path(out_dir)


def _check_count(name: str, value) -> None:
    _checks.check_positive_int(name, value)


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")


def diagram_figures(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """figures/diagram_attention_rnn.png (notebook 01), figures/diagram_transformer.png (notebook 02),
    figures/diagram_gpt.png (notebook 03) and figures/diagram_bert_input.png (notebook 04): the
    architecture diagrams of :mod:`course_lib.diagrams`, drawn from code (no training)."""
    out_dir = _folder(out_dir)
    paths = []
    for name, draw in (("diagram_attention_rnn.png", diagrams.attention_rnn_decoder),
                       ("diagram_transformer.png", diagrams.transformer),
                       ("diagram_gpt.png", diagrams.gpt),
                       ("diagram_bert_input.png", diagrams.bert_input)):
        fig = draw()
        paths.append(out_dir / name)
        paths[-1].write_bytes(viz.figure_to_png(fig, dpi=100))
        plt.close(fig)
    return paths


def attention_figures(out_dir: pathlib.Path, steps: int = 400, seed: int = 0) -> list[pathlib.Path]:
    """figures/attention_alignment.png and figures/attention_explorer.png (notebook 01)."""
    out_dir = _folder(out_dir)
    _check_count("steps", steps)
    _check_seed(seed)
    corpus = make_translation_corpus(seed=0)
    src_vocab, tgt_vocab = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    model, _ = translation.train_translator(corpus, src_vocab, tgt_vocab, score="additive", steps=steps, seed=seed,
                                        live_plot=False, progress=False)
    pairs = [NOTES_EXAMPLES[1]] + [p for p in corpus.test if "在" in p.zh and "的" in p.zh][:1]
    weights = translation.forced_attention(model, pairs, src_vocab, tgt_vocab)
    fig = viz.plot_attention_grid(weights, [p.zh for p in pairs], [p.en for p in pairs],
                                  title="where the decoder looks while it writes each English word")
    paths = [out_dir / "attention_alignment.png"]
    paths[0].write_bytes(viz.figure_to_png(fig, dpi=100))
    plt.close(fig)

    trace = translation.trace_translation(model, list(pairs[0].zh), src_vocab, tgt_vocab)
    view = TranslationAttentionView(dpi=100)
    view.update(trace["source"], trace["output"], trace["weights"], trace["contexts"],
                step=_step_of(trace["output"], "yesterday"), title="attention explorer (notebook 01)")
    paths.append(out_dir / "attention_explorer.png")
    paths[1].write_bytes(view.to_png())
    plt.close(view.fig)
    return paths


def transformer_figures(out_dir: pathlib.Path, steps: int = 400, seed: int = 0) -> list[pathlib.Path]:
    """figures/add_and_norm.png and figures/transformer_cross_attention.png (notebook 02)."""
    out_dir = _folder(out_dir)
    _check_count("steps", steps)
    _check_seed(seed)
    paths = [out_dir / "add_and_norm.png", out_dir / "transformer_cross_attention.png"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    for name, (residual, norm) in diagnostics.STACK_VARIANTS.items():
        stats = diagnostics.stack_statistics(24, residual=residual, norm=norm, seed=seed)
        for ax, key in zip(axes, ("activation_std", "token_diversity", "grad_norm")):
            ax.plot(stats[key], label=name, lw=2 if residual and norm else 1.3)
    for ax, title in zip(axes, ("activation size (std)", "token diversity", "gradient size (log scale)")):
        ax.set_title(title)
        ax.set_xlabel("depth (layers)")
        ax.grid(alpha=0.3)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("24 random encoder layers: why the Transformer needs Add & Norm")
    paths[0].write_bytes(viz.figure_to_png(fig, dpi=100))
    plt.close(fig)

    corpus = make_translation_corpus(seed=0)
    src_vocab, tgt_vocab = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    model, _ = translation.train_transformer_translator(corpus, src_vocab, tgt_vocab, steps=steps, seed=seed,
                                                    live_plot=False, progress=False)
    reordered = translation.cross_attention_alignment(model, corpus.test, src_vocab, tgt_vocab)["reordered"]
    layer, head = divmod(int(reordered.argmax()), reordered.shape[1])
    explorer = TransformerAttentionExplorer(
        lambda words: translation.trace_transformer(model, words, src_vocab, tgt_vocab), [NOTES_EXAMPLES[1].zh])
    explorer.layer.value, explorer.head.value = layer, head
    paths[1].write_bytes(explorer.render())
    return paths


def gpt_figures(out_dir: pathlib.Path, steps: int = 600, seed: int = 0) -> list[pathlib.Path]:
    """figures/gpt_pretraining.png (notebook 03): the loss against the entropy floor, and the feeling
    words' embedding similarity after pretraining."""
    out_dir = _folder(out_dir)
    _check_count("steps", steps)
    _check_seed(seed)
    corpus = make_story_corpus(seed=0)
    vocab = WordVocab(corpus.words)
    config = GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=2, n_head=4, n_embd=64)
    model, history = gpt_tasks.pretrain_gpt([s.words for s in corpus.train], [s.words for s in corpus.validation],
                                              vocab, config, steps=steps, seed=seed, eval_every=max(1, steps // 6),
                                              live_plot=False, progress=False)
    floor = entropy_floor(corpus.validation)
    feelings = list(FEELINGS["happy"]) + list(FEELINGS["sad"])
    e = torch.nn.functional.normalize(model.wte.weight.detach().cpu()[torch.tensor(vocab.encode(feelings))], dim=-1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True,
                                   gridspec_kw={"width_ratios": [1.2, 1]})
    ax1.plot(history.steps, history.losses, alpha=0.4, label="training loss")
    ax1.plot([e_["step"] for e_ in history.evals], [e_["val_loss"] for e_ in history.evals], "o-", label="validation")
    ax1.axhline(floor, color="gray", ls="--", label=f"entropy floor {floor:.3f}")
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("nats per token")
    ax1.set_title("pretraining a GPT on the story world")
    ax1.legend()
    viz.plot_heatmap(ax2, e @ e.T, feelings, feelings, cmap="RdBu_r", vmin=-1, vmax=1,
                     title="feeling words after pretraining: cos(W_e[a], W_e[b])", colorbar_label="cosine similarity")
    ax2.tick_params(axis="x", labelrotation=90)
    path = out_dir / "gpt_pretraining.png"
    path.write_bytes(viz.figure_to_png(fig, dpi=90))
    plt.close(fig)
    return [path]


def bert_figures(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """figures/bert_model_view.png (notebook 04): all-MiniLM-L6-v2's 72 heads on the notes' sentence pair."""
    out_dir = _folder(out_dir)
    path = minilm_path()
    view = ModelView(BertModel.from_pretrained(path), WordPieceTokenizer.from_file(path / "vocab.txt"),
                     "the man went to the store", "he bought a gallon of milk")
    view.layer.value, view.head.value = 1, 3  # measured in notebook 04: the previous-token head
    out = out_dir / "bert_model_view.png"
    out.write_bytes(view.render())
    return [out]


def _step_of(words: list[str], word: str) -> int:
    """The decoder step that wrote ``word`` (the last step if it never did, e.g. after a very short run)."""
    return words.index(word) if word in words else len(words) - 1


def _steps_arg(text: str) -> int:
    """--steps: a positive int (argparse reports anything else as a usage error naming --steps)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value}")
    return value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=FIGURES, help="output folder (default: figures/)")
    parser.add_argument("--steps", type=_steps_arg, default=400, help="training steps of the translators")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = (diagram_figures(args.out) + attention_figures(args.out, steps=args.steps)
             + transformer_figures(args.out, steps=args.steps) + gpt_figures(args.out) + bert_figures(args.out))
    for path in paths:
        print("wrote", path)


if __name__ == "__main__":
    main()
