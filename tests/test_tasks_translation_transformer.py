"""The Transformer recipe of tasks/translation: training without validation (notebook 02's ablations)."""

import pytest

from course_lib.data import make_translation_corpus
from course_lib.tasks import translation
from course_lib.tokenizers import WordVocab


@pytest.fixture(scope="module")
def setup():
    corpus = make_translation_corpus(num_sentences=300, seed=0)
    return corpus, WordVocab(corpus.zh_words), WordVocab(corpus.en_words)


KWARGS = dict(d_model=16, num_heads=2, d_ff=32, steps=6, batch_size=16, live_plot=False, progress=False)


def test_validate_false_trains_the_same_model_without_evaluating(setup):
    corpus, sv, tv = setup
    validated, h1 = translation.train_transformer_translator(corpus, sv, tv, **KWARGS)
    silent, h2 = translation.train_transformer_translator(corpus, sv, tv, validate=False, **KWARGS)
    assert len(h1.evals) == 1 and h1.eval_seconds > 0      # the default validates at the end
    assert h2.evals == [] and h2.eval_seconds == 0         # validate=False: never
    assert h1.losses == h2.losses                          # and the training itself is the same
    assert all(a.equal(b) for a, b in zip(validated.state_dict().values(), silent.state_dict().values()))


def test_validate_is_checked(setup):
    corpus, sv, tv = setup
    with pytest.raises(TypeError, match="validate"):
        translation.train_transformer_translator(corpus, sv, tv, validate="no", **KWARGS)
    with pytest.raises(ValueError, match="eval_every"):
        translation.train_transformer_translator(corpus, sv, tv, validate=False, eval_every=2, **KWARGS)


@pytest.mark.parametrize("part", ["positions", "causal", "residual", "layer_norm"])
def test_each_part_can_be_removed_through_the_recipe(setup, part):
    corpus, sv, tv = setup
    model, history = translation.train_transformer_translator(corpus, sv, tv, validate=False, **{part: False},
                                                             **KWARGS)
    assert len(history.losses) == KWARGS["steps"]
    assert getattr(model, "causal") is (part != "causal")
    if part == "positions":
        assert not model.encoder.embedding.positions and not model.decoder.embedding.positions
    if part == "residual":
        assert not any(layer.residual for layer in model.encoder.layers + model.decoder.layers)


def test_greedy_translations_are_what_evaluate_translation_scores(setup):
    corpus, sv, tv = setup
    model, _ = translation.train_transformer_translator(corpus, sv, tv, validate=False, **dict(KWARGS, steps=30))
    pairs = corpus.test[:40]
    outputs = translation.greedy_translations(model, pairs, sv, tv, batch_size=16)   # three batches
    assert len(outputs) == len(pairs) and all(isinstance(w, str) for o in outputs for w in o)
    share = sum(o == list(p.en) for o, p in zip(outputs, pairs)) / len(pairs)
    assert share == translation.evaluate_translation(model, pairs, sv, tv)["exact_match"]
    for pair, output in list(zip(pairs, outputs))[:5]:  # the same words as the one-sentence trace
        trace = translation.trace_transformer(model, pair.zh, sv, tv)
        assert output == [w for w in trace["output"] if w != "<eos>"][:len(pair.en) + 2]
    with pytest.raises(ValueError, match="pairs"):
        translation.greedy_translations(model, [], sv, tv)
