"""A folder of text files as a PyTorch Dataset (notebook 05): make one, read it, batch it.

In the spirit of the classic beginner's example (a folder ``ants/`` and a folder ``bees/`` of
pictures, the label being the folder's name), :func:`make_story_folder` writes story-world texts
into ``happy/`` and ``sad/`` folders; :class:`FolderTextDataset` reads them back; :func:`pad_collate`
turns a list of variable-length token sequences into one padded batch.

``FolderTextDataset`` lives in a module (not a notebook), so DataLoader workers started with
``spawn`` (macOS, Windows) can import it.
"""

from __future__ import annotations

import pathlib

import torch
from torch.utils.data import Dataset

from ..batching import pad_sequences
from .stories import MOODS, make_mood_task

__all__ = ["make_story_folder", "FolderTextDataset", "pad_collate"]


def make_story_folder(root, per_class: int = 50, seed: int = 0) -> pathlib.Path:
    """Write ``per_class`` short labelled stories into ``root/happy/NNN.txt`` and ``root/sad/NNN.txt``.

    The texts come from the story world's mood task (notebook 03); the folder name is the label.
    Returns ``root``.
    """
    root = pathlib.Path(root)
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
        self.root = pathlib.Path(root)
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
        path, label = self.samples[index]
        return path.read_text(encoding="utf-8").strip(), label


def pad_collate(batch, pad_id: int = 0):
    """A DataLoader's ``collate_fn`` for (token ids, label) items of different lengths.

    batch: list of (list[int] or 1-D tensor, int). Returns ids (B, T_max) padded with ``pad_id``,
    lengths (B,), labels (B,).
    """
    if not batch:
        raise ValueError("batch must not be empty")
    seqs = [ids for ids, _ in batch]
    lengths = torch.tensor([len(s) for s in seqs])
    return pad_sequences(seqs, pad_id), lengths, torch.tensor([label for _, label in batch])
