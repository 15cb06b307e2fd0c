"""Tests of course_lib.tasks.translation: the GRU translator (notebook 01) and the Transformer recipe (02)."""

import pytest
import torch

from course_lib.data import SentencePair, make_translation_corpus
from course_lib.encoder_decoder import EncoderDecoder
from course_lib.tasks import translation
from course_lib.tokenizers import WordVocab


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    corpus = make_translation_corpus(num_sentences=400, seed=3)
    src, tgt = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    return corpus, src, tgt


@pytest.mark.parametrize("score", ["additive", "dot", "scaled_dot", "bilinear"])
def test_shapes_and_weights(setup, score):
    corpus, sv, tv = setup
    model = translation.AttentionGRUTranslator(len(sv), len(tv), d_model=16, score=score)
    batch = next(translation.translation_batches(corpus.train, sv, tv, batch_size=8))
    src, lengths, tgt_in, tgt_out = batch
    logits, weights = model(src, lengths, tgt_in)
    assert logits.shape == (8, tgt_in.shape[1], len(tv))
    assert weights.shape == (8, tgt_in.shape[1], src.shape[1])
    assert torch.allclose(weights.sum(-1), torch.ones(8, tgt_in.shape[1]), atol=1e-5)
    for b in range(8):  # no attention on padding
        assert weights[b, :, lengths[b]:].abs().max().item() == 0.0 if lengths[b] < src.shape[1] else True


def test_padding_does_not_change_a_sentence(setup):
    corpus, sv, tv = setup
    model = translation.AttentionGRUTranslator(len(sv), len(tv), d_model=16).eval()
    short = min(corpus.train, key=lambda p: len(p.zh))
    long = max(corpus.train, key=lambda p: len(p.zh))
    alone = translation.encode_pairs([short], sv, tv)
    together = translation.encode_pairs([short, long], sv, tv)
    a, wa = model(alone[0], alone[1], alone[2])
    b, wb = model(together[0], together[1], together[2][:, :alone[2].shape[1]])
    T, S = a.shape[1], len(short.zh)
    assert torch.allclose(a[0], b[0, :T], atol=1e-5)
    assert torch.allclose(wa[0], wb[0, :T, :S], atol=1e-6)


def test_trace_is_consistent(setup):
    corpus, sv, tv = setup
    model = translation.AttentionGRUTranslator(len(sv), len(tv), d_model=16)
    zh = list(corpus.test[0].zh)
    trace = translation.trace_translation(model, zh, sv, tv, max_len=6)
    T, S = len(trace["output"]), len(zh)
    assert trace["weights"].shape == (T, S) and trace["contexts"].shape == (T, 16)
    assert torch.allclose(trace["contexts"], trace["weights"] @ trace["encoder_states"], atol=1e-6)
    assert model.training  # mode restored
    with pytest.raises(TypeError, match="list of words"):
        translation.translate(model, "我爱你", sv, tv)
    with pytest.raises(ValueError, match="at least one word"):
        translation.translate(model, [], sv, tv)


class _OracleModel(torch.nn.Module):
    """Pretends to attend exactly where the gold alignment says (or one word to the right)."""

    def __init__(self, pairs, shift=0):
        super().__init__()
        self.pairs, self.shift = pairs, shift
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, src, src_lengths, tgt_in):
        B, S = src.shape
        w = torch.zeros(B, tgt_in.shape[1], S)
        for b, p in enumerate(self.pairs):
            for j, i in enumerate(p.alignment):
                w[b, j, (max(i, 0) + self.shift) % len(p.zh)] = 1.0
        return None, w


def test_alignment_score_counts_peaks(setup):
    corpus, sv, tv = setup
    pairs = [p for p in corpus.test if any(p.reordered)][:20]
    oracle = _OracleModel(pairs)
    assert translation.alignment_score(oracle, pairs, sv, tv)["reordered"] == 1.0
    assert oracle.training  # forced_attention gives the mode back
    assert translation.alignment_score(_OracleModel(pairs, shift=1), pairs, sv, tv)["reordered"] == 0.0
    plain = [SentencePair(("我",), ("I",), (0,), (False,))]
    with pytest.raises(ValueError, match="no reordered"):
        translation.alignment_score(_OracleModel(plain), plain, sv, tv)


def test_training_learns_and_is_deterministic(setup):
    corpus, sv, tv = setup
    kwargs = dict(d_model=32, steps=40, batch_size=32, live_plot=False, progress=False)
    m1, h1 = translation.train_translator(corpus, sv, tv, **kwargs)
    m2, h2 = translation.train_translator(corpus, sv, tv, **kwargs)
    assert h1.losses == h2.losses
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert sum(h1.losses[-5:]) / 5 < 0.6 * sum(h1.losses[:5]) / 5


def test_bad_input(setup):
    _, sv, tv = setup
    with pytest.raises(ValueError, match="d_model must be even"):
        translation.AttentionGRUTranslator(len(sv), len(tv), d_model=15)
    model = translation.AttentionGRUTranslator(len(sv), len(tv), d_model=16)
    with pytest.raises(ValueError, match="src must be"):
        model.encode(torch.zeros(3, dtype=torch.long), torch.tensor([3]))


# ---------------------------------------------------------------------------
# The Transformer on the same task (notebook 02)
# ---------------------------------------------------------------------------

def _small_transformer(sv, tv, **kw):
    torch.manual_seed(0)
    return EncoderDecoder(len(sv), len(tv), d_model=16, num_heads=2, d_ff=32, num_layers=2, max_len=32, **kw)


def test_transformer_loss_and_evaluation(setup):
    corpus, sv, tv = setup
    model = _small_transformer(sv, tv)
    batch = next(translation.translation_batches(corpus.train, sv, tv, batch_size=8))
    loss = translation.transformer_translation_loss(model, batch)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert model.encoder.embedding.tok.weight.grad is not None
    result = translation.evaluate_translation(model, corpus.test[:20], sv, tv)
    assert 0.0 <= result["exact_match"] <= 1.0
    assert model.training  # evaluated in eval mode, the mode given back


def test_trace_transformer_matches_step_by_step_decoding(setup):
    """Re-running the causal decoder on its own output gives the weights of every decoding step."""
    corpus, sv, tv = setup
    model = _small_transformer(sv, tv).eval()
    zh = list(corpus.test[0].zh)
    trace = translation.trace_transformer(model, zh, sv, tv, max_len=8)
    T = len(trace["output"])
    assert trace["target_inputs"][0] == "<bos>" and trace["target_inputs"][1:] == trace["output"][:-1]
    assert trace["maps"]["encoder_self"].shape == (2, 2, len(zh), len(zh))
    assert trace["maps"]["decoder_self"].shape == (2, 2, T, T)
    assert trace["maps"]["cross"].shape == (2, 2, T, len(zh))
    # greedy decoding's last step saw <bos> + all but the last word: its maps are the trace's first rows
    model.greedy_decode(torch.tensor([sv.encode(zh)]), 8, tv.bos_id, tv.eos_id)
    last_step = model.attention_maps()["cross"]
    steps = last_step[0].shape[2]
    for layer in range(2):
        assert torch.allclose(last_step[layer][0], trace["maps"]["cross"][layer, :, :steps], atol=1e-5)
    with pytest.raises(TypeError, match="list of words"):
        translation.trace_transformer(model, "我爱你", sv, tv)
    with pytest.raises(ValueError, match="at least one word"):
        translation.trace_transformer(model, [], sv, tv)


def test_alignment_hits_scores_every_head(setup):
    corpus, _, _ = setup
    pairs = [p for p in corpus.test if any(p.reordered)][:10]
    oracle = []
    for p in pairs:  # two "heads": head 0 on the gold word, head 1 one word to the right
        w = torch.zeros(2, len(p.en), len(p.zh))
        for j, i in enumerate(p.alignment):
            w[0, j, max(i, 0)] = 1.0
            w[1, j, (max(i, 0) + 1) % len(p.zh)] = 1.0
        oracle.append(w)
    result = translation.alignment_hits(oracle, pairs)
    assert result["reordered"].tolist() == [1.0, 0.0]
    assert result["all_aligned"].tolist() == [1.0, 0.0]


def test_cross_attention_alignment_shape(setup):
    corpus, sv, tv = setup
    model = _small_transformer(sv, tv)
    pairs = [p for p in corpus.test if any(p.reordered)][:10]
    result = translation.cross_attention_alignment(model, pairs, sv, tv)
    assert result["reordered"].shape == result["all_aligned"].shape == (2, 2)
    assert ((result["reordered"] >= 0) & (result["reordered"] <= 1)).all()
    assert model.training  # the model's mode is given back


def test_transformer_training_learns_and_is_deterministic(setup):
    corpus, sv, tv = setup
    kwargs = dict(d_model=32, num_heads=2, d_ff=64, steps=60, lr=1e-2, batch_size=32, live_plot=False, progress=False)
    m1, h1 = translation.train_transformer_translator(corpus, sv, tv, **kwargs)
    m2, h2 = translation.train_transformer_translator(corpus, sv, tv, **kwargs)
    assert h1.losses == h2.losses
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert sum(h1.losses[-5:]) / 5 < 0.6 * sum(h1.losses[:5]) / 5
    _, h3 = translation.train_transformer_translator(corpus, sv, tv, norm_first=True, **kwargs)
    assert h3.losses != h1.losses
