"""Tests for course_lib.data.images: the drawn ant and bee folder, InsectFolder and to_chw_float."""

import hashlib
import os
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader

from course_lib.data.images import InsectFolder, draw_insect, make_insect_folder, to_chw_float

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_insect_folder(tmp_path_factory.mktemp("insects"), per_class_train=12, per_class_val=5, seed=3)


def digest(root):
    files = sorted(pathlib.Path(root).rglob("*"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def test_layout_and_pictures(folder):
    for split, n in (("train", 12), ("val", 5)):
        for kind in ("ants", "bees"):
            names = sorted(os.listdir(folder / split / kind))
            assert names == [f"{i:03d}.png" for i in range(n)]
    with Image.open(folder / "train" / "bees" / "000.png") as picture:
        assert picture.mode == "RGB" and picture.size == (32, 32) and picture.format == "PNG"


def test_same_call_same_bytes_and_seed_matters(folder, tmp_path):
    again = make_insect_folder(tmp_path / "again", per_class_train=12, per_class_val=5, seed=3)
    assert digest(again) == digest(folder)
    other = make_insect_folder(tmp_path / "other", per_class_train=12, per_class_val=5, seed=4)
    assert digest(other)["train/ants/000.png"] != digest(folder)["train/ants/000.png"]
    # a larger folder keeps the first pictures as they were
    more = make_insect_folder(tmp_path / "more", per_class_train=13, per_class_val=5, seed=3)
    assert digest(more)["train/bees/011.png"] == digest(folder)["train/bees/011.png"]
    # train and val pictures differ
    assert digest(folder)["train/ants/000.png"] != digest(folder)["val/ants/000.png"]


def test_draw_insect_shape_and_determinism():
    a = draw_insect("ants", np.random.default_rng(5), size=48)
    b = draw_insect("ants", np.random.default_rng(5), size=48)
    c = draw_insect("bees", np.random.default_rng(5), size=48)
    assert a.mode == "RGB" and a.size == (48, 48)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_the_class_is_in_the_insect_not_the_colours():
    """Ants are dark, bees yellow; the mean colour of whole pictures must still overlap a lot."""
    def mean_colours(kind):
        return np.stack([np.asarray(draw_insect(kind, np.random.default_rng([9, i]))).mean((0, 1))
                         for i in range(60)])
    ants, bees = mean_colours("ants"), mean_colours("bees")
    # the backgrounds dominate: each class's average colour lies well inside the other's spread
    assert np.all(np.abs(ants.mean(0) - bees.mean(0)) < 0.5 * (ants.std(0) + bees.std(0)))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(per_class_train=0), ValueError, "per_class_train"),
    (dict(per_class_val=1.5), ValueError, "per_class_val"),
    (dict(size=4), ValueError, "size"),
    (dict(size="32"), TypeError, "size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=None), TypeError, "seed"),
])
def test_make_insect_folder_refuses_bad_arguments(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words):
        make_insect_folder(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_make_insect_folder_refuses_a_file_and_draw_insect_bad_kind(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        make_insect_folder(tmp_path / "file")
    with pytest.raises(TypeError, match="root"):
        make_insect_folder(None)
    with pytest.raises(ValueError, match="kind"):
        draw_insect("wasps", np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        draw_insect("ants", 0)


def test_insect_folder_items_labels_and_len(folder):
    ants = InsectFolder(folder / "train", "ants")
    assert ants.path == os.path.join(folder / "train", "ants")
    assert len(ants) == 12 and ants.img_path[0] == "000.png"
    picture, label = ants[0]
    assert isinstance(picture, Image.Image) and picture.mode == "RGB" and label == "ants"
    with Image.open(folder / "train" / "ants" / "000.png") as file:
        assert np.array_equal(np.asarray(picture), np.asarray(file.convert("RGB")))
    bees = InsectFolder(folder / "train", "bees", label=1, transform=to_chw_float)
    tensor, label = bees[-1]
    assert label == 1 and tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32
    with pytest.raises(IndexError):
        bees[12]
    with pytest.raises(TypeError, match="index"):
        bees[0.5]


def test_adding_two_folders_gives_a_concat_dataset(folder):
    ants = InsectFolder(folder / "train", "ants")
    bees = InsectFolder(folder / "train", "bees")
    both = ants + bees
    assert isinstance(both, ConcatDataset) and len(both) == 24
    assert both[11][1] == "ants" and both[12][1] == "bees"
    assert np.array_equal(np.asarray(both[12][0]), np.asarray(bees[0][0]))


def test_insect_folder_skips_non_images_and_reads_grey_files(tmp_path):
    folder = tmp_path / "ants"
    folder.mkdir()
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "notes.txt").write_text("not a picture")
    Image.new("L", (5, 4), 128).save(folder / "b.png")
    Image.new("RGB", (5, 4), (1, 2, 3)).save(folder / "a.PNG")
    dataset = InsectFolder(tmp_path, "ants")
    assert dataset.img_path == ["a.PNG", "b.png"]
    assert dataset[1][0].mode == "RGB" and dataset[1][0].size == (5, 4)


def test_insect_folder_errors(tmp_path):
    (tmp_path / "bees").mkdir()
    with pytest.raises(FileNotFoundError, match=r"ants.*holds \['bees'\]"):
        InsectFolder(tmp_path, "ants")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        InsectFolder(tmp_path / "nowhere", "ants")
    (tmp_path / "bees" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="no image files"):
        InsectFolder(tmp_path, "bees")
    with pytest.raises(TypeError, match="transform"):
        InsectFolder(tmp_path, "bees", transform="to_chw_float")


def test_to_chw_float_is_permute_then_divide():
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = to_chw_float(array)
    manual = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32 and tensor.is_contiguous()
    assert torch.equal(tensor, manual)
    assert tensor.min() >= 0 and tensor.max() <= 1
    assert torch.equal(to_chw_float(Image.fromarray(array)), tensor)
    # a grey picture gives one channel; the values are not shared with the array
    grey = to_chw_float(Image.fromarray(array[:, :, 0]))
    assert grey.shape == (1, 5, 7) and torch.equal(grey[0], tensor[0])
    tensor[0, 0, 0] = 7.0
    assert array[0, 0, 0] != 7


def test_to_chw_float_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        to_chw_float(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        to_chw_float(np.zeros((3, 8, 8), dtype=np.uint8))  # channels first already
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        to_chw_float(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(TypeError, match="PIL image"):
        to_chw_float(torch.zeros(3, 4, 4))


def test_spawned_workers_give_the_same_batches(folder):
    dataset = (InsectFolder(folder / "val", "ants", label=0, transform=to_chw_float)
               + InsectFolder(folder / "val", "bees", label=1, transform=to_chw_float))
    plain = list(DataLoader(dataset, batch_size=4))
    spawned = list(DataLoader(dataset, batch_size=4, num_workers=2, multiprocessing_context="spawn"))
    assert len(plain) == len(spawned) == 3
    for (x, y), (x2, y2) in zip(plain, spawned):
        assert x.shape[1:] == (3, 32, 32) and torch.equal(x, x2) and torch.equal(y, y2)
