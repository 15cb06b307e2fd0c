"""The library's versions of notebook 01's newer exercises (merged by tests/test_exercise_solutions.py).

``LIBRARY_VERSIONS``: the course_lib function, called with the exercise's signature.
``NO_LIBRARY_VERSION``: exercises with no library function of that signature, and why.
"""

from types import SimpleNamespace

import torch

from course_lib.attention import DotScore, MultiHeadAttention, attend


def key_value_attention_by_attend(K, V, q):
    """key_value_attention(K, V, q) -> (a, context) with the library's attend(query, keys, values).

    attend takes the query first and returns (context, weights); DotScore is the exercise's plain
    dot-product score s(k_i, q) = k_i · q (attend's default divides by √d).
    """
    context, a = attend(q, K, V, score=DotScore())
    return a, context


def split_heads_by_multi_head_attention(x, num_heads):
    """split_heads(x, num_heads) with MultiHeadAttention's own head split.

    MultiHeadAttention._split_heads reads only self.num_heads and self.d_head, so it is called
    with just those two (building a whole layer would draw four random weight matrices for nothing).
    """
    layer = SimpleNamespace(num_heads=num_heads, d_head=x.shape[-1] // num_heads)
    return MultiHeadAttention._split_heads(layer, x)


def multi_head_self_attention_by_module(X, W_q, W_k, W_v, W_o, num_heads):
    """multi_head_self_attention with a bias-free MultiHeadAttention holding the exercise's matrices.

    nn.Linear computes x Wᵀ, so the notes' Q = X W_q is a Linear whose weight is W_qᵀ (and so on).
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # the layer's random init must not move the global stream
        layer = MultiHeadAttention(X.shape[-1], num_heads, bias=False).to(X.dtype)
        for linear, W in ((layer.w_q, W_q), (layer.w_k, W_k), (layer.w_v, W_v), (layer.w_o, W_o)):
            linear.weight.copy_(W.T)
        output, _ = layer(X, X, X)
    return output


LIBRARY_VERSIONS = {
    "key_value_attention": key_value_attention_by_attend,
    "split_heads": split_heads_by_multi_head_attention,
    "multi_head_self_attention": multi_head_self_attention_by_module,
}

NO_LIBRARY_VERSION = {}
