"""Tests for the exercise of notebook 05 (course_lib.exercises.pytorch_basics): folder_dataset."""

import os
import pathlib

import pytest

from course_lib.exercises import check


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(name, fn, capsys):
    """check() and its printed text."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


def test_folder_dataset_checker_names_the_mistakes(capsys):
    class CountsFolders:
        def __init__(self, root):
            self.names = os.listdir(root)

        def __len__(self):
            return len(self.names)

        def __getitem__(self, i):
            return "x", 0

    class ReturnsPaths:
        def __init__(self, root):
            root = pathlib.Path(root)
            classes = sorted(p.name for p in root.iterdir() if p.is_dir())
            self.items = [(p, classes.index(p.parent.name)) for c in classes for p in sorted((root / c).glob("*.txt"))]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    class ReverseLabels(ReturnsPaths):
        def __getitem__(self, i):
            path, label = self.items[i]
            return path.read_text().strip(), 2 - label

    for cls, expected in ((CountsFolders, "counts the class folders"), (ReturnsPaths, "holds the file's path"),
                          (ReverseLabels, "sorted folder names")):
        ok, out = run("folder_dataset", cls, capsys)
        assert ok is False and expected in out.splitlines()[0]
