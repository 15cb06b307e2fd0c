"""The GRU translator without attention (a fixed context) and exact match by source length."""

import pytest
import torch

from course_lib.data import make_translation_corpus
from course_lib.gru_translator import AttentionGRUTranslator
from course_lib.tasks import translation
from course_lib.tokenizers import WordVocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup():
    corpus = make_translation_corpus(num_sentences=300, seed=5)
    return corpus, WordVocab(corpus.zh_words), WordVocab(corpus.en_words)


def _batch(setup, n=6):
    corpus, sv, tv = setup
    return translation.encode_pairs(corpus.train[:n], sv, tv)


def test_fixed_context_is_the_last_state_of_each_direction(setup):
    corpus, sv, tv = setup
    torch.manual_seed(0)
    model = AttentionGRUTranslator(len(sv), len(tv), d_model=16, attention=False)
    src, lengths, _, _ = _batch(setup)
    H, _, mask = model.encode(src, lengths)
    # the GRU's own final states, one sentence at a time (no padding at all)
    for b in range(src.shape[0]):
        n = int(lengths[b])
        _, last = model.encoder(model.src_embed(src[b:b + 1, :n]))
        expected = torch.cat([last[0, 0], last[1, 0]])
        assert torch.allclose(model.fixed_context(H, mask)[b], expected, atol=1e-5)


def test_without_attention_the_middle_states_do_not_matter(setup):
    torch.manual_seed(0)
    corpus, sv, tv = setup
    src, lengths, tgt_in, _ = _batch(setup)
    b = int(lengths.argmax())
    n = int(lengths[b])
    for attention in (False, True):
        model = AttentionGRUTranslator(len(sv), len(tv), d_model=16, attention=attention).eval()
        H, state, mask = model.encode(src, lengths)
        H2 = H.clone()
        H2[b, 1:n - 1] += 5.0  # change every state but the first and the last
        y = torch.full((src.shape[0],), tv.bos_id)
        out1, _, a = model.decode_step(y, state, H, mask)
        out2, _, _ = model.decode_step(y, state, H2, mask)
        same = torch.allclose(out1[b], out2[b], atol=1e-6)
        assert same is (not attention)
        if not attention:
            assert (a == 0).all() and model.score is None and model.score_name == "none"
        else:
            assert torch.allclose(a.sum(-1), torch.ones(src.shape[0]), atol=1e-5)


def test_no_attention_model_trains_translates_and_decodes(setup):
    corpus, sv, tv = setup
    model, history = translation.train_translator(corpus, sv, tv, steps=30, d_model=16, seed=0, progress=False,
                                                  attention=False)
    assert not model.attention and history.losses[-1] < history.losses[0]
    out = translation.translate(model, list(corpus.test[0].zh), sv, tv, max_len=5)
    assert isinstance(out, list) and len(out) <= 5


def test_exact_match_by_length_adds_up_to_exact_match(setup):
    corpus, sv, tv = setup
    torch.manual_seed(1)
    model = AttentionGRUTranslator(len(sv), len(tv), d_model=16, bos_id=tv.bos_id, eos_id=tv.eos_id)
    by_length = translation.exact_match_by_length(model, corpus.test, sv, tv)
    assert list(by_length) == sorted({len(p.zh) for p in corpus.test})
    for n, (right, total) in by_length.items():
        assert total == sum(len(p.zh) == n for p in corpus.test) and 0 <= right <= total
    overall = translation.evaluate_translation(model, corpus.test, sv, tv)["exact_match"]
    assert sum(r for r, _ in by_length.values()) == round(overall * len(corpus.test))


def test_exact_match_by_length_counts_right_sentences():
    """A model whose greedy output we control: it writes the reference of sentences of one length only."""
    corpus = make_translation_corpus(num_sentences=300, seed=5)
    sv, tv = WordVocab(corpus.zh_words), WordVocab(corpus.en_words)
    model, _ = translation.train_translator(corpus, sv, tv, steps=1, d_model=16, seed=0, progress=False)
    pairs = corpus.test[:20]
    lengths = {len(p.zh) for p in pairs}
    got = translation.exact_match_by_length(model, pairs, sv, tv)
    assert set(got) == lengths and sum(t for _, t in got.values()) == 20
    assert all(r == 0 for r, _ in got.values())  # one step of training translates nothing exactly


def test_alignment_score_counts_words_as_an_int(setup):
    corpus, sv, tv = setup
    model = AttentionGRUTranslator(len(sv), len(tv), d_model=16)
    result = translation.alignment_score(model, corpus.test, sv, tv)
    assert isinstance(result["num_reordered"], int) and result["num_reordered"] > 0
    assert isinstance(result["reordered"], float)


@pytest.mark.parametrize("value", [0, 1, "no", None])
def test_attention_switch_must_be_a_bool(value):
    with pytest.raises(TypeError, match="attention"):
        AttentionGRUTranslator(10, 10, d_model=8, attention=value)


def test_fixed_context_refuses_bad_input():
    model = AttentionGRUTranslator(10, 10, d_model=8, attention=False)
    H, mask = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)
    assert model.fixed_context(H, mask).shape == (2, 8)
    with pytest.raises(ValueError, match="H"):
        model.fixed_context(torch.randn(2, 3, 6), mask)
    with pytest.raises(ValueError, match="real word"):
        model.fixed_context(H, torch.tensor([[True, True, False], [False, False, False]]))
    with pytest.raises((ValueError, TypeError), match="mask"):
        model.fixed_context(H, torch.ones(2, 3))
