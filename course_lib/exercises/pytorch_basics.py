"""The exercise of notebook 05 (PyTorch basics): ``folder_dataset``, a torch Dataset over class folders.

Importing this module registers it.
"""

from __future__ import annotations

import pathlib
import tempfile
from typing import Callable

from course_lib.exercises.engine import Exercise, Failure, call_learner, register, short_repr


# ---------------------------------------------------------------------------
# folder_dataset (notebook 05): a torch Dataset over class folders
# ---------------------------------------------------------------------------

def _same(value, want) -> bool:
    """``value == want`` as a bool, False when the comparison is ambiguous or fails (an array, ...)."""
    try:
        return bool(value == want)
    except Exception:
        return False


def _folder_checker(cls: Callable) -> Failure | None:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        files = {"wasps": ["a wasp stings", "wasps are yellow"], "ants": ["ants carry leaves", "an ant", "ants dig"],
                 "bees": ["bees make honey"]}
        for name, texts in files.items():  # created in an unsorted order on purpose
            (root / name).mkdir()
            for i, text in enumerate(texts):
                (root / name / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
        (root / "ants" / "README.md").write_text("not a sample\n")
        classes = sorted(files)
        expected = sorted((text, classes.index(name)) for name, texts in files.items() for text in texts)
        dataset = call_learner(cls, root)
        missing = [m for m in ("__len__", "__getitem__") if not hasattr(type(dataset), m)]
        if missing:
            return Failure(f"folder_dataset(root) must give a dataset with __len__ and __getitem__, "
                           f"got {type(dataset).__name__} {short_repr(dataset, 40)}",
                           ("Write a class folder_dataset(Dataset) with __init__(self, root), __len__ and __getitem__.",))
        n = call_learner(len, dataset)
        if n == len(files):
            return Failure("len() counts the class folders, not the files",
                           ("__len__ must return the number of .txt files in all class folders together.",))
        if n == len(expected) + 1:
            return Failure("a file that is not a .txt sample was counted (README.md)",
                           ("Collect only the .txt files: (root / name).glob('*.txt').",))
        if n != len(expected):
            return Failure(f"len() is {n}, but there are {len(expected)} .txt files")
        items = [call_learner(dataset.__getitem__, i) for i in range(n)]
        bad = next((item for item in items if not (isinstance(item, tuple) and len(item) == 2)), items)
        if bad is not items:
            return Failure("each item must be a pair (text, label)", (f"got {short_repr(bad)}",))
        if any(isinstance(text, pathlib.Path) or (isinstance(text, str) and text.endswith(".txt")) for text, _ in items):
            return Failure("an item holds the file's path: read the file and return its text",
                           ("text = path.read_text(encoding='utf-8').strip()",))
        wrong = next((text for text, _ in items if not isinstance(text, str)), None)
        if wrong is not None or any(text is None for text, _ in items):
            return Failure("the texts are not the files' contents",
                           (f"each item's text must be a str, got {type(wrong).__name__} {short_repr(wrong)}",
                            "text = path.read_text(encoding='utf-8').strip()"))
        got = sorted(((text.strip(), label) for text, label in items), key=lambda pair: pair[0])
        if [t for t, _ in got] != [t for t, _ in expected]:
            return Failure("the texts are not the files' contents", (f"expected e.g. {expected[0][0]!r}",))
        if not all(_same(label, want) for (_, label), (_, want) in zip(got, expected)):
            return Failure("the labels do not follow the sorted folder names (ants = 0, bees = 1, wasps = 2)",
                           ("classes = sorted(folder names); the label of a file is classes.index(its folder's name).",))
    return None


_FOLDER_SOLUTION = '''\
import pathlib

from torch.utils.data import Dataset


class folder_dataset(Dataset):
    def __init__(self, root):
        root = pathlib.Path(root)
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())   # label = index in this list
        self.samples = [(path, label) for label, name in enumerate(self.classes)
                        for path in sorted((root / name).glob("*.txt"))]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        return path.read_text(encoding="utf-8").strip(), label
'''

register(
    Exercise(
        name="folder_dataset",
        signature="folder_dataset(root): a torch Dataset; len() = number of .txt files; item i = (text, label)",
        checker=_folder_checker,
        hints=(
            "In __init__, list the class folders (the sub-folders of root) and sort their names: the label of a "
            "class is its index in that sorted list. Then collect (path, label) for every .txt file in each folder.",
            "__len__ returns how many (path, label) pairs you collected; __getitem__(i) opens the i-th file and "
            "returns (its text, its label).",
            "pathlib makes it short: sorted(p.name for p in root.iterdir() if p.is_dir()), "
            "sorted((root / name).glob('*.txt')), path.read_text(encoding='utf-8').strip().",
        ),
        solution=_FOLDER_SOLUTION,
    )
)
