"""Tests for course_lib.tasks.images: InsectCNN learns ants from bees; load_split stacks a split."""

import pytest
import torch
from torch import nn

from course_lib.data.images import make_insect_folder
from course_lib.tasks.images import InsectCNN, load_split

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_insect_folder(tmp_path_factory.mktemp("insects"), seed=0)  # the defaults: 120 + 40 per class


def test_load_split(folder):
    images, labels = load_split(folder, "val")
    assert images.shape == (80, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.long and labels.tolist() == [0] * 40 + [1] * 40
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0.05
    with pytest.raises(ValueError, match="split"):
        load_split(folder, "test")


def test_cnn_shapes_and_errors():
    model = InsectCNN()
    assert model(torch.rand(5, 3, 32, 32)).shape == (5, 2)
    assert InsectCNN(size=64)(torch.rand(2, 3, 64, 64)).shape == (2, 2)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        model(torch.rand(5, 32, 32, 3))          # channels last
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(5, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiple of 4"):
        InsectCNN(size=30)


def test_short_training_tells_ants_from_bees(folder):
    """20 epochs of AdamW (about 1-2 s): far above chance (50%) on the held-out pictures."""
    x_train, y_train = load_split(folder, "train")
    x_val, y_val = load_split(folder, "val")
    torch.manual_seed(0)
    model = InsectCNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(20):
        model.train()
        perm = torch.randperm(len(y_train), generator=order)
        for i in range(0, len(perm), 16):
            idx = perm[i:i + 16]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    assert accuracy > 0.8
