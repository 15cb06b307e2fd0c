"""Tests of the context window k and the attention read-outs of course_lib.tasks.gpt (notebook 03)."""

import math

import pytest
import torch

from course_lib.batching import IGNORE_INDEX
from course_lib.data.stories import make_story_corpus
from course_lib.gpt import GPT, GPTConfig
from course_lib.tasks import gpt as P
from course_lib.tokenizers import WordVocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    corpus = make_story_corpus(300, seed=0)
    vocab = WordVocab(corpus.words)
    return corpus, vocab


def model_of(vocab, block_size, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=len(vocab), block_size=block_size, n_layer=2, n_head=2, n_embd=16))


def test_windowed_evaluation_equals_the_plain_one_when_the_window_holds_every_story(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.validation[:25]]
    model = model_of(vocab, 48)
    longest = max(len(w) for w in texts) + 1          # predictions per row
    plain = P.evaluate_lm(model, texts, vocab)
    assert P.evaluate_lm_windowed(model, texts, vocab) == pytest.approx(plain, rel=1e-5)
    assert P.evaluate_lm_windowed(model, texts, vocab, window=longest, batch_size=3) == pytest.approx(plain, rel=1e-5)
    # one token shorter: the last prediction of the longest story loses its first token of context
    assert P.evaluate_lm_windowed(model, texts, vocab, window=longest - 1) != pytest.approx(plain, rel=1e-7)


def test_window_of_one_is_a_table_of_next_tokens(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.validation[:10]]
    model = model_of(vocab, 4).eval()
    with torch.no_grad():   # row a: log P(next | the single token a, at position 0)
        table = model(torch.arange(len(vocab))[:, None])[0][:, 0].log_softmax(-1)
    nll = [-table[a, b].item() for w in texts
           for a, b in zip(vocab.encode(w, add_bos=True), vocab.encode(w, add_eos=True))]
    assert P.evaluate_lm_windowed(model, texts, vocab, window=1) == pytest.approx(sum(nll) / len(nll), rel=1e-5)


def test_windowed_evaluation_predicts_each_token_from_at_most_k_tokens(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.validation[:3]]
    model = model_of(vocab, 5).eval()
    for k in (2, 5):
        nll = []
        for w in texts:   # the definition, one token at a time: the k tokens before it (fewer at the start)
            row = vocab.encode(w, add_bos=True, add_eos=True)
            for t in range(1, len(row)):
                context = torch.tensor([row[max(0, t - k):t]])
                with torch.no_grad():
                    nll.append(-model(context)[0][0, -1].log_softmax(-1)[row[t]].item())
        got = P.evaluate_lm_windowed(model, texts, vocab, window=k, batch_size=7)
        assert got == pytest.approx(sum(nll) / len(nll), rel=1e-5)


def test_windowed_batches_are_pieces_of_the_stories(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.train[:20]]
    rows = [vocab.encode(w, add_bos=True, add_eos=True) for w in texts]
    batches = P.windowed_lm_batches(texts, vocab, window=5, batch_size=8, seed=1)
    inputs, targets = next(batches)
    assert inputs.shape == targets.shape == (8, 5)
    for x, y in zip(inputs.tolist(), targets.tolist()):
        piece = x + [y[-1]]
        assert any(row[s:s + 6] == piece for row in rows for s in range(len(row)))   # consecutive tokens
        assert x[1:] == y[:-1]                                                      # targets = inputs shifted
    again = next(P.windowed_lm_batches(texts, vocab, window=5, batch_size=8, seed=1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)
    short = next(P.windowed_lm_batches([["hello"]] * 2, WordVocab(["hello"]), window=4, batch_size=2))
    assert short[1][0].tolist()[2:] == [IGNORE_INDEX] * 2   # one padded window: <bos> hello -> hello <eos>


def test_window_arguments_are_checked(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.validation[:3]]
    model = model_of(vocab, 4)
    with pytest.raises(ValueError, match="window"):
        P.evaluate_lm_windowed(model, texts, vocab, window=5)
    with pytest.raises(ValueError, match="window"):
        P.evaluate_lm_windowed(model, texts, vocab, window=0)
    with pytest.raises(ValueError, match="window"):
        P.windowed_lm_batches(texts, vocab, window=-1)
    with pytest.raises(ValueError, match="batch_size"):
        P.windowed_lm_batches(texts, vocab, window=40, batch_size=4)   # one window per story: 3 windows
    with pytest.raises(TypeError, match="texts"):
        P.window_count_loss("the man", texts, 2)


def test_windowed_pretraining_learns_and_is_deterministic(world):
    corpus, vocab = world
    train, val = [s.words for s in corpus.train], [s.words for s in corpus.validation]
    config = GPTConfig(vocab_size=len(vocab), block_size=3, n_layer=1, n_head=2, n_embd=16)
    kwargs = dict(steps=40, batch_size=32, lr=1e-2, progress=False, live_plot=False, eval_every=40)
    m1, h1 = P.pretrain_windowed_gpt(train, val, vocab, config, **kwargs)
    m2, h2 = P.pretrain_windowed_gpt(train, val, vocab, config, **kwargs)
    assert h1.losses == h2.losses
    assert h1.evals[-1]["val_loss"] < 0.7 * math.log(len(vocab))


def test_count_loss_falls_with_a_longer_window_on_its_own_texts(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.train[:200]]
    losses = [P.window_count_loss(texts, texts, k) for k in (1, 2, 4, 8)]
    assert all(a >= b - 1e-12 for a, b in zip(losses, losses[1:]))  # more context never hurts on the same texts
    assert losses[0] > losses[-1] + 0.1
    assert P.window_count_loss(texts, [["nobody", "ever", "wrote", "this"]], 2) == math.inf


def test_attention_weights_are_causal_rows_of_probabilities(world):
    corpus, vocab = world
    model = model_of(vocab, 48).train()
    ids, _ = vocab.encode_batch([s.words for s in corpus.validation[:4]], add_bos=True)
    w = P.attention_weights(model, ids)
    L, B, H, T = 2, 4, 2, ids.shape[1]
    assert w.shape == (L, B, H, T, T)
    above = torch.ones(T, T, dtype=torch.bool).triu(1)
    assert (w[..., above] == 0).all()                                   # exactly 0 above the diagonal
    assert torch.allclose(w.sum(-1), torch.ones(L, B, H, T), atol=1e-5)  # each row sums to 1
    assert model.training and all(b.need_weights is None for b in model.blocks)   # state given back
    assert torch.allclose(w[:, :1], P.attention_weights(model, ids[:1]), atol=1e-6)


def test_event_attention_finds_a_head_built_to_read_the_event(world):
    corpus, vocab = world
    texts = [s.words for s in corpus.validation if "felt" in s.words][:30]
    model = model_of(vocab, 48)
    share, uniform = P.event_attention(model, texts, vocab)
    assert share.shape == (2, 2) and 0 < uniform < 1 and ((share >= 0) & (share <= 1)).all()
    # with W_q = 0 every score is 0: attention is uniform over the visible positions, share = uniform
    for block in model.blocks:
        with torch.no_grad():
            block.self_attn.w_q.weight.zero_()
            block.self_attn.w_q.bias.zero_()
    flat, flat_uniform = P.event_attention(model, texts, vocab)
    assert flat_uniform == pytest.approx(uniform)
    assert torch.allclose(flat, torch.full((2, 2), uniform), atol=1e-5)
    story = "the man went to the park . he played football . he found a coin . he felt so glad . he smiled .".split()
    # "he found a coin ." is positions 12-16 of <bos> w_1 ...; "felt" is position 18, "so" 19
    assert P.event_attention(model, [story], vocab)[1] == pytest.approx(5 / 19)
    assert P.event_attention(model, [story], vocab, query="feeling")[1] == pytest.approx(5 / 20)
    with pytest.raises(ValueError, match="query"):
        P.event_attention(model, texts, vocab, query="cried")
    with pytest.raises(ValueError, match="texts\\[0\\]"):
        P.event_attention(model, [["the", "man", "went", "home", "."]], vocab)
