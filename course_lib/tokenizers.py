"""Tokenizers for the corpora the course generates.

- :class:`WordVocab`: a word-level vocabulary (word <-> id) with the special tokens
  ``<pad>`` (id 0), ``<unk>``, ``<bos>`` (begin of sentence) and ``<eos>`` (end of sentence).
- :func:`segment_chinese`: splits Chinese typed without spaces (我爱你) into the words of a
  vocabulary (我 爱 你), by greedy longest match, so a learner can type a sentence naturally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

__all__ = ["WordVocab", "segment_chinese", "PAD", "UNK", "BOS", "EOS"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"


class WordVocab:
    """A fixed word list; ids 0..3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``.

    >>> vocab = WordVocab(["我", "爱", "你"])
    >>> vocab.encode(["我", "爱", "你"], add_eos=True)
    [4, 5, 6, 3]
    """

    def __init__(self, words: Iterable[str]):
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
        return word in self.stoi

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words: {' '.join(self.itos[4:12])} ...)"

    def encode(self, words: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Words -> ids; unknown words become ``<unk>``."""
        if isinstance(words, str):
            raise TypeError("words must be a list of words, not a string: split it first "
                            "(text.split(), or segment_chinese(text, vocab.itos) for Chinese without spaces)")
        ids = [self.stoi.get(w, self.unk_id) for w in words]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Ids -> words, stopping at the first ``<eos>`` (and dropping specials) when strip_special."""
        words = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if strip_special and i == self.eos_id:
                break
            if strip_special and i in (self.pad_id, self.bos_id):
                continue
            words.append(self.itos[i])
        return words

    def encode_batch(self, sentences: Sequence[Sequence[str]], add_bos: bool = False,
                     add_eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A list of sentences -> ids (B, T) right-padded with ``<pad>``, and lengths (B,)."""
        rows = [self.encode(s, add_bos=add_bos, add_eos=add_eos) for s in sentences]
        if not rows:
            raise ValueError("sentences must not be empty")
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.full((len(rows), int(lengths.max())), self.pad_id, dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, :len(r)] = torch.tensor(r, dtype=torch.long)
        return ids, lengths


def segment_chinese(text: str, vocab: Iterable[str]) -> list[str]:
    """Split Chinese text into vocabulary words by greedy longest match.

    Spaces are honoured as word boundaries; characters that start no vocabulary word become
    one-character words (the model will see them as ``<unk>``).

    >>> segment_chinese("我昨天在公园里看见了一只猫", ["我", "昨天", "在", "公园", "里", "看见", "了", "一", "只", "猫"])
    ['我', '昨天', '在', '公园', '里', '看见', '了', '一', '只', '猫']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = set(vocab)
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
