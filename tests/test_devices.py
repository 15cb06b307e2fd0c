"""Device use of notebooks 01-04's task and widget functions, checked on a machine without a GPU.

The functions that build and train a model take ``device`` (default ``get_device()``), build the
model on the CPU and train it there; the functions that run a model move its inputs to the
model's device and return their results on the CPU. CI has no GPU, so those code paths run here
on a *pretend* GPU (tests/pretend_gpu.py): :class:`FakeGPU`, a ``torch.overrides.TorchFunctionMode``,
marks the tensors that "are on the GPU" (a model's parameters after ``.to("cuda")``, every tensor
moved with ``.to`` / ``.cuda``, made with ``device="cuda"`` or computed from a marked tensor) while
their numbers stay on the CPU. It raises as CUDA does when an operation mixes a marked tensor with
an unmarked CPU tensor (CPU scalars excepted, as on CUDA), when a marked tensor goes to NumPy, and
when a CPU generator samples from marked probabilities. So a function that forgets to move its
inputs, or lets a GPU result meet a CPU tensor, fails here; and since the arithmetic really runs
on the CPU, every result must equal the plain CPU run bit for bit.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import course_lib.batching
import course_lib.training
from course_lib.bert import BertConfig
from course_lib.data import make_translation_corpus
from course_lib.data.stories import FEELINGS, make_mood_task, make_story_corpus
from course_lib.encoder_decoder import EncoderDecoder
from course_lib.gpt import GPTConfig
from course_lib.tasks import bert as B
from course_lib.tasks import gpt as P
from course_lib.tasks import toys, transfer
from course_lib.tasks import translation as TR
from course_lib.batching import model_device
from course_lib.tokenizers import WordVocab
from course_lib.widgets import bert as WB
from course_lib.widgets import gpt as WG

from pretend_gpu import GPU, DeviceMix, FakeGPU, fake_gpu, is_gpu_device, on_gpu

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def cuda_accepted(monkeypatch):
    """train() and to_device() accept "cuda" (as on a GPU machine); use inside FakeGPU."""
    real = course_lib.training.check_device

    def check(name, device, **kwargs):
        return GPU if is_gpu_device(device) else real(name, device, **kwargs)

    monkeypatch.setattr(course_lib.training, "check_device", check)
    monkeypatch.setattr(course_lib.batching, "check_device", check)


def assert_same(got, expected):
    """Equal to the CPU run bit for bit, and nothing returned on the (fake) GPU."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor) and not on_gpu(got), "a tensor was returned on the GPU"
        assert torch.equal(got, expected)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys()
        for k in expected:
            assert_same(got[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same(g, e)
    else:
        assert got == expected


# -----------------------------------------------------------------------------
# the worlds


@pytest.fixture(scope="module")
def stories():
    corpus = make_story_corpus(200, seed=0)
    vocab = WordVocab(corpus.words)
    config = GPTConfig(vocab_size=len(vocab), block_size=48, n_layer=1, n_head=2, n_embd=16)
    task = make_mood_task(num_train=8, num_validation=8, num_test=12, seed=0)
    texts = [s.words for s in corpus.train]
    gpt, _ = P.pretrain_gpt(texts, texts[:8], vocab, config, steps=3, batch_size=4, progress=False,
                            live_plot=False, device="cpu")
    tokenizer = B.story_tokenizer(corpus.words)
    bert_config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=64)
    pairs = B.nsp_examples(corpus.train[:40], tokenizer, seed=0)
    bert, _ = B.pretrain_bert(pairs, pairs[:8], tokenizer, bert_config, steps=2, batch_size=4, progress=False,
                              live_plot=False, device="cpu")
    return dict(corpus=corpus, vocab=vocab, config=config, task=task, texts=texts, gpt=gpt, tokenizer=tokenizer,
                bert_config=bert_config, pairs=pairs, bert=bert)


@pytest.fixture(scope="module")
def sentences():
    corpus = make_translation_corpus(num_sentences=120, seed=3)
    return corpus, WordVocab(corpus.zh_words), WordVocab(corpus.en_words)


def trainings(s, t):
    """Every model-building function of notebooks 01-04 on a tiny run: name -> f(**device_kwargs)."""
    task, vocab, tok = s["task"], s["vocab"], s["tokenizer"]
    corpus, sv, tv = t
    small = dict(progress=False, live_plot=False)
    return {
        "pretrain_gpt": lambda **d: P.pretrain_gpt(s["texts"], s["texts"][:8], vocab, s["config"], steps=2,
                                                   batch_size=4, eval_every=1, **small, **d),
        "pretrain_windowed_gpt": lambda **d: P.pretrain_windowed_gpt(
            s["texts"], s["texts"][:4], vocab, GPTConfig(vocab_size=len(vocab), block_size=4, n_layer=1, n_head=2,
                                                         n_embd=16), steps=2, batch_size=8, eval_every=1, **small, **d),
        "finetune_classifier": lambda **d: P.finetune_classifier(
            task.train, vocab, pretrained=s["gpt"], lm_weight=0.5, steps=2, batch_size=4, validation=task.validation,
            eval_every=1, **d),
        "finetune_arm": lambda **d: P.finetune_arm(vocab, config=s["config"], lrs=(1e-3,), steps=2, eval_every=1,
                                                   **d)(task.train, task.validation, 0)(task.test),
        "pretrain_bert": lambda **d: B.pretrain_bert(s["pairs"], s["pairs"][:8], tok, s["bert_config"], steps=2,
                                                     batch_size=4, eval_every=1, **small, **d),
        "finetune_bert_classifier": lambda **d: B.finetune_bert_classifier(
            task.train, tok, pretrained=s["bert"], steps=2, batch_size=4, validation=task.validation, eval_every=1,
            **d),
        "bert_finetune_arm": lambda **d: B.bert_finetune_arm(
            tok, config=s["bert_config"], lrs=(1e-3,), steps=2, eval_every=1, **d)(task.train, task.validation, 0)(
            task.test),
        "train_neighbour_model": lambda **d: toys.train_neighbour_model(steps=2, batch_size=8, progress=False, **d),
        "train_translator": lambda **d: TR.train_translator(corpus, sv, tv, d_model=8, steps=2, batch_size=8,
                                                            eval_every=1, **small, **d),
        "train_transformer_translator": lambda **d: TR.train_transformer_translator(
            corpus, sv, tv, d_model=8, num_heads=2, d_ff=16, num_layers=1, steps=2, batch_size=8, eval_every=1,
            **small, **d),
    }


NAMES = list(trainings({"task": None, "vocab": None, "tokenizer": None}, (None, None, None)))


def _fingerprint(result):
    """What a training run gives, comparable across runs: losses, evaluations, weights, predictions."""
    if isinstance(result, torch.Tensor):   # an arm's predictions
        return result
    model, history = result if isinstance(result, tuple) else (result, None)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if history is None:
        return [state, model.selected_step, model.validation_loss]
    return [state, history.losses, history.evals]


# -----------------------------------------------------------------------------
# the pretend GPU refuses what CUDA refuses (else the tests below could not fail)


def test_fake_gpu_refuses_what_cuda_refuses(stories):
    model, vocab = stories["gpt"], stories["vocab"]
    ids = vocab.encode_batch(stories["texts"][:2], add_bos=True)[0]
    expected = model(ids)[0]
    with fake_gpu(model):
        assert model_device(model) == GPU
        with pytest.raises(DeviceMix, match="same device"):
            model(ids)                                            # inputs left on the CPU
        logits = model(ids.to(model_device(model)))[0]
        assert on_gpu(logits) and logits.device == GPU
        with pytest.raises(DeviceMix):
            logits.argmax(-1) == ids                              # a GPU result meets a CPU tensor
        with pytest.raises(TypeError, match="numpy"):
            logits.numpy()
        with pytest.raises(TypeError, match="numpy"):
            np.asarray(logits)                                    # as matplotlib converts what it plots
        with pytest.raises(DeviceMix, match="generator"):
            torch.multinomial(logits[:, -1].softmax(-1), 1, generator=torch.Generator())
        back = logits.cpu()
        assert not on_gpu(back) and back.device.type == "cpu" and torch.equal(back, expected)
        assert (logits.argmax(-1).cpu() == ids).dtype == torch.bool  # once on the CPU, it may
        twin = copy.deepcopy(model)                               # a copy stays on the GPU, as on CUDA
        assert model_device(twin) == GPU and all(on_gpu(b) for b in twin.buffers())
        assert torch.equal(twin(ids.to(GPU))[0].cpu(), expected)
    assert not any(on_gpu(p) for p in model.parameters())        # the model is back


# -----------------------------------------------------------------------------
# building and training: device=None is get_device(), the model is built on the CPU


class _Stop(Exception):
    pass


@pytest.fixture
def recorded_train(monkeypatch):
    """Every training function's call of train(), recorded (device, where the model was), then stopped."""
    calls = []

    def fake_train(model, *args, **kwargs):
        calls.append((kwargs.get("device"), {p.device.type for p in model.parameters()}))
        raise _Stop

    for module in (P, B, toys, TR, transfer):
        monkeypatch.setattr(module, "train", fake_train)
    return calls


@pytest.mark.parametrize("name", NAMES)
def test_device_none_asks_get_device_and_course_device_is_honoured(name, stories, sentences, recorded_train,
                                                                   monkeypatch):
    run = trainings(stories, sentences)[name]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)   # a machine with a GPU...
    monkeypatch.setattr(course_lib.training, "check_device", lambda n, d, **k: torch.device(d))
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    with pytest.raises(_Stop):
        run()
    assert recorded_train[-1] == (GPU, {"cpu"})                      # ...trains there; the model built on the CPU
    monkeypatch.setenv("COURSE_DEVICE", "cpu")                       # ...unless told otherwise
    with pytest.raises(_Stop):
        run()
    assert recorded_train[-1] == (torch.device("cpu"), {"cpu"})
    with pytest.raises(_Stop):
        run(device="mps")                                            # an explicit device is passed on as given
    assert recorded_train[-1][0] == "mps"


@pytest.mark.parametrize("name", NAMES)
def test_training_on_the_gpu_gives_the_cpu_numbers(name, stories, sentences, cuda_accepted, monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    run = trainings(stories, sentences)[name]
    on_cpu = _fingerprint(run(device="cpu"))
    assert_same(_fingerprint(run()), on_cpu)                         # device=None is the CPU here
    with FakeGPU():
        result = run(device="cuda")                                  # batches, evaluations, predictions
        model = result[0] if isinstance(result, tuple) else result
        if not isinstance(result, torch.Tensor):
            assert model_device(model) == GPU                        # it stays where it trained
    got = _fingerprint(result)
    if isinstance(got, list):                                        # weights on the GPU: compare their numbers
        got[0] = {k: v.cpu() for k, v in got[0].items()}
    assert_same(got, on_cpu)


def test_a_bad_device_is_refused_naming_the_argument(stories):
    with pytest.raises(ValueError, match="device"):
        toys.train_neighbour_model(steps=1, progress=False, device="gpu0")
    with pytest.raises(ValueError, match="device"):
        P.pretrain_gpt(stories["texts"], stories["texts"][:4], stories["vocab"], stories["config"], steps=1,
                       progress=False, live_plot=False, device="cuda:7")


# -----------------------------------------------------------------------------
# running a model: inputs go to the model, results come back to the CPU


def _gpt_runs(s):
    vocab, task, gpt, texts = s["vocab"], s["task"], s["gpt"], s["texts"]
    classifier = P.finetune_classifier(task.train, vocab, config=s["config"], steps=1, device="cpu")
    ids = vocab.encode_batch(texts[:3], add_bos=True)[0]
    feeling_ids = [vocab.stoi[w] for mood in ("happy", "sad") for w in FEELINGS[mood]]
    return [gpt, classifier], {
        "evaluate_lm": lambda: P.evaluate_lm(gpt, texts[:6], vocab),
        "evaluate_lm_windowed": lambda: P.evaluate_lm_windowed(gpt, texts[:6], vocab, window=4),
        "classifier_predictions": lambda: P.classifier_predictions(classifier, task.test, vocab),
        "classifier_loss": lambda: P.classifier_loss(classifier, task.test, vocab),
        "classifier_accuracy": lambda: P.classifier_accuracy(classifier, task.test, vocab),
        "linear_probe_arm": lambda: P.linear_probe_arm(gpt, vocab)(task.train, task.validation, 0)(task.test),
        "zero_shot_scores": lambda: P.zero_shot_scores(gpt, task.test[:2], vocab),
        "zero_shot_arm": lambda: P.zero_shot_arm(gpt, vocab)(task.train, task.validation, 0)(task.test[:2]),
        "attention_weights": lambda: P.attention_weights(gpt, ids),
        "event_attention": lambda: P.event_attention(gpt, [e.words for e in task.test[:4]], vocab),
        "feeling_similarity": lambda: transfer.feeling_similarity(gpt.wte.weight, feeling_ids),
        "within_minus_across": lambda: transfer.within_minus_across(
            transfer.feeling_similarity(gpt.wte.weight, feeling_ids)),
        "generate": lambda: gpt.generate(ids[:1].to(model_device(gpt)), 5, generator=torch.Generator().manual_seed(0)
                                         ).cpu(),
        "next_word_distribution": lambda: WG.next_word_distribution(gpt, vocab, "the man went to the store . he"),
        "continue_text": lambda: WG.continue_text(gpt, vocab, "the man went to the store . he", seed=3),
    }


def _bert_runs(s):
    tok, task, bert, pairs = s["tokenizer"], s["task"], s["bert"], s["pairs"]
    classifier = B.finetune_bert_classifier(task.train, tok, config=s["bert_config"], steps=1, device="cpu")
    return [bert, classifier], {
        "evaluate_bert": lambda: B.evaluate_bert(bert, pairs[:16], tok),
        "nsp_predictions": lambda: B.nsp_predictions(bert, pairs[:16], tok),
        "single_mask_accuracy": lambda: B.single_mask_accuracy(bert, pairs[:4], tok),
        "bert_classifier_logits": lambda: B.bert_classifier_logits(classifier, task.test, tok),
        "fill_mask": lambda: WB.fill_mask(bert, tok, "the man went to [MASK] store ."),
        "bert_attentions": lambda: WB.bert_attentions(bert.bert, tok, "the man went to the store", "he bought milk"),
        "head_roles": lambda: WB.head_roles(bert.bert, tok, [("the man went to the store", "he bought milk"),
                                                             ("the man went", None)]),
    }


def _other_runs(t):
    corpus, sv, tv = t
    torch.manual_seed(0)
    neighbour = toys.NeighbourModel(vocab_size=16, length=8)
    tokens, targets = toys.neighbour_batch(8, 8, 16, torch.Generator().manual_seed(1))
    gru = TR.AttentionGRUTranslator(len(sv), len(tv), d_model=8, bos_id=tv.bos_id, eos_id=tv.eos_id)
    transformer = EncoderDecoder(len(sv), len(tv), d_model=8, num_heads=2, d_ff=16, num_layers=1, max_len=32)
    pairs, words = corpus.validation[:6], corpus.validation[0].zh
    return [neighbour, gru, transformer], {
        "neighbour_accuracy": lambda: toys.neighbour_accuracy(neighbour, tokens, targets),
        "head_offsets": lambda: toys.head_offsets(neighbour(tokens.to(model_device(neighbour)))[1]),
        "trace_translation": lambda: TR.trace_translation(gru, words, sv, tv),
        "evaluate_translation": lambda: TR.evaluate_translation(gru, pairs, sv, tv),
        "alignment_score": lambda: TR.alignment_score(gru, corpus.train[:20], sv, tv),
        "trace_transformer": lambda: TR.trace_transformer(transformer, words, sv, tv),
        "greedy_translations": lambda: TR.greedy_translations(transformer, pairs, sv, tv),
        "cross_attention_alignment": lambda: TR.cross_attention_alignment(transformer, corpus.train[:20], sv, tv),
    }


@pytest.fixture(scope="module")
def runs(stories, sentences):
    """name -> (the models it runs, the call)."""
    out = {}
    for models, calls in (_gpt_runs(stories), _bert_runs(stories), _other_runs(sentences)):
        out.update({name: (models, call) for name, call in calls.items()})
    return out


RUNS = ["evaluate_lm", "evaluate_lm_windowed", "classifier_predictions", "classifier_loss", "classifier_accuracy",
        "linear_probe_arm", "zero_shot_scores", "zero_shot_arm", "attention_weights", "event_attention",
        "feeling_similarity", "within_minus_across", "generate", "next_word_distribution", "continue_text",
        "evaluate_bert", "nsp_predictions", "single_mask_accuracy", "bert_classifier_logits", "fill_mask",
        "bert_attentions", "head_roles", "neighbour_accuracy", "head_offsets", "trace_translation",
        "evaluate_translation", "alignment_score", "trace_transformer", "greedy_translations",
        "cross_attention_alignment"]


def test_every_run_is_checked(runs):
    assert sorted(runs) == sorted(RUNS)


@pytest.mark.parametrize("name", RUNS)
def test_running_a_model_on_the_gpu_gives_the_cpu_results_on_the_cpu(name, runs):
    models, run = runs[name]
    expected = run()
    with fake_gpu(*models):
        try:
            got = run()
        except DeviceMix as error:
            pytest.fail(f"{name} mixes devices: {error}")
    assert_same(got, expected)
