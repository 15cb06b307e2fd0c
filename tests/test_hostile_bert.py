"""Hostile input to BERT (course_lib.bert) and its recipe (course_lib.tasks.bert).

Property (hypothesis): for any valid ids, vocabulary, special set and rate, mask_tokens selects
no special position, labels are IGNORE_INDEX exactly where nothing was selected, a random
replacement is never special, and the input is untouched. The rule for a batch with nothing
selected: the MLM term is 0, never NaN. Then one parametrized case per hostile argument: the
exception type and the argument's name in the message.
"""

import json
import random
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from course_lib.bert import (IGNORE_INDEX, BertConfig, BertForPreTraining, BertModel, make_nsp_pairs, mask_tokens,
                             mean_pool, sentence_embeddings)
from course_lib.data import make_story_corpus
from course_lib.tasks import bert as recipes
from course_lib.tokenizers import WordPieceTokenizer

torch.set_num_threads(1)

SMALL = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                   max_position_embeddings=12)
SPECIAL = [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------
# mask_tokens: the 15% / 80-10-10 rule holds for any valid input
# ---------------------------------------------------------------------------

@st.composite
def masking_inputs(draw):
    V = draw(st.integers(2, 40))
    special = draw(st.sets(st.integers(0, V - 1), max_size=V - 1))
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    ids = torch.tensor(draw(st.lists(st.lists(st.integers(0, V - 1), min_size=T, max_size=T), min_size=B, max_size=B)))
    dtype = draw(st.sampled_from([torch.long, torch.int]))
    return (ids.to(dtype), V, draw(st.integers(0, V - 1)), special, draw(st.floats(0.01, 0.99)),
            draw(st.integers(0, 2**31)))


@settings(max_examples=150, deadline=None)
@given(case=masking_inputs())
def test_mask_tokens_rule_holds_for_any_valid_input(case):
    ids, V, mask_id, special, p, seed = case
    before = ids.clone()
    inputs, labels = mask_tokens(ids, vocab_size=V, mask_token_id=mask_id, special_token_ids=special,
                                 mlm_probability=p, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(ids, before)                                  # the caller's tensor is untouched
    assert inputs.shape == labels.shape == ids.shape and inputs.dtype == ids.dtype
    selected = labels != IGNORE_INDEX
    is_special = torch.isin(ids, torch.tensor(sorted(special), dtype=ids.dtype))
    assert not (selected & is_special).any()                         # specials are never selected
    assert torch.equal(labels[selected], ids[selected])              # the original id where selected
    assert torch.equal(inputs[~selected], ids[~selected])            # nothing else changes
    replaced = selected & (inputs != ids) & (inputs != mask_id)      # the random 10%
    assert not torch.isin(inputs[replaced], torch.tensor(sorted(special), dtype=ids.dtype)).any()
    assert ((inputs >= 0) & (inputs < V)).all()


# ---------------------------------------------------------------------------
# No NaN: a batch with no MLM position selected
# ---------------------------------------------------------------------------

def test_nothing_selected_for_mlm_gives_an_mlm_term_of_zero_not_nan():
    torch.manual_seed(0)
    model = BertForPreTraining(SMALL).eval()  # no dropout: the calls below compare
    ids = torch.randint(5, 30, (2, 6))
    nothing = torch.full_like(ids, IGNORE_INDEX)
    nsp = torch.tensor([0, 1])
    mlm_only = model(ids, mlm_labels=nothing)[2]
    assert mlm_only.item() == 0.0
    mlm_only.backward()
    assert all(torch.isfinite(p.grad).all() and not p.grad.any() for p in model.parameters() if p.grad is not None)
    both = model(ids, mlm_labels=nothing, nsp_labels=nsp)[2]
    torch.testing.assert_close(both, model(ids, nsp_labels=nsp)[2])  # the sum is the NSP loss alone
    # one selected position: the usual mean cross-entropy
    one = nothing.clone()
    one[0, 2] = ids[0, 2]
    logits = model(ids)[0]
    torch.testing.assert_close(model(ids, mlm_labels=one)[2],
                               torch.nn.functional.cross_entropy(logits[0, 2:3], ids[0, 2:3]))


def test_fully_padded_row_gives_finite_outputs():
    model = BertModel(SMALL).eval()
    out = model(torch.randint(0, 30, (2, 5)), attention_mask=torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]))
    assert torch.isfinite(out.last_hidden_state).all() and torch.isfinite(out.pooler_output).all()
    assert torch.equal(mean_pool(out.last_hidden_state, torch.zeros(2, 5, dtype=torch.long)), torch.zeros(2, 16))


# ---------------------------------------------------------------------------
# One case per hostile argument
# ---------------------------------------------------------------------------

ids = torch.randint(0, 30, (2, 5), generator=torch.Generator().manual_seed(0))
model = BertModel(SMALL)
pretraining = BertForPreTraining(SMALL)
tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"])
docs = [["a.", "b."], ["c.", "d."]]


def mask(**changes):
    kwargs = dict(vocab_size=30, mask_token_id=4, special_token_ids=SPECIAL) | changes
    input_ids = kwargs.pop("input_ids", ids)
    return lambda: mask_tokens(input_ids, **kwargs)


CASES = {
    # BertConfig
    "config hidden_size=16.0": (lambda: BertConfig(hidden_size=16.0), ValueError, "hidden_size"),
    "config layer_norm_eps=-1": (lambda: BertConfig(layer_norm_eps=-1.0), ValueError, "layer_norm_eps"),
    "config layer_norm_eps=nan": (lambda: BertConfig(layer_norm_eps=float("nan")), ValueError, "layer_norm_eps"),
    "config layer_norm_eps='a'": (lambda: BertConfig(layer_norm_eps="a"), TypeError, "layer_norm_eps"),
    "config hidden_act=None": (lambda: BertConfig(hidden_act=None), ValueError, "hidden_act"),
    "BertModel(None)": (lambda: BertModel(None), TypeError, "config"),
    # BertModel.forward
    "input_ids list": (lambda: model([[1, 2]]), TypeError, "input_ids"),
    "input_ids float": (lambda: model(ids.float()), TypeError, "input_ids"),
    "input_ids 1-D": (lambda: model(ids[0]), ValueError, "input_ids"),
    "input_ids T=0": (lambda: model(ids[:, :0]), ValueError, "input_ids"),  # would reach the pooler
    "input_ids too long": (lambda: model(torch.zeros(1, 13, dtype=torch.long)), ValueError, "input_ids"),
    "input_ids >= vocab_size": (lambda: model(ids + 30), ValueError, "input_ids"),
    "token_type_ids float": (lambda: model(ids, torch.zeros(2, 5)), TypeError, "token_type_ids"),
    "token_type_ids 2": (lambda: model(ids, torch.full((2, 5), 2)), ValueError, "token_type_ids"),
    "token_type_ids -1": (lambda: model(ids, torch.full((2, 5), -1)), ValueError, "token_type_ids"),
    "token_type_ids shape": (lambda: model(ids, torch.zeros(2, 4, dtype=torch.long)), ValueError, "token_type_ids"),
    "attention_mask float": (lambda: model(ids, None, torch.ones(2, 5)), TypeError, "attention_mask"),
    "attention_mask additive": (lambda: model(ids, None, torch.tensor([[0.0] * 5, [0.0, 0, 0, -1e4, -1e4]])),
                                TypeError, "attention_mask"),
    "attention_mask 2": (lambda: model(ids, None, torch.full((2, 5), 2)), ValueError, "attention_mask"),
    "attention_mask -1": (lambda: model(ids, None, torch.full((2, 5), -1)), ValueError, "attention_mask"),
    "attention_mask shape": (lambda: model(ids, None, torch.ones(2, 4, dtype=torch.long)), ValueError,
                             "attention_mask"),
    "attention_mask list": (lambda: model(ids, None, [[1] * 5] * 2), TypeError, "attention_mask"),
    "embed float": (lambda: model.embed(ids.float()), TypeError, "input_ids"),
    "embed >= vocab_size": (lambda: model.embed(ids + 30), ValueError, "input_ids"),
    # BertForPreTraining.forward
    "mlm_labels 30": (lambda: pretraining(ids, mlm_labels=torch.full((2, 5), 30)), ValueError, "mlm_labels"),
    "mlm_labels -5": (lambda: pretraining(ids, mlm_labels=torch.full((2, 5), -5)), ValueError, "mlm_labels"),
    "mlm_labels float": (lambda: pretraining(ids, mlm_labels=torch.zeros(2, 5)), TypeError, "mlm_labels"),
    "mlm_labels shape": (lambda: pretraining(ids, mlm_labels=torch.zeros(2, 4, dtype=torch.long)), ValueError,
                         "mlm_labels"),
    "nsp_labels 2": (lambda: pretraining(ids, nsp_labels=torch.tensor([0, 2])), ValueError, "nsp_labels"),
    "nsp_labels -100": (lambda: pretraining(ids, nsp_labels=torch.tensor([0, -100])), ValueError, "nsp_labels"),
    "nsp_labels float": (lambda: pretraining(ids, nsp_labels=torch.tensor([0.0, 1.0])), TypeError, "nsp_labels"),
    "nsp_labels bool": (lambda: pretraining(ids, nsp_labels=torch.tensor([True, False])), TypeError, "nsp_labels"),
    "nsp_labels (B, 1)": (lambda: pretraining(ids, nsp_labels=torch.tensor([[0], [1]])), ValueError, "nsp_labels"),
    "nsp_labels list": (lambda: pretraining(ids, nsp_labels=[0, 1]), TypeError, "nsp_labels"),
    "pretraining token_type_ids float": (lambda: pretraining(ids, torch.zeros(2, 5)), TypeError, "token_type_ids"),
    # mask_tokens
    "mask input_ids list": (mask(input_ids=[[1, 2]]), TypeError, "input_ids"),
    "mask input_ids float": (mask(input_ids=ids.float()), TypeError, "input_ids"),
    "mask input_ids bool": (mask(input_ids=ids.bool()), TypeError, "input_ids"),
    "mask input_ids >= vocab_size": (mask(input_ids=ids + 30), ValueError, "input_ids"),
    "mask input_ids negative": (mask(input_ids=ids - 31), ValueError, "input_ids"),
    "mask vocab_size=0": (mask(vocab_size=0), ValueError, "vocab_size"),
    "mask vocab_size=30.0": (mask(vocab_size=30.0), ValueError, "vocab_size"),
    "mask vocab_size=True": (mask(vocab_size=True), ValueError, "vocab_size"),
    "mask mask_token_id=30": (mask(mask_token_id=30), ValueError, "mask_token_id"),
    "mask mask_token_id=-1": (mask(mask_token_id=-1), ValueError, "mask_token_id"),
    "mask mask_token_id=4.5": (mask(mask_token_id=4.5), TypeError, "mask_token_id"),
    "mask special outside": (mask(special_token_ids=[0, 99]), ValueError, r"special_token_ids\[1\]"),
    "mask special negative": (mask(special_token_ids=[-1]), ValueError, r"special_token_ids\[0\]"),
    "mask special None": (mask(special_token_ids=None), TypeError, "special_token_ids"),
    "mask special int": (mask(special_token_ids=3), TypeError, "special_token_ids"),
    "mask special str": (mask(special_token_ids="01"), TypeError, "special_token_ids"),
    "mask special float": (mask(special_token_ids=[0.5]), TypeError, r"special_token_ids\[0\]"),
    "mask special float tensor": (mask(special_token_ids=torch.tensor([0.0])), TypeError, "special_token_ids"),
    "mask special all": (mask(vocab_size=30, special_token_ids=range(30)), ValueError, "special_token_ids"),
    "mask mlm_probability=0": (mask(mlm_probability=0.0), ValueError, "mlm_probability"),
    "mask mlm_probability=1": (mask(mlm_probability=1.0), ValueError, "mlm_probability"),
    "mask mlm_probability=nan": (mask(mlm_probability=float("nan")), ValueError, "mlm_probability"),
    "mask mlm_probability='0.1'": (mask(mlm_probability="0.1"), TypeError, "mlm_probability"),
    "mask mlm_probability=True": (mask(mlm_probability=True), TypeError, "mlm_probability"),
    "mask generator=Random": (mask(generator=random.Random(0)), TypeError, "generator"),
    "mask generator=0": (mask(generator=0), TypeError, "generator"),
    # make_nsp_pairs
    "nsp list of str": (lambda: make_nsp_pairs(["hello there.", "general kenobi."]), TypeError, r"documents\[0\]"),
    "nsp str": (lambda: make_nsp_pairs("abc"), TypeError, "documents"),
    "nsp None": (lambda: make_nsp_pairs(None), TypeError, "documents"),
    "nsp dict": (lambda: make_nsp_pairs({"a": ["x."], "b": ["y."]}), TypeError, r"documents\[0\]"),
    "nsp int sentences": (lambda: make_nsp_pairs([[1, 2], [3, 4]]), TypeError, r"documents\[0\]\[0\]"),
    "nsp one document": (lambda: make_nsp_pairs([["a.", "b."]]), ValueError, "documents"),
    "nsp no document": (lambda: make_nsp_pairs([]), ValueError, "documents"),
    "nsp empty documents": (lambda: make_nsp_pairs([[], []]), ValueError, "documents"),
    "nsp one sentence each": (lambda: make_nsp_pairs([["a."], ["b."]]), ValueError, "documents"),
    "nsp generator=0": (lambda: make_nsp_pairs(docs, generator=0), TypeError, "generator"),  # was unseeded
    "nsp generator='x'": (lambda: make_nsp_pairs(docs, generator="x"), TypeError, "generator"),
    # mean_pool and sentence_embeddings
    "mean_pool list": (lambda: mean_pool([1], [1]), TypeError, "last_hidden_state"),
    "mean_pool int states": (lambda: mean_pool(torch.zeros(2, 5, 16, dtype=torch.long), torch.ones(2, 5)),
                             TypeError, "last_hidden_state"),
    "mean_pool 2-D states": (lambda: mean_pool(torch.zeros(2, 5), torch.ones(2, 5, dtype=torch.long)),
                             ValueError, "last_hidden_state"),
    "mean_pool mask shape": (lambda: mean_pool(torch.zeros(2, 5, 16), torch.ones(2, 4, dtype=torch.long)),
                             ValueError, "attention_mask"),
    "mean_pool mask 0.5": (lambda: mean_pool(torch.zeros(2, 5, 16), torch.full((2, 5), 0.5)), TypeError,
                           "attention_mask"),
    "embeddings of a str": (lambda: sentence_embeddings(model, tok, "a b c"), TypeError, "sentences"),
    "embeddings of None": (lambda: sentence_embeddings(model, tok, None), TypeError, "sentences"),
    "embeddings of []": (lambda: sentence_embeddings(model, tok, []), ValueError, "sentences"),
    "embeddings of [1]": (lambda: sentence_embeddings(model, tok, ["a", 1]), TypeError, r"sentences\[1\]"),
    "embeddings too long": (lambda: sentence_embeddings(model, tok, ["a", "a " * 20]), ValueError, r"sentences\[1\]"),
    "embeddings normalize='yes'": (lambda: sentence_embeddings(model, tok, ["a"], normalize="yes"), TypeError,
                                   "normalize"),
    "embeddings model=BertForPreTraining": (lambda: sentence_embeddings(pretraining, tok, ["a"]), TypeError, "model"),
    "embeddings tokenizer=None": (lambda: sentence_embeddings(model, None, ["a"]), TypeError, "tokenizer"),
    "embeddings tokenizer too large": (
        lambda: sentence_embeddings(model, WordPieceTokenizer(tok.itos + [f"w{i}" for i in range(30)]), ["a"]),
        ValueError, "tokenizer"),
    # loading
    "from_pretrained(None)": (lambda: BertModel.from_pretrained(None), TypeError, "path"),
    "from_pretrained(3)": (lambda: BertModel.from_pretrained(3), TypeError, "path"),
    "from_pretrained('')": (lambda: BertModel.from_pretrained(""), ValueError, "path"),
    "from_pretrained(missing)": (lambda: BertModel.from_pretrained("/nonexistent"), FileNotFoundError,
                                 "config.json and model.safetensors"),
    "from_json(None)": (lambda: BertConfig.from_json(None), TypeError, "path"),
    "from_json(missing)": (lambda: BertConfig.from_json("/nonexistent/config.json"), FileNotFoundError, "config"),
}


@pytest.mark.parametrize("call, error, name", CASES.values(), ids=CASES.keys())
def test_hostile_argument_is_refused_by_name(call, error, name):
    with pytest.raises(error, match=rf"(?<![\w\[]){name}"):
        call()


def test_valid_calls_beside_the_hostile_ones_still_work():
    assert model(ids, torch.ones_like(ids), torch.ones(2, 5, dtype=torch.bool)).last_hidden_state.shape == (2, 5, 16)
    inputs, labels = mask_tokens(ids, vocab_size=30, mask_token_id=4, special_token_ids=torch.tensor(SPECIAL))
    assert inputs.shape == labels.shape == ids.shape
    assert make_nsp_pairs((("a.", "b."), ("c.",)), generator=random.Random(0))[0][0] == "a."
    assert sentence_embeddings(model, tok, ("a b", "c")).shape == (2, 16)


# ---------------------------------------------------------------------------
# from_pretrained: a folder that does not fit is refused before a model is built
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=20)
    folder = tmp_path_factory.mktemp("bert")
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def _edit_config(folder, **changes):
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(raw | changes))


def _write(folder, name, data: bytes):
    (folder / name).write_bytes(data)


def _drop_layer(folder):
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if ".layer.1." not in k}, str(folder / "model.safetensors"))


DAMAGE = {
    "config not JSON": (lambda f: _write(f, "config.json", b"{not json"), "config.json"),
    "config a list": (lambda f: _write(f, "config.json", b"[1, 2]"), "config.json"),
    "config binary": (lambda f: _write(f, "config.json", b"\xff\xfe\x00"), "config.json"),
    "config of GPT-2": (lambda f: _edit_config(f, model_type="gpt2"), "config.json"),
    "config hidden_size '16'": (lambda f: _edit_config(f, hidden_size="16"), "hidden_size"),
    "config 10**6 layers": (lambda f: _edit_config(f, num_hidden_layers=10**6), "num_hidden_layers"),
    "config 10**12 words": (lambda f: _edit_config(f, vocab_size=10**12), "word_embeddings"),
    "config wider": (lambda f: _edit_config(f, hidden_size=32), "does not fit config.json"),
    "a layer missing": (_drop_layer, "num_hidden_layers"),
    "weights empty": (lambda f: _write(f, "model.safetensors", b""), "model.safetensors"),
    "weights text": (lambda f: _write(f, "model.safetensors", b"import os; os.system('echo hi')\n"),
                     "model.safetensors"),
    "weights truncated": (lambda f: _write(f, "model.safetensors", (f / "model.safetensors").read_bytes()[:-100]),
                          "model.safetensors"),
}


@pytest.mark.parametrize("damage, name", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_folder_is_refused_with_a_value_error(bert_folder, tmp_path, damage, name):
    folder = tmp_path / "copy"
    shutil.copytree(bert_folder, folder)
    damage(folder)
    with pytest.raises(ValueError, match=name):
        BertModel.from_pretrained(folder)


# ---------------------------------------------------------------------------
# The recipe of notebook 04 (course_lib.tasks.bert)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def story():
    corpus = make_story_corpus(60, seed=0)
    tok = recipes.story_tokenizer(corpus.words)
    examples = recipes.nsp_examples(corpus.train, tok, seed=0)
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    return corpus, tok, examples, config


RECIPE_CASES = {
    "story_tokenizer(str)": (lambda c, t, e, cfg: recipes.story_tokenizer("abc"), TypeError, "words"),
    "story_tokenizer([1])": (lambda c, t, e, cfg: recipes.story_tokenizer([1]), TypeError, r"words\[0\]"),
    "nsp_examples(str)": (lambda c, t, e, cfg: recipes.nsp_examples("abc", t), TypeError, "stories"),
    "nsp_examples([str])": (lambda c, t, e, cfg: recipes.nsp_examples(["a b."], t), TypeError, r"stories\[0\]"),
    "nsp_examples(tokenizer=None)": (lambda c, t, e, cfg: recipes.nsp_examples(c.train, None), TypeError,
                                     "tokenizer"),
    "nsp_examples(seed=None)": (lambda c, t, e, cfg: recipes.nsp_examples(c.train, t, seed=None), TypeError, "seed"),
    "bert_batch([])": (lambda c, t, e, cfg: recipes.bert_batch([], t, torch.Generator()), ValueError, "examples"),
    "bert_batch(str)": (lambda c, t, e, cfg: recipes.bert_batch("abc", t, torch.Generator()), TypeError, "examples"),
    "bert_batch(pairs)": (lambda c, t, e, cfg: recipes.bert_batch([(1, 2)], t, torch.Generator()), TypeError,
                          r"examples\[0\]"),
    "bert_batch(ids outside)": (lambda c, t, e, cfg: recipes.bert_batch([([2, 999, 3], [0, 0, 0], True)], t,
                                                                         torch.Generator()),
                                ValueError, "examples"),
    "bert_batch(generator=0)": (lambda c, t, e, cfg: recipes.bert_batch(e[:2], t, 0), TypeError, "generator"),
    "bert_batch(mlm_probability=2)": (lambda c, t, e, cfg: recipes.bert_batch(e[:2], t, torch.Generator(), 2.0),
                                      ValueError, "mlm_probability"),
    "bert_loss(None)": (lambda c, t, e, cfg: recipes.bert_loss(None, {}), TypeError, "model"),
    "bert_loss(batch list)": (lambda c, t, e, cfg: recipes.bert_loss(BertForPreTraining(cfg), []), TypeError,
                              "batch"),
    "evaluate_bert(BertModel)": (lambda c, t, e, cfg: recipes.evaluate_bert(BertModel(cfg), e, t), TypeError,
                                 "model"),
    "evaluate_bert([])": (lambda c, t, e, cfg: recipes.evaluate_bert(BertForPreTraining(cfg), [], t), ValueError,
                          "examples"),
    "evaluate_bert(batch_size=0)": (lambda c, t, e, cfg: recipes.evaluate_bert(BertForPreTraining(cfg), e, t,
                                                                                batch_size=0),
                                    ValueError, "batch_size"),
    "pretrain_bert([])": (lambda c, t, e, cfg: recipes.pretrain_bert([], e, t, cfg, steps=1, progress=False),
                          ValueError, "train_examples"),
    "pretrain_bert(config=None)": (lambda c, t, e, cfg: recipes.pretrain_bert(e, e, t, None, steps=1,
                                                                               progress=False),
                                   TypeError, "config"),
    "pretrain_bert(small vocab)": (lambda c, t, e, cfg: recipes.pretrain_bert(
        e, e, t, BertConfig(**vars(cfg) | {"vocab_size": 10}), steps=1, progress=False), ValueError, "vocab_size"),
    "pretrain_bert(short positions)": (lambda c, t, e, cfg: recipes.pretrain_bert(
        e, e, t, BertConfig(**vars(cfg) | {"max_position_embeddings": 8}), steps=1, progress=False),
        ValueError, "max_position_embeddings"),
    "pretrain_bert(batch_size=0)": (lambda c, t, e, cfg: recipes.pretrain_bert(e, e, t, cfg, steps=1, batch_size=0,
                                                                                progress=False),
                                    ValueError, "batch_size"),
}


@pytest.mark.parametrize("call, error, name", RECIPE_CASES.values(), ids=RECIPE_CASES.keys())
def test_hostile_argument_to_the_recipe_is_refused_by_name(story, call, error, name):
    with pytest.raises(error, match=rf"(?<![\w\[]){name}"):
        call(*story)


def test_evaluating_on_too_few_pairs_to_mask_says_so_instead_of_dividing_by_zero(story):
    _, tok, examples, config = story
    model = BertForPreTraining(config)
    # find a seed whose masking selects nothing in one pair
    seed = next(s for s in range(1000) if (recipes.bert_batch(examples[:1], tok, torch.Generator().manual_seed(s))
                                           ["mlm_labels"] == IGNORE_INDEX).all())
    with pytest.raises(ValueError, match="examples.*no position"):
        recipes.evaluate_bert(model, examples[:1], tok, seed=seed)
