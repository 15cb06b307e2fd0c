"""Tests of course_lib.tokenizers: the word vocabulary and the Chinese segmenter."""

import pytest
import torch

from course_lib.data import make_translation_corpus
from course_lib.tokenizers import BOS, EOS, PAD, UNK, WordVocab, segment_chinese


@pytest.fixture(scope="module")
def zh_words() -> list[str]:
    return make_translation_corpus(num_sentences=100, seed=0).zh_words


@pytest.fixture
def vocab() -> WordVocab:
    return WordVocab(["I", "love", "you", "love", "cats"])  # the repeated word is kept once


def test_specials_have_ids_0_to_3(vocab):
    assert vocab.itos[:4] == [PAD, UNK, BOS, EOS] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    assert [vocab.stoi[s] for s in (PAD, UNK, BOS, EOS)] == [0, 1, 2, 3]
    assert vocab.itos[4:] == ["I", "love", "you", "cats"]
    assert len(vocab) == 8
    assert "love" in vocab and "dogs" not in vocab


def test_encode_decode_round_trip(vocab):
    words = ["I", "love", "cats"]
    ids = vocab.encode(words)
    assert ids == [4, 5, 7]
    assert vocab.decode(ids) == words
    assert vocab.decode(torch.tensor(ids)) == words  # a tensor of ids works too


def test_unknown_words_become_unk(vocab):
    assert vocab.encode(["I", "love", "dogs"]) == [4, 5, vocab.unk_id]
    assert vocab.decode(vocab.encode(["dogs"])) == [UNK]


def test_add_bos_and_eos(vocab):
    assert vocab.encode(["you"], add_bos=True) == [2, 6]
    assert vocab.encode(["you"], add_eos=True) == [6, 3]
    assert vocab.encode(["you"], add_bos=True, add_eos=True) == [2, 6, 3]
    assert vocab.encode([], add_bos=True, add_eos=True) == [2, 3]


def test_decode_stops_at_eos_and_skips_pad_and_bos(vocab):
    ids = [2, 4, 0, 5, 6, 3, 7, 0, 0]
    assert vocab.decode(ids) == ["I", "love", "you"]
    assert vocab.decode(ids, strip_special=False) == [BOS, "I", PAD, "love", "you", EOS, "cats", PAD, PAD]
    assert vocab.decode([3, 4]) == []


def test_encode_batch_pads_right_and_returns_lengths(vocab):
    ids, lengths = vocab.encode_batch([["I", "love", "you"], ["cats"], ["you", "love"]], add_eos=True)
    assert ids.dtype == torch.long and lengths.tolist() == [4, 2, 3]
    assert ids.tolist() == [[4, 5, 6, 3], [7, 3, 0, 0], [6, 5, 3, 0]]
    ids_b, lengths_b = vocab.encode_batch([["I"], ["I", "love"]], add_bos=True)
    assert ids_b.tolist() == [[2, 4, 0], [2, 4, 5]] and lengths_b.tolist() == [2, 3]
    for row, n in zip(ids, lengths):
        assert (row[n:] == vocab.pad_id).all() and (row[:n] != vocab.pad_id).all()
    with pytest.raises(ValueError, match="sentences"):
        vocab.encode_batch([])


def test_encode_rejects_a_string(vocab):
    with pytest.raises(TypeError, match="words") as excinfo:
        vocab.encode("I love you")
    # the advice in the message can be followed as written
    assert "segment_chinese(text, vocab.itos)" in str(excinfo.value)
    assert segment_chinese("youlove", vocab.itos) == ["you", "love"]
    with pytest.raises(TypeError, match="words"):
        WordVocab(["I", ""])


def test_segment_chinese_into_corpus_words(zh_words):
    assert segment_chinese("我昨天在公园里看见了一只猫", zh_words) == [
        "我", "昨天", "在", "公园", "里", "看见", "了", "一", "只", "猫"]
    # longest match first: 我们 is one word, 我 的 朋友 three
    assert segment_chinese("我们喜欢我的朋友", zh_words) == ["我们", "喜欢", "我", "的", "朋友"]
    # a WordVocab's word list works as the vocabulary
    assert segment_chinese("我爱你", WordVocab(zh_words).itos) == ["我", "爱", "你"]


def test_segment_chinese_honours_spaces(zh_words):
    assert segment_chinese("我们", zh_words) == ["我们"]
    assert segment_chinese("我 们", zh_words) == ["我", "们"]
    assert segment_chinese("  我爱  你 ", zh_words) == ["我", "爱", "你"]
    assert segment_chinese("", zh_words) == []


def test_segment_chinese_unknown_characters_become_single_characters(zh_words):
    assert "们" not in zh_words and "咪" not in zh_words
    assert segment_chinese("我爱猫咪", zh_words) == ["我", "爱", "猫", "咪"]
    assert segment_chinese("你好吗", zh_words) == ["你", "好", "吗"]
    with pytest.raises(TypeError, match="text"):
        segment_chinese(["我", "爱", "你"], zh_words)
