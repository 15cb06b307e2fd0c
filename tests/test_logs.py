"""Tests of course_lib.logs: TensorBoard event files read back without a server."""

import pytest

from course_lib.logs import read_scalars


def test_read_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as writer:
        for step in range(5):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step)
    scalars = read_scalars(tmp_path)
    steps, values = scalars["loss/train"]
    assert steps == [0, 1, 2, 3, 4]
    assert values == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
    with pytest.raises(FileNotFoundError, match="no log folder"):
        read_scalars(tmp_path / "none")
