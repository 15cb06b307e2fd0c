"""Notebook 03's generation widget and the functions behind it, without a browser."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.data.stories import make_story_corpus  # noqa: E402
from course_lib.gpt import GPT, GPTConfig  # noqa: E402
from course_lib.widgets.gpt import GenerationExplorer, continue_text, next_word_distribution  # noqa: E402
from course_lib.tokenizers import WordVocab  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lm():
    vocab = WordVocab(make_story_corpus(100, seed=0).words)
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=1, n_head=2, n_embd=16)), vocab


def test_next_word_distribution_follows_temperature_and_top_k(lm):
    model, vocab = lm
    full = next_word_distribution(model, vocab, "the man went to", n=len(vocab))
    assert sum(p for _, p in full) == pytest.approx(1.0, abs=1e-5)
    assert [p for _, p in full] == sorted((p for _, p in full), reverse=True)
    cut = next_word_distribution(model, vocab, "the man went to", top_k=3, n=5)
    assert [w for w, _ in cut[:3]] == [w for w, _ in full[:3]]
    assert sum(p for _, p in cut[:3]) == pytest.approx(1.0, abs=1e-5) and cut[3][1] == 0
    cold = next_word_distribution(model, vocab, "the man went to", temperature=0.2, n=1)
    assert cold[0][0] == full[0][0] and cold[0][1] > full[0][1]
    with pytest.raises(ValueError, match="vocabulary: martian"):
        next_word_distribution(model, vocab, "the martian went")


def test_continue_text_is_seeded(lm):
    model, vocab = lm
    a = continue_text(model, vocab, "anna went to the park .", seed=3)
    assert a == continue_text(model, vocab, "anna went to the park .", seed=3)
    assert all(w in vocab for w in a) and 0 < len(a) <= 40
    with pytest.raises(ValueError, match="fills the whole context window"):
        continue_text(model, vocab, " ".join(["the"] * 47))


def test_generation_explorer_redraws_on_every_control(lm):
    model, vocab = lm
    w = GenerationExplorer(model, vocab)
    # ipywidgets 8 ignores a click on the track and the arrow keys of a slider with
    # continuous_update=False (the handle moves, the value does not): every slider updates live.
    assert all(s.continuous_update for s in (w.temperature, w.top_k, w.seed))
    first, story = w.render(), w.status.value
    w.temperature.value = 2.5
    w.seed.value = 7
    assert w.status.value != story
    w.top_k.value = 1
    assert sum(bar.get_width() > 0 for bar in w.bars) == 1
    w.prompt.value = "the girl went to the library . she"
    assert "the girl went to the library . she" in w.status.value
    assert w.render() != first
    w.prompt.value = "the martian went"
    assert "martian" in w.status.value  # an unknown word is reported, not raised


def test_generation_explorer_runs_the_model_once_per_prompt(lm):
    model, vocab = lm
    w = GenerationExplorer(model, vocab, prompt="the man went to")
    calls = []
    hook = model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    try:
        w.temperature.value = 0.5
        forwards = len(calls)  # sampling a new continuation: one forward per sampled word
        w.temperature.value = 1.0  # seen before: nothing runs
        assert len(calls) == forwards
        table = [b.get_width() for b in w.bars]
        w.seed.value = 3  # another sample, the same distribution
        assert [b.get_width() for b in w.bars] == table
    finally:
        hook.remove()


def test_functions_leave_the_model_in_its_mode(lm):
    model, vocab = lm
    model.train()
    next_word_distribution(model, vocab, "the man went to")
    continue_text(model, vocab, "the man went to")
    assert model.training
    model.eval()
