"""WordPieceTokenizer against transformers' BERT tokenizers on the real all-MiniLM-L6-v2 vocabulary."""

import random

import pytest
import torch

from course_lib.pretrained import minilm_path
from course_lib.tokenizers import WordPieceTokenizer

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizers():
    path = minilm_path()
    return (WordPieceTokenizer.from_file(path / "vocab.txt"),
            transformers.BertTokenizer.from_pretrained(str(path)),          # the Rust one
            transformers.BertTokenizerLegacy.from_pretrained(str(path)))    # the slow Python one


TEXTS = [
    "Penguins are flightless birds.", "the man went to [MASK] store", "Héllo, WORLD!! naïve café Ångström",
    "我爱你，你爱我吗？", "emoji 😀👍🏽 and ❤️", "a" * 150, "supercalifragilisticexpialidocious", "", "   ",
    "tab\tnew\nline\r\n", "$5.00 & 10% off #hashtag @user ^_^ `code`", "日本語のテキスト カタカナ", "한국어 텍스트",
    "Ελληνικά κείμενο", "don't can't won't", "e-mail: x_y@z.com", "\u200bzero\u200dwidth\u00a0nbsp",
    "ﬁ ligature Ⅻ ½", "[CLS] x [SEP] y [SEP]", "[mask] stays lower", "unaffable unbelievably",
]


def test_the_notes_example_splits_flightless():
    tok = WordPieceTokenizer.from_file(minilm_path() / "vocab.txt")
    assert len(tok) == 30522
    assert tok.tokenize("penguins are flightless birds") == ["penguins", "are", "flight", "##less", "birds"]


@pytest.mark.parametrize("text", TEXTS)
def test_same_tokens_as_transformers(tokenizers, text):
    ours, fast, slow = tokenizers
    assert ours.tokenize(text) == fast.tokenize(text) == slow.tokenize(text)


def test_same_tokens_on_random_unicode(tokenizers):
    ours, fast, _ = tokenizers
    rng = random.Random(0)
    alphabet = ("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 .,;:!?'\"-()[]{}$%&*#@/\\\t\n éèüñçÅØ你好世界中文"
                "がカナ한국😀👍\u0301\u200b\u00a0\u2003«»—–…·")
    for _ in range(1000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert ours.tokenize(text) == fast.tokenize(text), repr(text)


def test_encode_pair_and_truncation(tokenizers):
    ours, fast, _ = tokenizers
    a, b = "the man went to the store", "he bought a gallon of milk"
    mine, theirs = ours.encode(a, b), fast(a, b)
    assert mine["input_ids"] == theirs["input_ids"]
    assert mine["token_type_ids"] == theirs["token_type_ids"]
    assert mine["attention_mask"] == [1] * len(mine["input_ids"])
    assert ours.decode(mine["input_ids"]) == "[CLS] the man went to the store [SEP] he bought a gallon of milk [SEP]"
    assert ours.decode(mine["input_ids"], skip_special_tokens=True) == f"{a} {b}"
    short = ours.encode(a, b, max_length=10)
    assert short["input_ids"] == fast(a, b, max_length=10, truncation="longest_first")["input_ids"]
    with pytest.raises(ValueError, match="room for the 3 special tokens"):
        ours.encode(a, b, max_length=2)


def test_bad_input():
    with pytest.raises(ValueError, match="lacks the special tokens"):
        WordPieceTokenizer(["a", "b"])
    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])
    with pytest.raises(TypeError, match="text must be a str"):
        tok.tokenize(["a"])
    with pytest.raises(FileNotFoundError, match="no vocabulary file"):
        WordPieceTokenizer.from_file("/nonexistent/vocab.txt")
    assert tok.tokenize("a b") == ["a", "[UNK]"]


def test_special_ids_are_the_five_special_tokens(tokenizers):
    ours, fast, _ = tokenizers
    assert ours.special_ids == [ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id]
    assert [ours.itos[i] for i in ours.special_ids] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert sorted(ours.special_ids) == sorted(fast.all_special_ids)


PAIRS = [("the man went to the store", "he bought a gallon of milk"), ("penguins are flightless birds", "yes"),
         ("Attention is all you need!", "Really? 我爱你")]


def _same_batch(mine: dict, theirs) -> None:
    assert set(mine) == {"input_ids", "token_type_ids", "attention_mask"}
    for key, value in mine.items():
        assert value.dtype == torch.long, key
        assert torch.equal(value, theirs[key]), key


def test_encode_batch_equals_transformers_padded_batch(tokenizers):
    ours, fast, _ = tokenizers
    singles = [a for a, _ in PAIRS] + ["a"]
    _same_batch(ours.encode_batch(singles), fast(singles, padding=True, return_tensors="pt"))
    a, b = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    _same_batch(ours.encode_batch(a, b), fast(a, b, padding=True, return_tensors="pt"))
    _same_batch(ours.encode_batch(a, b, max_length=9),
                fast(a, b, padding=True, truncation="longest_first", max_length=9, return_tensors="pt"))
    # each row is the row's own encode, padded after its last real token
    batch = ours.encode_batch(a, b)
    for row, (text_a, text_b) in enumerate(PAIRS):
        one = ours.encode(text_a, text_b)
        n = len(one["input_ids"])
        for key in one:
            assert batch[key][row, :n].tolist() == one[key]
        assert (batch["input_ids"][row, n:] == ours.pad_id).all()
        assert (batch["attention_mask"][row, n:] == 0).all() and (batch["token_type_ids"][row, n:] == 0).all()


def test_encode_batch_mixes_single_sentences_and_pairs(tokenizers):
    ours, _, _ = tokenizers
    batch = ours.encode_batch(["one sentence", "a pair"], [None, "its second half"])
    assert batch["input_ids"][0].tolist()[:4] == ours.encode("one sentence")["input_ids"]
    assert batch["token_type_ids"][0].tolist() == [0] * batch["input_ids"].shape[1]
    assert batch["token_type_ids"][1].tolist() == ours.encode("a pair", "its second half")["token_type_ids"]


def test_encode_batch_rejects_bad_input(tokenizers):
    ours, _, _ = tokenizers
    with pytest.raises(TypeError, match=r"texts_a must be a list of texts.*\[text\]"):
        ours.encode_batch("a single string")
    with pytest.raises(ValueError, match="texts_b must hold one entry per text in texts_a"):
        ours.encode_batch(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="texts_a must hold at least one text"):
        ours.encode_batch([])
