"""Measurements behind notebook 02's explanations: why sqrt(d_k), why Add & Norm, which norm.

Each function builds what it measures from the library's own parts, runs it with a fixed seed,
and returns plain numbers, so a notebook (or a widget) can show them and a test can check them.

Shapes: B batch, T sequence length, d model width, n keys.

Every size must be a positive int, every switch True or False and ``seed`` an int that torch
accepts as a seed; anything else raises a ``TypeError`` or ``ValueError`` naming the argument
before any work is done.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _checks
from .attention import MultiHeadAttention
from .encoder_decoder import Encoder
from .transformer import FeedForward

__all__ = [
    "softmax_saturation",
    "STACK_VARIANTS",
    "STACK_INITS",
    "stack_statistics",
    "layer_gradient_norms",
]


def _check_seed(seed) -> None:
    """``seed`` must be an int that torch.manual_seed accepts."""
    _checks.check_int("seed", seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"seed must be an int in [-2**63, 2**64), got {seed}")


@torch.no_grad()
def softmax_saturation(d_k: int, *, scaled: bool = True, n_keys: int = 16, num_queries: int = 512,
                       seed: int = 0) -> dict:
    """How peaked softmax(q·k / sqrt(d_k)) is when q and k have d_k random N(0, 1) entries.

    A dot product of two such vectors has variance d_k, so unscaled scores spread wider as d_k
    grows and the softmax tends to a one-hot vector, whose gradient is zero. Dividing by
    sqrt(d_k) brings the variance back to 1 for every d_k.

    Args:
        d_k: width of queries and keys.
        scaled: divide the scores by sqrt(d_k) (the Transformer) or not (plain dot product).
        n_keys: keys per query (n); num_queries: how many random queries to average over.

    Returns a dict of floats, averaged over the queries:
        score_std: standard deviation of the scores;
        entropy: of the attention weights, in nats (log n for uniform weights, 0 for one-hot);
        max_weight: the largest weight;
        grad_norm: Frobenius norm of the softmax Jacobian d a / d s = diag(a) - a a^T, i.e. how much
            the weights still respond when the scores move (0 once the softmax is saturated);
    and example_weights: the weights of the first query, a tensor (n_keys,).
    """
    for name, value in (("d_k", d_k), ("n_keys", n_keys), ("num_queries", num_queries)):
        _checks.check_positive_int(name, value)
    _checks.check_bool("scaled", scaled)
    _check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(num_queries, 1, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(num_queries, n_keys, d_k, generator=g, dtype=torch.float64)
    scores = (q @ k.transpose(-2, -1)).squeeze(1)  # (num_queries, n)
    if scaled:
        scores = scores / math.sqrt(d_k)
    a = torch.softmax(scores, dim=-1)  # (num_queries, n)
    entropy = -(a * torch.log(a.clamp_min(1e-300))).sum(-1)
    jacobian = torch.diag_embed(a) - a[:, :, None] * a[:, None, :]  # (num_queries, n, n)
    return {
        "score_std": float(scores.std()),
        "entropy": float(entropy.mean()),
        "max_weight": float(a.max(-1).values.mean()),
        "grad_norm": float(torch.linalg.matrix_norm(jacobian).mean()),
        "example_weights": a[0].float(),
    }


# (residual, norm) for each way of wrapping a sub-layer f: the notes' "Add & Norm" is the last
STACK_VARIANTS = {
    "plain: x = f(x)": (False, False),
    "Add only: x = x + f(x)": (True, False),
    "Norm only: x = LN(f(x))": (False, True),
    "Add & Norm: x = LN(x + f(x))": (True, True),
}


# How stack_statistics initialises the Linear layers
STACK_INITS = ("pytorch", "variance_preserving")


def stack_statistics(depth: int = 24, *, residual: bool, norm: bool, d_model: int = 64, num_heads: int = 4,
                     d_ff: int = 256, seq_len: int = 16, batch: int = 8, seed: int = 0,
                     init: str = "pytorch") -> dict:
    """Push random inputs through ``depth`` freshly initialised encoder layers and measure them.

    Each layer has the two sub-layers of the notes' encoder, self-attention and the feed-forward
    network (course_lib's own :class:`MultiHeadAttention` and :class:`FeedForward`, PyTorch's
    default initialisation unless ``init`` says otherwise, no dropout), each wrapped as
    ``STACK_VARIANTS`` describes:
    ``y = f(x)``, then ``y = x + y`` if ``residual``, then ``y = LayerNorm(y)`` if ``norm``.

    ``init`` chooses the Linear layers' starting weights:

    - ``"pytorch"``: torch's default, uniform with variance 1 / (3 fan_in). Each Linear divides
      the variance of its input by about 3 (the ReLU halves it once more), so a plain stack
      shrinks partly because of this choice, not only because of what attention does.
    - ``"variance_preserving"``: N(0, 1 / fan_in), and N(0, 2 / fan_in) for the Linear before
      the ReLU (He et al. 2015), biases 0: each Linear keeps the variance of its input, so
      what still shrinks or collapses is inherent to the architecture (attention averaging
      positions), not to the initialisation.

    Returns a dict of lists, index 0 the input and index l the output of layer l (depth + 1 each):
        activation_std: standard deviation of the activations;
        token_diversity: how different the positions are from one another, the standard deviation
            across positions relative to the overall one (about 1 for the random input; 0 when every
            position holds the same vector, the "rank collapse" of repeated averaging);
        grad_norm: norm of the gradient of a fixed random loss with respect to the activations,
            i.e. how much learning signal reaches that depth.
    """
    for name, value in (("depth", depth), ("d_model", d_model), ("num_heads", num_heads), ("d_ff", d_ff),
                        ("seq_len", seq_len), ("batch", batch)):
        _checks.check_positive_int(name, value)
    _checks.check_bool("residual", residual)
    _checks.check_bool("norm", norm)
    _check_seed(seed)
    if not isinstance(init, str) or init not in STACK_INITS:
        raise ValueError(f"init must be one of {STACK_INITS}, got {init!r}")
    torch.manual_seed(seed)
    sublayers = nn.ModuleList()
    for _ in range(depth):
        sublayers.append(MultiHeadAttention(d_model, num_heads))
        sublayers.append(FeedForward(d_model, d_ff))
    if init == "variance_preserving":
        with torch.no_grad():
            for module in sublayers.modules():
                if isinstance(module, nn.Linear):
                    if module.bias is not None:
                        module.bias.zero_()
                    module.weight.normal_(0.0, 1.0 / math.sqrt(module.in_features))
            for ffn in sublayers[1::2]:  # the Linear before the ReLU: twice the variance (He init)
                ffn.linear1.weight.mul_(math.sqrt(2.0))
    norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(2 * depth))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq_len, d_model, generator=g)
    probe = torch.randn(batch, seq_len, d_model, generator=g)  # loss = <probe, output>: a fixed random direction

    def wrap(x, f, ln):
        y = f(x, x, x)[0] if isinstance(f, MultiHeadAttention) else f(x)
        if residual:
            y = x + y
        return ln(y) if norm else y

    x.requires_grad_(True)
    states = [x]
    for layer in range(depth):
        h = wrap(states[-1], sublayers[2 * layer], norms[2 * layer])
        h = wrap(h, sublayers[2 * layer + 1], norms[2 * layer + 1])
        h.retain_grad()
        states.append(h)
    loss = (states[-1] * probe).sum() / math.sqrt(probe.numel())
    loss.backward()
    return {
        "activation_std": [float(s.detach().std()) for s in states],
        "token_diversity": [float(s.detach().std(dim=1).mean() / s.detach().std()) for s in states],
        "grad_norm": [float(s.grad.norm()) for s in states],
    }


def layer_gradient_norms(num_layers: int = 12, *, norm_first: bool, d_model: int = 64, num_heads: int = 4,
                         d_ff: int = 256, vocab_size: int = 64, seq_len: int = 16, batch: int = 16,
                         seed: int = 0) -> list[float]:
    """Gradient norm of each layer's parameters in a freshly initialised encoder, at step 0.

    A stack of ``num_layers`` :class:`~course_lib.transformer.EncoderLayer` s (post-norm or
    pre-norm, no dropout) reads random token ids and is trained to predict random targets with
    cross-entropy through a linear read-out. Returns one norm per layer, first layer first: how
    large a step each layer would take at the very start of training.
    """
    for name, value in (("num_layers", num_layers), ("d_model", d_model), ("num_heads", num_heads), ("d_ff", d_ff),
                        ("vocab_size", vocab_size), ("seq_len", seq_len), ("batch", batch)):
        _checks.check_positive_int(name, value)
    _checks.check_bool("norm_first", norm_first)
    _check_seed(seed)
    torch.manual_seed(seed)
    encoder = Encoder(vocab_size, d_model, num_heads, d_ff, num_layers, max_len=seq_len, dropout=0.0,
                      norm_first=norm_first)
    readout = nn.Linear(d_model, vocab_size)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (batch, seq_len), generator=g)
    targets = torch.randint(0, vocab_size, (batch, seq_len), generator=g)
    logits = readout(encoder(ids))  # (B, T, V)
    nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    return [float(torch.sqrt(sum((p.grad ** 2).sum() for p in layer.parameters())))
            for layer in encoder.layers]
