"""Loading data the PyTorch way (notebook 05): a folder of files, a Dataset, a DataLoader, a collate_fn.

In the spirit of the classic beginner's example (a folder ``ants/`` and a folder ``bees/`` of
pictures, the label being the folder's name), :func:`make_story_folder` writes story-world texts
into ``happy/`` and ``sad/`` folders; :class:`FolderTextDataset` reads them back; :func:`pad_collate`
turns a list of variable-length token sequences into one padded batch. :func:`read_scalars` reads
TensorBoard event files back, so a notebook can plot what ``SummaryWriter`` logged without a server.
"""

from __future__ import annotations

import pathlib

import torch
from torch.utils.data import Dataset

__all__ = ["make_story_folder", "FolderTextDataset", "pad_collate", "read_scalars"]


def make_story_folder(root, per_class: int = 50, seed: int = 0) -> pathlib.Path:
    """Write ``per_class`` short labelled stories into ``root/happy/NNN.txt`` and ``root/sad/NNN.txt``.

    The texts come from the story world's mood task (notebook 03); the folder name is the label.
    Returns ``root``.
    """
    from .data.stories import MOODS, make_mood_task

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
    seqs = [torch.as_tensor(ids, dtype=torch.long) for ids, _ in batch]
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
    return ids, lengths, torch.tensor([label for _, label in batch])


def read_scalars(logdir) -> dict[str, tuple[list[int], list[float]]]:
    """Everything ``SummaryWriter.add_scalar`` wrote under ``logdir``: tag -> (steps, values)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = pathlib.Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(f"no log folder at {logdir}")
    events = EventAccumulator(str(logdir))
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        out[tag] = ([p.step for p in points], [p.value for p in points])
    return out
