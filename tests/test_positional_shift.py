"""positional_shift_matrix: the explicit rotation M_k with PE[p + k] = PE[p] M_k (notebook 02, section 3)."""

import pytest
import torch

from course_lib.transformer import positional_shift_matrix, sinusoidal_positional_encoding


def _table(max_len, d):
    return sinusoidal_positional_encoding(max_len, d).double()


@pytest.mark.parametrize("d", [2, 8, 64])
@pytest.mark.parametrize("k", [1, 5, 37, 250])
def test_shifts_every_position_of_the_table_far_beyond_its_width(d, k):
    table = _table(400 + k, d)  # 400 positions: many more than d, so one matrix for all p is a real claim
    error = (table[:-k] @ positional_shift_matrix(k, d) - table[k:]).abs().max()
    assert error < 1e-5  # the table is float32


def test_is_block_diagonal_with_one_rotation_per_pair():
    d, k = 8, 3
    m = positional_shift_matrix(k, d)
    for i in range(d // 2):
        w = 1 / 10000 ** (2 * i / d)
        c, s = torch.cos(torch.tensor(k * w, dtype=torch.float64)), torch.sin(torch.tensor(k * w, dtype=torch.float64))
        block = m[2 * i:2 * i + 2, 2 * i:2 * i + 2]
        assert torch.allclose(block, torch.stack([torch.stack([c, -s]), torch.stack([s, c])]))
        outside = m[2 * i:2 * i + 2].clone()
        outside[:, 2 * i:2 * i + 2] = 0
        assert outside.abs().max() == 0  # nothing outside the pair's own block


def test_rotations_compose_and_invert():
    d = 16
    assert torch.allclose(positional_shift_matrix(0, d), torch.eye(d, dtype=torch.float64))
    assert torch.allclose(positional_shift_matrix(3, d) @ positional_shift_matrix(4, d), positional_shift_matrix(7, d))
    assert torch.allclose(positional_shift_matrix(-5, d), positional_shift_matrix(5, d).T)
    assert torch.allclose(positional_shift_matrix(5, d) @ positional_shift_matrix(5, d).T, torch.eye(d, dtype=torch.float64))


def test_a_random_table_is_not_shifted_by_it():
    g = torch.Generator().manual_seed(0)
    k, d = 5, 64
    table = torch.randn(200, d, generator=g, dtype=torch.float64)
    error = (table[:-k] @ positional_shift_matrix(k, d) - table[k:]).abs().max()
    assert error > 1.0


def test_shifted_by_the_wrong_offset_does_not_match():
    table = _table(100, 32)
    assert (table[:-5] @ positional_shift_matrix(4, 32) - table[5:]).abs().max() > 1e-2


@pytest.mark.parametrize("k, d, error, match", [
    (1.5, 8, TypeError, "k"), (True, 8, TypeError, "k"), (1, 7, ValueError, "even"),
    (1, 0, ValueError, "d_model"), (1, 8.0, ValueError, "d_model"),
])
def test_refuses_bad_input(k, d, error, match):
    with pytest.raises(error, match=match):
        positional_shift_matrix(k, d)
