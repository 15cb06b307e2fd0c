"""Tests of course_lib.data.folders (notebook 05): the story folder, the Dataset, pad_collate."""

import pytest
import torch
from torch.utils.data import DataLoader

from course_lib.data.stories import FEELINGS
from course_lib.data.folders import FolderTextDataset, TokenizedDataset, make_story_folder, pad_collate
from course_lib.data.stories import make_story_corpus
from course_lib.tokenizers import WordVocab


def test_story_folder_round_trip(tmp_path):
    root = make_story_folder(tmp_path / "stories", per_class=5, seed=0)
    assert sorted(p.name for p in root.iterdir()) == ["happy", "sad"]
    assert len(list((root / "happy").glob("*.txt"))) == len(list((root / "sad").glob("*.txt"))) == 5
    dataset = FolderTextDataset(root)
    assert dataset.classes == ["happy", "sad"] and len(dataset) == 10
    for text, label in dataset:
        assert text.split()[-2] in FEELINGS[dataset.classes[label]]  # the folder name is the right label
    assert make_story_folder(tmp_path / "again", per_class=5, seed=0).joinpath("sad", "000.txt").read_text() == \
        root.joinpath("sad", "000.txt").read_text()


def test_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        FolderTextDataset(tmp_path / "missing")
    (tmp_path / "flat.txt").write_text("x")
    with pytest.raises(ValueError, match="no sub-folders"):
        FolderTextDataset(tmp_path)


def test_pad_collate_in_a_dataloader():
    items = [([5, 6, 7], 0), ([8], 1), (torch.tensor([9, 10]), 1)]
    ids, lengths, labels = pad_collate(items, pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert lengths.tolist() == [3, 1, 2] and labels.tolist() == [0, 1, 1]
    loader = DataLoader(items, batch_size=2, collate_fn=pad_collate)
    shapes = [batch[0].shape for batch in loader]
    assert shapes == [(2, 3), (1, 2)]
    with pytest.raises(ValueError, match="must not be empty"):
        pad_collate([])


def test_dataset_works_in_dataloader_workers_started_by_spawn(tmp_path):
    """Workers started by spawn (macOS, Windows) import the Dataset's class by name, so it must live in a module."""
    root = make_story_folder(tmp_path / "stories", per_class=2, seed=0)
    loader = DataLoader(FolderTextDataset(root), batch_size=4, num_workers=1,
                        multiprocessing_context="spawn")
    texts, labels = next(iter(loader))
    assert len(texts) == 4 and labels.tolist() == [0, 0, 1, 1]


def test_tokenized_dataset_in_spawned_workers_gives_the_same_batches(tmp_path):
    """Notebook 05's two-worker loader: spawned workers find TokenizedDataset and batch as one process does."""
    vocab = WordVocab(make_story_corpus(100, seed=0).words)
    data = TokenizedDataset(FolderTextDataset(make_story_folder(tmp_path / "s", per_class=4, seed=0)), vocab)
    ids, label = data[0]
    assert ids == vocab.encode(FolderTextDataset(tmp_path / "s")[0][0].split()) and label == 0

    def first(workers, context=None):
        loader = DataLoader(data, batch_size=4, shuffle=True, collate_fn=pad_collate, num_workers=workers,
                            multiprocessing_context=context, generator=torch.Generator().manual_seed(0))
        return next(iter(loader))
    alone, spawned = first(0), first(2, "spawn")
    assert all(torch.equal(a, b) for a, b in zip(alone, spawned))
    with pytest.raises(TypeError, match="vocab"):
        TokenizedDataset(data, vocab=None)


def test_a_class_from_a_notebook_like_main_fails_in_a_spawned_worker():
    """Notebook 05's demonstration: the class runs without workers, and a spawned worker cannot find it."""
    from course_lib.data.folders import notebook_class_in_spawned_worker

    worked, lines = notebook_class_in_spawned_worker()
    assert not worked
    assert lines[0] == "[[0, 1, 4, 9], [16, 25, 36, 49]]"  # the same Dataset, no workers
    assert "AttributeError: Can't get attribute 'Squares' on <module '__main__' (built-in)>" in lines
    assert any(line.startswith("RuntimeError: DataLoader worker") and "pid" not in line for line in lines)
    assert not any("/" in line for line in lines)  # no file paths of the machine that ran it
