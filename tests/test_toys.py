import torch

from course_lib import toys


def test_neighbour_targets():
    tokens, targets = toys.neighbour_batch(4, 6, 10, torch.Generator().manual_seed(0))
    assert targets.shape == (4, 6, 2)
    assert torch.equal(targets[:, 2, 0], tokens[:, 1]) and torch.equal(targets[:, 2, 1], tokens[:, 3])
    assert torch.equal(targets[:, 0, 0], tokens[:, -1])  # wraps around


def test_head_offsets_reads_the_pattern():
    T = 6
    w = torch.zeros(1, 2, T, T)
    for i in range(T):
        w[0, 0, i, (i - 1) % T] = 1.0
        w[0, 1, i, (i + 2) % T] = 1.0
    assert toys.head_offsets(w) == [(-1, 1.0), (2, 1.0)]


def test_model_shapes():
    model = toys.NeighbourModel(10, 6, d_model=8, num_heads=2)
    logits, w = model(torch.zeros(3, 6, dtype=torch.long))
    assert logits.shape == (3, 6, 2, 10) and w.shape == (3, 2, 6, 6)
