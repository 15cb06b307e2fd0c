"""notes_multi_head: the notes' multi-head formulas read literally (m queries over one K, V, joined)."""

import math

import pytest
import torch

from course_lib.attention import DotScore, MultiHeadAttention, notes_multi_head

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_matches_the_formulas_written_out_query_by_query():
    g = torch.Generator().manual_seed(0)
    Q, K, V = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(5, 2, generator=g)
    context, a = notes_multi_head(Q, K, V, score=DotScore())
    pieces = []
    for i in range(3):  # context_i = sum_j a_ij v_j with a_ij = softmax_j(k_j . q_i)
        a_i = torch.softmax(torch.stack([K[j] @ Q[i] for j in range(5)]), dim=0)
        assert torch.allclose(a[i], a_i, atol=1e-6)
        pieces.append(sum(a_i[j] * V[j] for j in range(5)))
    assert context.shape == (6,)
    assert torch.allclose(context, torch.cat(pieces), atol=1e-6)  # context_1 ⊕ context_2 ⊕ context_3


def test_order_of_the_queries_is_the_order_of_the_join():
    g = torch.Generator().manual_seed(1)
    Q, K = torch.randn(2, 3, 4, generator=g), torch.randn(2, 6, 4, generator=g)
    context, _ = notes_multi_head(Q, K)
    swapped, _ = notes_multi_head(Q.flip(-2), K)
    assert context.shape == (2, 12)
    assert torch.allclose(context[:, :4], swapped[:, 8:]) and not torch.allclose(context, swapped)


def test_default_score_is_scaled_dot_and_mask_hides_keys():
    g = torch.Generator().manual_seed(2)
    Q, K, V = torch.randn(2, 4, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 5, generator=g)
    mask = torch.tensor([True, True, False])
    context, a = notes_multi_head(Q, K, V, mask=mask)
    expected_a = torch.softmax(Q @ K[:2].T / math.sqrt(4), dim=-1)
    assert torch.allclose(a[:, :2], expected_a, atol=1e-6) and (a[:, 2] == 0).all()
    assert torch.allclose(context.view(2, 5), expected_a @ V[:2], atol=1e-6)


def test_with_block_queries_and_a_block_output_matrix_it_is_multi_head_attention():
    """One query per head, placed in that head's dimensions, over K = XW_k and V = XW_v: the joined
    contexts, multiplied by W_o laid out block-diagonally, give MultiHeadAttention's output."""
    torch.manual_seed(0)
    d, h, T = 8, 2, 5
    mha = MultiHeadAttention(d, h)
    x = torch.randn(1, T, d)
    with torch.no_grad():
        out, weights = mha(x, x, x)
        d_head = d // h
        K, V, Qfull = mha.w_k(x)[0], mha.w_v(x)[0], mha.w_q(x)[0]
        W_o_blocks = torch.zeros(h * d, d)  # rows: context_1 (d numbers) ⊕ ... ⊕ context_h
        for m in range(h):
            rows = slice(m * d_head, (m + 1) * d_head)
            W_o_blocks[m * d + m * d_head: m * d + (m + 1) * d_head] = mha.w_o.weight.T[rows]
        for t in range(T):
            queries = torch.zeros(h, d)
            for m in range(h):
                cols = slice(m * d_head, (m + 1) * d_head)
                queries[m, cols] = Qfull[t, cols] / math.sqrt(d_head)  # head m's query, its own dimensions
            context, a = notes_multi_head(queries, K, V, score=DotScore())
            assert torch.allclose(a, weights[0, :, t], atol=1e-6)
            assert torch.allclose(context @ W_o_blocks + mha.w_o.bias, out[0, t], atol=1e-5)
        # the same queries without the block layout (every head's query in all dimensions) differ
        context_full, _ = notes_multi_head(Qfull[:1].expand(h, d) / math.sqrt(d_head), K, V, score=DotScore())
        assert not torch.allclose(context_full @ W_o_blocks + mha.w_o.bias, out[0, 0], atol=1e-3)


@pytest.mark.parametrize("queries, keys, error, words", [
    (torch.randn(4), torch.randn(3, 4), ValueError, "queries"),                      # one query: use attend
    (torch.randn(0, 4), torch.randn(3, 4), ValueError, "m >= 1"),
    (torch.randn(2, 4), torch.randn(3, 5), ValueError, "same width"),                  # widths differ
    ([[1.0, 2.0]], torch.randn(3, 2), TypeError, "queries"),
    (torch.ones(2, 4, dtype=torch.long), torch.randn(3, 4), TypeError, "queries"),
])
def test_refuses_bad_input(queries, keys, error, words):
    with pytest.raises(error, match=words):
        notes_multi_head(queries, keys)
