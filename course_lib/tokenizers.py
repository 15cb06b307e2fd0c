"""Text -> token ids: word vocabularies for the course's generated corpora, WordPiece for real BERT ones.

- :class:`WordVocab`: a word-level vocabulary (word <-> id) with the special tokens
  ``<pad>`` (id 0), ``<unk>``, ``<bos>`` (begin of sentence) and ``<eos>`` (end of sentence).
- :func:`segment_chinese`: splits Chinese typed without spaces (我爱你) into the words of a
  vocabulary (我 爱 你), by greedy longest match, so a learner can type a sentence naturally.
- :class:`WordPieceTokenizer`: BERT's tokenizer for real pretrained vocabularies (``vocab.txt``).
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from collections.abc import Iterable, Sequence

import torch

from . import _checks
from .batching import pad_sequences

__all__ = ["WordVocab", "segment_chinese", "WordPieceTokenizer", "SPECIAL_TOKENS", "PAD", "UNK", "BOS", "EOS"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"


class WordVocab:
    """A fixed word list; ids 0..3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``.

    >>> vocab = WordVocab(["我", "爱", "你"])
    >>> vocab.encode(["我", "爱", "你"], add_eos=True)
    [4, 5, 6, 3]

    Refused with a message naming the argument: a single str where a list of words or sentences is
    expected (it would be read one character at a time), words that are not str, ids that are not
    ints in [0, len(vocab)), switches that are not True or False.
    """

    def __init__(self, words: Iterable[str]):
        _check_list_not_str("words", words, "a list of words (str)", "split it first: text.split()")
        self.itos: list[str] = [PAD, UNK, BOS, EOS]
        for w in words:
            if not isinstance(w, str) or not w:
                raise TypeError(f"words must be non-empty strings, got {w!r}")
            if w not in self.itos:
                self.itos.append(w)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return isinstance(word, str) and word in self.stoi

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words: {' '.join(self.itos[4:12])} ...)"

    def encode(self, words: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Words -> ids; unknown words become ``<unk>``."""
        if isinstance(words, str):
            raise TypeError("words must be a list of words, not a string: split it first "
                            "(text.split(), or segment_chinese(text, vocab.itos) for Chinese without spaces)")
        words = _str_list("words", words, "a list of words (str)")
        _checks.check_bool("add_bos", add_bos)
        _checks.check_bool("add_eos", add_eos)
        ids = [self.stoi.get(w, self.unk_id) for w in words]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Ids -> words, stopping at the first ``<eos>`` (and dropping specials) when strip_special."""
        ids = _id_list(ids, len(self))
        _checks.check_bool("strip_special", strip_special)
        words = []
        for i in ids:
            if strip_special and i == self.eos_id:
                break
            if strip_special and i in (self.pad_id, self.bos_id):
                continue
            words.append(self.itos[i])
        return words

    def encode_batch(self, sentences: Sequence[Sequence[str]], add_bos: bool = False,
                     add_eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A list of sentences -> ids (B, T) right-padded with ``<pad>``, and lengths (B,)."""
        _check_list_not_str("sentences", sentences, "a list of sentences, each a list of words",
                            "wrap it and split it: [text.split()]")
        sentences = list(sentences)
        for i, sentence in enumerate(sentences):
            if isinstance(sentence, str):
                raise TypeError(f"sentences[{i}] must be a list of words, got a str: split it first (text.split())")
        rows = [self.encode(s, add_bos=add_bos, add_eos=add_eos) for s in sentences]
        if not rows:
            raise ValueError("sentences must not be empty")
        return pad_sequences(rows, self.pad_id), torch.tensor([len(r) for r in rows])


def segment_chinese(text: str, vocab: Iterable[str]) -> list[str]:
    """Split Chinese text into vocabulary words by greedy longest match.

    Spaces are honoured as word boundaries; characters that start no vocabulary word become
    one-character words (the model will see them as ``<unk>``).

    >>> segment_chinese("我昨天在公园里看见了一只猫", ["我", "昨天", "在", "公园", "里", "看见", "了", "一", "只", "猫"])
    ['我', '昨天', '在', '公园', '里', '看见', '了', '一', '只', '猫']

    Refused: a text that is not a str; a vocab that is not a list of non-empty str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    _check_list_not_str("vocab", vocab, "a list of words (str), e.g. vocab.itos", "")
    words = set(_str_list("vocab", vocab, "a list of words (str)"))
    if "" in words:
        raise ValueError("vocab must hold non-empty words, got an empty string ''")
    longest = max((len(w) for w in words), default=1)
    out: list[str] = []
    for chunk in text.split():
        i = 0
        while i < len(chunk):
            for n in range(min(longest, len(chunk) - i), 0, -1):
                if chunk[i:i + n] in words or n == 1:
                    out.append(chunk[i:i + n])
                    i += n
                    break
    return out


def _check_list_not_str(name: str, value, what: str, hint: str) -> None:
    """``value`` must be an iterable other than a str or bytes (read one character at a time, by mistake)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {what}, got a single {type(value).__name__}" + (f"; {hint}" if hint else ""))
    if not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")


def _str_list(name: str, values, what: str) -> list[str]:
    """``values`` as a list, every entry a str (``name[i]`` named otherwise)."""
    _check_list_not_str(name, values, what, "")
    values = list(values)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(value).__name__} {value!r:.40}")
    return values


def _id_list(ids, size: int) -> list[int]:
    """``ids`` (a list of ints or a 1-D integer tensor) as a list of ints, each in [0, size)."""
    if isinstance(ids, torch.Tensor):
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"ids must be token ids (ints), got a tensor of dtype {ids.dtype}")
        if ids.dim() != 1:
            raise ValueError(f"ids must be one sequence of token ids (a list or a 1-D tensor), got a tensor of shape "
                             f"{_checks.shape_of(ids)}" + ("; for a batch, decode each row" if ids.dim() > 1 else ""))
        ids = ids.tolist()
    elif isinstance(ids, dict):
        raise TypeError("ids must be a list of token ids, got a dict: pass encoded['input_ids']")
    elif isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"ids must be a list of token ids (ints), got {type(ids).__name__} {ids!r:.40}")
    ids = list(ids)
    for i, value in enumerate(ids):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"ids[{i}] must be an int token id, got {type(value).__name__} {value!r:.40}")
        if not 0 <= value < size:
            raise ValueError(f"ids must hold token ids in [0, {size}) (the vocabulary's size), "
                             f"got {value} at ids[{i}]")
    return ids


# ---------------------------------------------------------------------------
# WordPiece: BERT's tokenizer, for real pretrained vocabularies (notebook 04)
# ---------------------------------------------------------------------------

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False  # whitespace, kept (then turned into spaces)
    # every "other" category, as BERT: control, format, private use (U+F0000), unassigned, surrogate
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # all non-letter/number ASCII counts as punctuation ("$", "^", "`" too), as in BERT
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    """CJK Unified Ideographs (the blocks BERT splits into single characters; not kana or hangul)."""
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class WordPieceTokenizer:
    """BERT's tokenizer: basic tokenisation, then greedy longest-match-first WordPiece.

    1. Basic: drop control characters, put spaces around every CJK character, split on
       whitespace; lower-case and strip accents (``lowercase=True``, "uncased" models); split off
       every punctuation character.
    2. WordPiece: each word becomes the longest vocabulary entry that starts it, then the longest
       ``##``-prefixed entry that continues it, and so on ("flightless" -> "flight", "##less"); a word
       that cannot be covered, or longer than 100 characters, becomes ``[UNK]``.

    The special tokens ([CLS], [SEP], [MASK], [PAD], [UNK]) written in the text stay whole.
    ``tokenize`` gives the same tokens as ``transformers.BertTokenizer`` on the same vocabulary
    (on 759 rare code points, where that Rust tokenizer reads older Unicode tables than Python's
    ``unicodedata``, the tokens of transformers' Python tokenizer, which reads the same as ours).

    Refused with a message naming the argument: a vocab that is not a list of str holding the five
    special tokens; text that is not a str; a single str where a list of texts is expected (it
    would be read one character at a time); ids that are not ints in [0, len(tokenizer)) (a
    negative id would silently read the vocabulary from its end); a max_length that is not an
    int leaving room for the special tokens.
    """

    max_chars_per_word = 100

    def __init__(self, vocab: Sequence[str], lowercase: bool = True):
        _check_list_not_str("vocab", vocab, "a list of tokens (str), one per id",
                            "read a vocab.txt with WordPieceTokenizer.from_file(path)")
        self.itos = _str_list("vocab", vocab, "a list of tokens (str), one per id")
        _checks.check_bool("lowercase", lowercase)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        missing = [t for t in SPECIAL_TOKENS if t not in self.stoi]
        if missing:
            raise ValueError(f"vocab lacks the special tokens {missing}: a BERT vocabulary holds all of "
                             f"{list(SPECIAL_TOKENS)}")
        self.lowercase = lowercase
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (self.stoi[t] for t in SPECIAL_TOKENS)
        self._special = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")

    @classmethod
    def from_file(cls, vocab_path, lowercase: bool = True) -> "WordPieceTokenizer":
        """Read a ``vocab.txt`` (one token per line, the line number is its id)."""
        path = _checks.check_path("vocab_path", vocab_path)
        if not path.is_file():
            raise FileNotFoundError(f"no vocabulary file at {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"vocab_path {path} is not a UTF-8 text file (a vocab.txt has one token per line)") \
                from None
        return cls(text.splitlines(), lowercase)

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer({len(self)} tokens, lowercase={self.lowercase})"

    # --- basic tokenisation ---------------------------------------------------------------
    def _basic(self, text: str) -> list[str]:
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_cjk(cp):
                cleaned.append(f" {ch} ")
            else:
                cleaned.append(" " if _is_whitespace(ch) else ch)
        words = []
        for word in "".join(cleaned).split():
            if self.lowercase:
                word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
            current = ""
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _wordpiece(self, word: str) -> list[str]:
        if len(word) > self.max_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:  # the longest entry that matches here
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.stoi:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]  # no entry covers this part: the whole word is unknown
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens, e.g. "Penguins are flightless birds." -> penguins are flight ##less birds ."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        tokens = []
        for part in self._special.split(text):
            if part in SPECIAL_TOKENS:
                tokens.append(part)
            elif part:
                tokens.extend(p for word in self._basic(part) for p in self._wordpiece(word))
        return tokens

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Tokens -> ids; a token that is not in the vocabulary becomes ``[UNK]``."""
        tokens = _str_list("tokens", tokens, "a list of tokens (str), e.g. tokenizer.tokenize(text)")
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def encode(self, text_a: str, text_b: str | None = None, max_length: int | None = None) -> dict[str, list[int]]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` as ids, with segment ids (0 for A, 1 for B).

        max_length: cut the longer of A and B one token at a time until everything fits.
        Returns plain lists: input_ids, token_type_ids, attention_mask (1 for every real token).
        """
        if not isinstance(text_a, str):
            raise TypeError(f"text_a must be a str, got {type(text_a).__name__}")
        if text_b is not None and not isinstance(text_b, str):
            raise TypeError(f"text_b must be a str or None, got {type(text_b).__name__}")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral)):
            raise TypeError(f"max_length must be an int or None, got {max_length!r}")
        a = self.convert_tokens_to_ids(self.tokenize(text_a))
        b = None if text_b is None else self.convert_tokens_to_ids(self.tokenize(text_b))
        if max_length is not None:
            specials = 2 if b is None else 3
            if max_length < specials:
                raise ValueError(f"max_length must leave room for the {specials} special tokens, got {max_length}")
            while len(a) + len(b or []) + specials > max_length:
                if b is not None and len(b) > len(a):
                    b.pop()
                else:
                    a.pop()
        ids = [self.cls_id] + a + [self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [self.sep_id]
            types += [1] * (len(b) + 1)
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids)}

    @property
    def special_ids(self) -> list[int]:
        """The ids of ``[PAD] [UNK] [CLS] [SEP] [MASK]``, in that order: never masked, never a random replacement."""
        return [self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id]

    def encode_batch(self, texts_a: Sequence[str], texts_b: Sequence[str | None] | None = None,
                     max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Many (A, B) pairs -> one padded batch of tensors.

        texts_a: B texts; texts_b: B texts or None entries (default: no second sentence).
        Returns input_ids, token_type_ids, attention_mask, each (B, T) torch.long with T the
        longest encoding; padding is ``[PAD]`` in input_ids and 0 in the other two.
        """
        if isinstance(texts_a, str):
            raise TypeError("texts_a must be a list of texts, got a single str; wrap it: [text]")
        texts_a = _str_list("texts_a", texts_a, "a list of texts (str)")
        if not texts_a:
            raise ValueError("texts_a must hold at least one text, got none")
        if isinstance(texts_b, str):
            raise TypeError("texts_b must be a list with one text (or None) per text in texts_a, got a single str; "
                            "wrap it: [text]")
        _check_list_not_str("texts_b", [] if texts_b is None else texts_b, "a list of texts (str or None) or None", "")
        texts_b = [None] * len(texts_a) if texts_b is None else list(texts_b)
        for i, text in enumerate(texts_b):
            if text is not None and not isinstance(text, str):
                raise TypeError(f"texts_b[{i}] must be a str or None, got {type(text).__name__}")
        if len(texts_b) != len(texts_a):
            raise ValueError(f"texts_b must hold one entry per text in texts_a ({len(texts_a)}), got {len(texts_b)}")
        encoded = [self.encode(a, b, max_length=max_length) for a, b in zip(texts_a, texts_b)]
        pad = {"input_ids": self.pad_id, "token_type_ids": 0, "attention_mask": 0}
        return {key: pad_sequences([e[key] for e in encoded], value) for key, value in pad.items()}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Ids -> text: ``##`` pieces glued to the piece before them, tokens separated by spaces."""
        ids = _id_list(ids, len(self))
        _checks.check_bool("skip_special_tokens", skip_special_tokens)
        tokens = [self.itos[i] for i in ids if not (skip_special_tokens and self.itos[i] in SPECIAL_TOKENS)]
        return " ".join(tokens).replace(" ##", "").strip()
