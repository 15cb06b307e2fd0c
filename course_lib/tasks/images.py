"""The ant-or-bee picture task of notebook 05: a small CNN and a helper that loads a split as tensors.

The pictures come from :func:`course_lib.data.images.make_insect_folder` (``root/train/ants``,
``root/train/bees``, ``root/val/...``); ants are label 0, bees label 1.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from ..data.images import KINDS, InsectFolder, to_chw_float

__all__ = ["InsectCNN", "load_split"]


class InsectCNN(nn.Module):
    """A small CNN: (B, 3, size, size) float pictures in [0, 1] -> (B, 2) logits (ant, bee).

    Two blocks of [3x3 convolution (padding 1: H and W kept), ReLU, 2x2 max-pool (H and W
    halved)], 3 -> ``channels`` -> 2 * ``channels`` feature maps, then flatten, dropout and one
    Linear layer to the 2 logits:

        (B, 3, 32, 32) -> (B, 8, 16, 16) -> (B, 16, 8, 8) -> (B, 1024) -> (B, 2)

    size: the pictures' side in pixels, a multiple of 4 (the Linear layer's input size depends
    on it: 2 * channels * (size / 4) ** 2).
    """

    def __init__(self, size: int = 32, channels: int = 8, dropout: float = 0.1):
        super().__init__()
        _checks.check_positive_int("size", size)
        if size % 4:
            raise ValueError(f"size must be a multiple of 4 (two 2x2 poolings), got {size}")
        _checks.check_positive_int("channels", channels)
        _checks.check_probability("dropout", dropout)
        self.size = size
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * channels * (size // 4) ** 2, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, size, size) float -> logits (B, 2)."""
        want = (3, self.size, self.size)
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != want:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a (B, {', '.join(map(str, want))}) tensor (channels first: see "
                             f"to_chw_float), got {shape}")
        if not images.is_floating_point():
            raise TypeError(f"images must be a float tensor with values in [0, 1], got dtype {images.dtype}: "
                            "convert with to_chw_float (uint8 / 255)")
        maps = self.features(images)                           # (B, 2c, size/4, size/4)
        return self.head(self.dropout(maps.flatten(1)))        # (B, 2)


def load_split(root, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All pictures of ``root/split`` as tensors: (images (N, 3, H, W) float32 in [0, 1], labels (N,) long).

    Ants first (label 0), then bees (label 1), each in file-name order, read through
    :class:`InsectFolder` with :func:`to_chw_float`. For quick evaluation of a small split;
    training reads batches through a DataLoader instead.
    """
    root = _checks.check_path("root", root)
    if not isinstance(split, str) or split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    ants = InsectFolder(root / split, KINDS[0], label=0, transform=to_chw_float)
    bees = InsectFolder(root / split, KINDS[1], label=1, transform=to_chw_float)
    dataset = ants + bees  # a ConcatDataset: the ants, then the bees
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1:
        raise ValueError(f"the pictures of {root / split} differ in size ({sorted(shapes)}): they cannot be stacked")
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)
