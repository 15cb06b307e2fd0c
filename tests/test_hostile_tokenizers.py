"""Hostile input to the tokenizers: any text, any ids, the wrong kind of argument.

Properties (hypothesis): WordPiece never crashes on any str and, on the bundled all-MiniLM-L6-v2
vocabulary, gives the tokens of ``transformers.BertTokenizer``; decoding the ids of an encoding
and tokenizing the text again gives the same tokens back; ids outside [0, V) are refused.

transformers' Rust tokenizer (``BertTokenizer``) and its Python one (``BertTokenizerLegacy``)
disagree on 759 rare code points: the Rust one reads older Unicode tables (marks and punctuation
added since Unicode 10, e.g. U+11943) and starts a CJK block at U+2B920 instead of U+2B820. Ours
reads Python's ``unicodedata`` as the Python one does: it equals the Python one on any text, and
the Rust one on any text without such a code point.
Then one parametrized case per hostile argument: the exception type and the argument's name.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.pretrained import minilm_path
from course_lib.tokenizers import SPECIAL_TOKENS, WordPieceTokenizer, WordVocab, segment_chinese

transformers = pytest.importorskip("transformers")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tokenizers():
    path = minilm_path()
    return (WordPieceTokenizer.from_file(path / "vocab.txt"),
            transformers.BertTokenizer.from_pretrained(str(path)),          # the Rust one
            transformers.BertTokenizerLegacy.from_pretrained(str(path)))    # the Python one


# Text that reaches every branch: any character this Python's Unicode database knows, mixed
# with BERT's special tokens, "##", accents and CJK. Left out: lone surrogates (no UTF-8 form, so
# no real text holds one) and code points unassigned in unicodedata.unidata_version: a newer
# character (U+2EBE1, Unicode 15.1) is a letter to transformers' tables and unknown to Python's.
PIECES = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=12),
    st.sampled_from(list(SPECIAL_TOKENS) + ["[cls]", "##", "##ing", " ", "\t\n", "flightless", "naïve", "Ångström",
                                            "我爱你", "日本語", "\u0301", "\u200b", "\x00", "\ufffd", "a" * 101]),
)
TEXT = st.lists(PIECES, max_size=6).map("".join)


@SETTINGS
@given(text=TEXT)
def test_wordpiece_equals_transformers_on_any_text(tokenizers, text):
    ours, fast, slow = tokenizers
    mine = ours.tokenize(text)
    assert mine == slow.tokenize(text)
    if all(_transformers_agree_on(ch, fast, slow) for ch in text):
        assert mine == fast.tokenize(text)


_agree: dict[str, bool] = {}


def _transformers_agree_on(ch: str, fast, slow) -> bool:
    """Whether transformers' Rust and Python tokenizers split a character alike, between two letters."""
    if ch not in _agree:
        _agree[ch] = fast.tokenize(f"a{ch}b") == slow.tokenize(f"a{ch}b")
    return _agree[ch]


@SETTINGS
@given(text=st.text(alphabet=st.characters(codec=None), max_size=30))
def test_tokenize_never_crashes_even_on_lone_surrogates(tokenizers, text):
    ours = tokenizers[0]
    tokens = ours.tokenize(text)
    assert all(isinstance(t, str) and t for t in tokens)


@SETTINGS
@given(text=TEXT, pair=st.one_of(st.none(), TEXT))
def test_decode_of_an_encoding_tokenizes_back_to_its_tokens(tokenizers, text, pair):
    ours = tokenizers[0]
    ids = ours.encode(text, pair)["input_ids"]
    assert all(0 <= i < len(ours) for i in ids)
    tokens = [ours.itos[i] for i in ids]
    assert ours.tokenize(ours.decode(ids)) == tokens
    assert ours.decode(torch.tensor(ids)) == ours.decode(ids)


@SETTINGS
@given(ids=st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=8).filter(
    lambda ids: any(not 0 <= i < 30522 for i in ids)))
def test_wordpiece_decode_refuses_any_id_outside_the_vocabulary(tokenizers, ids):
    ours = tokenizers[0]
    with pytest.raises(ValueError, match=r"\bids\b.*\[0, 30522\)"):
        ours.decode(ids)


@SETTINGS
@given(ids=st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=8).filter(
    lambda ids: any(not 0 <= i < 7 for i in ids)))
def test_word_vocab_decode_refuses_any_id_outside_the_vocabulary(ids):
    with pytest.raises(ValueError, match=r"\bids\b.*\[0, 7\)"):
        WordVocab(["a", "b", "c"]).decode(ids, strip_special=False)


# ---------------------------------------------------------------------------
# One case per hostile argument: (call, exception type, the argument's name in the message)
# ---------------------------------------------------------------------------

TINY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##c"]
wp = WordPieceTokenizer(TINY)
vocab = WordVocab(["a", "b", "c"])

CASES = {
    # WordVocab
    "WordVocab(str)": (lambda: WordVocab("abc"), TypeError, "words"),
    "WordVocab(None)": (lambda: WordVocab(None), TypeError, "words"),
    "WordVocab([1])": (lambda: WordVocab([1]), TypeError, "words"),
    "encode(None)": (lambda: vocab.encode(None), TypeError, "words"),
    "encode([1, 2])": (lambda: vocab.encode([1, 2]), TypeError, r"words\[0\]"),
    "encode(nested)": (lambda: vocab.encode([["a"]]), TypeError, r"words\[0\]"),
    "encode(add_bos='no')": (lambda: vocab.encode(["a"], add_bos="no"), TypeError, "add_bos"),
    "encode(add_eos=1)": (lambda: vocab.encode(["a"], add_eos=1), TypeError, "add_eos"),
    "decode([99])": (lambda: vocab.decode([99]), ValueError, "ids"),
    "decode([-1])": (lambda: vocab.decode([-1]), ValueError, "ids"),
    "decode([1.0])": (lambda: vocab.decode([1.0]), TypeError, r"ids\[0\]"),
    "decode([True])": (lambda: vocab.decode([True]), TypeError, r"ids\[0\]"),
    "decode('12')": (lambda: vocab.decode("12"), TypeError, "ids"),
    "decode(5)": (lambda: vocab.decode(5), TypeError, "ids"),
    "decode(2-D tensor)": (lambda: vocab.decode(torch.tensor([[4, 5]])), ValueError, "ids"),
    "decode(float tensor)": (lambda: vocab.decode(torch.tensor([4.0])), TypeError, "ids"),
    "decode(strip_special='no')": (lambda: vocab.decode([4], strip_special="no"), TypeError, "strip_special"),
    "encode_batch(str)": (lambda: vocab.encode_batch("a b"), TypeError, "sentences"),
    "encode_batch([str])": (lambda: vocab.encode_batch(["a b", "c"]), TypeError, r"sentences\[0\]"),
    "encode_batch(None)": (lambda: vocab.encode_batch(None), TypeError, "sentences"),
    "encode_batch([])": (lambda: vocab.encode_batch([]), ValueError, "sentences"),
    # segment_chinese
    "segment_chinese(text=list)": (lambda: segment_chinese(["我"], ["我"]), TypeError, "text"),
    "segment_chinese(vocab=None)": (lambda: segment_chinese("我", None), TypeError, "vocab"),
    "segment_chinese(vocab=str)": (lambda: segment_chinese("我爱", "我爱"), TypeError, "vocab"),
    "segment_chinese(vocab=[1])": (lambda: segment_chinese("我", [1]), TypeError, r"vocab\[0\]"),
    "segment_chinese(vocab=[''])": (lambda: segment_chinese("我爱", [""]), ValueError, "vocab"),  # looped forever
    # WordPieceTokenizer
    "WordPieceTokenizer(str)": (lambda: WordPieceTokenizer("abc"), TypeError, "vocab"),
    "WordPieceTokenizer(None)": (lambda: WordPieceTokenizer(None), TypeError, "vocab"),
    "WordPieceTokenizer([..., 5])": (lambda: WordPieceTokenizer(TINY + [5]), TypeError, r"vocab\[8\]"),
    "WordPieceTokenizer(no specials)": (lambda: WordPieceTokenizer(["a"]), ValueError, "vocab"),
    "WordPieceTokenizer(lowercase='no')": (lambda: WordPieceTokenizer(TINY, lowercase="no"), TypeError, "lowercase"),
    "from_file(None)": (lambda: WordPieceTokenizer.from_file(None), TypeError, "vocab_path"),
    "from_file(missing)": (lambda: WordPieceTokenizer.from_file("/nonexistent/vocab.txt"), FileNotFoundError,
                           "vocabulary file"),
    "from_file(binary)": (lambda: WordPieceTokenizer.from_file(minilm_path() / "model.safetensors"), ValueError,
                          "vocab_path"),
    "tokenize(None)": (lambda: wp.tokenize(None), TypeError, "text"),
    "tokenize(bytes)": (lambda: wp.tokenize(b"a"), TypeError, "text"),
    "encode(text_a=list)": (lambda: wp.encode(["a"]), TypeError, "text_a"),
    "encode(text_b=int)": (lambda: wp.encode("a", 5), TypeError, "text_b"),
    "encode(max_length='5')": (lambda: wp.encode("a", max_length="5"), TypeError, "max_length"),
    "encode(max_length=5.5)": (lambda: wp.encode("a", max_length=5.5), TypeError, "max_length"),
    "encode(max_length=True)": (lambda: wp.encode("a", max_length=True), TypeError, "max_length"),
    "encode(max_length=1)": (lambda: wp.encode("a", max_length=1), ValueError, "max_length"),
    "convert_tokens_to_ids(str)": (lambda: wp.convert_tokens_to_ids("abc"), TypeError, "tokens"),
    "convert_tokens_to_ids([1])": (lambda: wp.convert_tokens_to_ids([1]), TypeError, r"tokens\[0\]"),
    "wp.encode_batch(str)": (lambda: wp.encode_batch("a b"), TypeError, "texts_a"),
    "wp.encode_batch(None)": (lambda: wp.encode_batch(None), TypeError, "texts_a"),
    "wp.encode_batch([1])": (lambda: wp.encode_batch([1]), TypeError, r"texts_a\[0\]"),
    "wp.encode_batch(texts_b=str)": (lambda: wp.encode_batch(["a", "b"], "cd"), TypeError, "texts_b"),
    "wp.encode_batch(texts_b=[1])": (lambda: wp.encode_batch(["a"], [1]), TypeError, r"texts_b\[0\]"),
    "wp.encode_batch(texts_b short)": (lambda: wp.encode_batch(["a", "b"], ["c"]), ValueError, "texts_b"),
    "wp.decode([len])": (lambda: wp.decode([len(TINY)]), ValueError, "ids"),
    "wp.decode([-1])": (lambda: wp.decode([-1]), ValueError, "ids"),  # read "##c" from the end
    "wp.decode(encoding dict)": (lambda: wp.decode(wp.encode("a")), TypeError, "ids"),
    "wp.decode(2-D tensor)": (lambda: wp.decode(torch.tensor([[2, 3]])), ValueError, "ids"),
    "wp.decode(skip_special_tokens='no')": (lambda: wp.decode([2], skip_special_tokens="no"), TypeError,
                                            "skip_special_tokens"),
}


@pytest.mark.parametrize("call, error, name", CASES.values(), ids=CASES.keys())
def test_hostile_argument_is_refused_by_name(call, error, name):
    with pytest.raises(error, match=rf"(?<![\w\[]){name}"):
        call()


def test_membership_of_anything_is_a_plain_answer():
    assert "a" in vocab and "z" not in vocab
    assert ["a"] not in vocab and None not in vocab  # no "unhashable type" from inside a dict


def test_negative_ids_no_longer_read_the_vocabulary_backwards():
    assert wp.decode([5, 7]) == "ac"  # valid ids still decode
    with pytest.raises(ValueError, match=r"ids must hold token ids in \[0, 8\).*got -1 at ids\[1\]"):
        wp.decode([5, -1])
