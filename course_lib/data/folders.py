"""A folder of text files as a PyTorch Dataset (notebook 05): make one, read it, batch it.

In the spirit of the classic beginner's example (a folder ``ants/`` and a folder ``bees/`` of
pictures, the label being the folder's name), :func:`make_story_folder` writes story-world texts
into ``happy/`` and ``sad/`` folders; :class:`FolderTextDataset` reads them back; :func:`pad_collate`
turns a list of variable-length token sequences into one padded batch; :class:`TokenizedDataset`
wraps a dataset of (text, label) into one of (token ids, label).

These classes live in a module, not a notebook, on purpose: DataLoader workers started by
``spawn`` (Windows, macOS) or ``forkserver`` (Linux from Python 3.14) import the dataset's class
by its module path, and a class defined in a notebook's ``__main__`` cannot be found there.
"""

from __future__ import annotations

import numbers
import pathlib
import re
import subprocess
import sys

import torch
from torch.utils.data import Dataset

from .. import _checks
from ..batching import pad_sequences
from .stories import MOOD_TEXTS_PER_MOOD, MOODS, make_mood_task

__all__ = ["make_story_folder", "FolderTextDataset", "TokenizedDataset", "pad_collate", "NOTEBOOK_STYLE_PROGRAM",
           "notebook_class_in_spawned_worker"]


def make_story_folder(root, per_class: int = 50, seed: int = 0) -> pathlib.Path:
    """Write ``per_class`` short labelled stories into ``root/happy/NNN.txt`` and ``root/sad/NNN.txt``.

    The texts come from the story world's mood task (notebook 03); the folder name is the label.
    Returns ``root``.

    Refused before anything is written: a root that is not a str or pathlib.Path or that is an
    existing file, a per_class that is not an int in [1, MOOD_TEXTS_PER_MOOD] (the story world's
    distinct texts of one mood), a seed that is not an int.
    """
    root = _checks.check_path("root", root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"root {root} is a file: name a folder (it is created if missing)")
    _checks.check_positive_int("per_class", per_class)
    if per_class > MOOD_TEXTS_PER_MOOD:
        raise ValueError(f"per_class must be at most {MOOD_TEXTS_PER_MOOD} (the story world's distinct texts of "
                         f"one mood), got {per_class}")
    _checks.check_int("seed", seed)
    task = make_mood_task(num_train=2 * per_class, num_validation=0, num_test=0, seed=seed)
    counters = {mood: 0 for mood in MOODS}
    for example in task.train:
        mood = MOODS[example.label]
        folder = root / mood
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{counters[mood]:03d}.txt").write_text(example.text + "\n", encoding="utf-8")
        counters[mood] += 1
    return root


class FolderTextDataset(Dataset):
    """Every ``*.txt`` file under ``root/<class>/``: item i is (text, label index).

    classes: the sub-folder names, sorted (so the label of a class never depends on the file
    system's listing order); samples: (path, label) pairs, sorted by path.
    """

    def __init__(self, root):
        self.root = _checks.check_path("root", root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no folder at {self.root}")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise ValueError(f"{self.root} has no sub-folders: put each class's files in a folder named after it")
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in sorted((self.root / name).glob("*.txt"))]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__} {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples")
        path, label = self.samples[index]
        try:
            return path.read_text(encoding="utf-8").strip(), label
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a UTF-8 text file: keep only text files in {self.root}") from None


class TokenizedDataset(Dataset):
    """(text, label) items -> (token ids, label): item i is ``(vocab.encode(text.split()), label)``.

    texts_and_labels: any dataset of (str, int) pairs, e.g. a :class:`FolderTextDataset`.
    vocab: anything with ``encode(words) -> list[int]`` that pickles (a :class:`WordVocab`), since
    each DataLoader worker receives its own copy.
    """

    def __init__(self, texts_and_labels, vocab):
        if not hasattr(vocab, "encode"):
            raise TypeError(f"vocab must have an encode(words) method (e.g. a WordVocab), got {type(vocab).__name__}")
        self.inner, self.vocab = texts_and_labels, vocab

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        text, label = self.inner[index]
        return self.vocab.encode(text.split()), label


def pad_collate(batch, pad_id: int = 0):
    """A DataLoader's ``collate_fn`` for (token ids, label) items of different lengths.

    batch: list of (list[int] or 1-D tensor, int). Returns ids (B, T_max) padded with ``pad_id``,
    lengths (B,), labels (B,). Refused: a batch that is not a non-empty list of (ids, int label)
    pairs, ids that are not ints, a pad_id that is not an int.
    """
    if isinstance(batch, (str, bytes)) or not hasattr(batch, "__len__"):
        raise TypeError(f"batch must be a list of (token ids, label) pairs, got {type(batch).__name__}")
    if not batch:
        raise ValueError("batch must not be empty")
    for i, item in enumerate(batch):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"batch[{i}] must be a (token ids, label) pair, got {item!r:.60}")
        label = item[1]
        if isinstance(label, torch.Tensor) and label.dim() == 0 and label.dtype in _checks.ID_DTYPES:
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise TypeError(f"batch[{i}]'s label must be an int class index, got {label!r:.60}")
    _checks.check_int("pad_id", pad_id)
    seqs = [ids for ids, _ in batch]
    try:
        ids = pad_sequences(seqs, pad_id)
    except (TypeError, ValueError) as e:
        raise type(e)(f"batch's token ids: {e}") from None
    lengths = torch.tensor([len(s) for s in seqs])
    return ids, lengths, torch.tensor([label for _, label in batch])


# A program whose Dataset class lives in __main__ and has no file behind it, as a class written in a
# notebook does. Run with ``python -c``, it is what a notebook does on Windows and macOS.
NOTEBOOK_STYLE_PROGRAM = """\
import torch
from torch.utils.data import DataLoader

class Squares(torch.utils.data.Dataset):   # written in __main__, as in a notebook cell
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return i * i

print([b.tolist() for b in DataLoader(Squares(), batch_size=4)])            # no workers: fine
list(DataLoader(Squares(), batch_size=4, num_workers=1, multiprocessing_context="spawn"))
print("the spawned worker found Squares")
"""


def notebook_class_in_spawned_worker(timeout: float = 120) -> tuple[bool, list[str]]:
    """Run :data:`NOTEBOOK_STYLE_PROGRAM` in a fresh Python (``python -c``, so ``__main__`` has no file,
    like a notebook's kernel) and report what happened: ``(worked, lines)``.

    ``worked`` is True when the spawned worker could load the class (it cannot: it looks for
    ``Squares`` in its own ``__main__``, which never ran that code). ``lines`` are what the program
    printed and the error lines of its output (the worker's ``AttributeError``, the loader's
    ``RuntimeError``), without the tracebacks' file paths.
    """
    result = subprocess.run([sys.executable, "-c", NOTEBOOK_STYLE_PROGRAM], capture_output=True, text=True,
                            timeout=timeout)
    lines = [re.sub(r" \(pid(\(s\))? [\d, ]+\)", "", line.strip()) for line in result.stderr.splitlines()]
    worker = list(dict.fromkeys(line for line in lines if line.startswith("AttributeError")))
    loader = [line for line in lines if line.startswith("RuntimeError")][-1:]   # what the program itself raised
    errors = worker + loader
    printed = [line for line in result.stdout.splitlines() if line]
    return result.returncode == 0 and "the spawned worker found Squares" in printed, printed + errors
