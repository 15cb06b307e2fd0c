"""The library's versions of notebook 02's newer exercises (merged by tests/test_exercise_solutions.py).

``LIBRARY_VERSIONS``: the course_lib function, called with the exercise's signature.
``NO_LIBRARY_VERSION``: exercises with no library function of that signature, and why.
"""

import torch

from course_lib.attention import padding_mask
from course_lib.transformer import EncoderLayer, sinusoidal_positional_encoding


def layer_norm_by_the_layers_norm(x, gamma, beta, eps=1e-5):
    """layer_norm(x, gamma, beta, eps) with the Norm of course_lib's Add & Norm: an EncoderLayer's norm1.

    norm1 (like every norm of EncoderLayer and DecoderLayer) is an nn.LayerNorm over the last axis with the
    layer's layer_norm_eps; here it gets the exercise's gamma and beta.
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # the layer's random init must not move the global stream
        norm = EncoderLayer(x.shape[-1], 1, 1, dropout=0.0, layer_norm_eps=eps).norm1.to(x.dtype)
        norm.weight.copy_(gamma)
        norm.bias.copy_(beta)
        return norm(x)


LIBRARY_VERSIONS = {
    "padding_mask": padding_mask,                                 # same signature: (token_ids, pad_id)
    "positional_encoding": sinusoidal_positional_encoding,        # same signature: (max_len, d_model)
    "layer_norm": layer_norm_by_the_layers_norm,
}

NO_LIBRARY_VERSION = {
    "add_and_norm": (
        "course_lib writes post-norm Add & Norm inline in EncoderLayer.forward and DecoderLayer.forward "
        "(x = norm1(x + dropout1(self_attn(...)))), with its own sub-layers and norms, not as a function of "
        "any sublayer and norm. tests/test_exercises_transformer_more.py checks the other way round: the "
        "solution, given an EncoderLayer's sub-layers and norms, reproduces its forward pass "
        "(and the pre-norm mistake reproduces norm_first=True)."
    ),
}
