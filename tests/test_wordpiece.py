"""WordPieceTokenizer against transformers' BERT tokenizers on the real all-MiniLM-L6-v2 vocabulary."""

import random

import pytest

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
