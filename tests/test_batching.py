"""Tests of course_lib.batching: padding, endless shuffled epochs, moving nested batches to a device."""

from collections import namedtuple

import pytest
import torch

from course_lib.batching import IGNORE_INDEX, epoch_batches, pad_sequences, to_device


def test_pad_sequences_right_pads_lists_tuples_and_tensors():
    out = pad_sequences([[1, 2, 3], (4,), torch.tensor([5, 6])], pad_value=IGNORE_INDEX)
    assert out.dtype == torch.long
    assert out.tolist() == [[1, 2, 3], [4, -100, -100], [5, 6, -100]]
    assert pad_sequences([[1]], 0, length=3).tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError, match="shorter than the longest"):
        pad_sequences([[1, 2, 3]], 0, length=2)
    with pytest.raises(ValueError, match="at least one"):
        pad_sequences([], 0)


def test_epoch_batches_covers_every_item_once_per_epoch_and_drops_the_rest():
    items = list(range(10))
    batches = epoch_batches(items, 3, list, seed=1)
    epoch = [next(batches) for _ in range(3)]  # 10 // 3 full batches per epoch
    assert all(len(b) == 3 for b in epoch)
    assert len(set(sum(epoch, []))) == 9  # no item twice within an epoch
    second = [next(batches) for _ in range(3)]
    assert second != epoch  # reshuffled


def test_epoch_batches_depends_only_on_its_seed():
    def take(seed):
        it = epoch_batches(list("abcdefg"), 2, "".join, seed=seed)
        return [next(it) for _ in range(9)]

    torch.manual_seed(0)
    first = take(4)
    torch.manual_seed(1)
    assert take(4) == first and take(5) != first


@pytest.mark.parametrize("batch_size", [0, 11])
def test_epoch_batches_rejects_batch_sizes_out_of_range(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 10\]"):
        next(epoch_batches(list(range(10)), batch_size, list))


def test_to_device_moves_nested_tensors_and_keeps_containers_and_other_values():
    Pair = namedtuple("Pair", "x y")
    batch = {"a": [torch.ones(1), ("text", 3)], "b": Pair(torch.zeros(2), None)}
    moved = to_device(batch, torch.device("meta"))
    assert moved["a"][0].device.type == "meta" and moved["a"][1] == ("text", 3)
    assert type(moved["a"]) is list and type(moved["b"]) is Pair
    assert moved["b"].x.device.type == "meta" and moved["b"].y is None
    assert batch["a"][0].device.type == "cpu"  # the original is untouched
