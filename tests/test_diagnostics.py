"""The measurements behind notebook 02: softmax saturation, Add & Norm stacks, layer gradients."""

import math

import pytest
import torch

from course_lib import diagnostics

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_score_spread_follows_sqrt_dk():
    for d_k in (4, 256):
        raw = diagnostics.softmax_saturation(d_k, scaled=False)
        scaled = diagnostics.softmax_saturation(d_k, scaled=True)
        assert raw["score_std"] == pytest.approx(math.sqrt(d_k), rel=0.1)
        assert scaled["score_std"] == pytest.approx(1.0, rel=0.1)
        for result in (raw, scaled):
            assert 0 <= result["entropy"] <= math.log(16) + 1e-9
            assert result["example_weights"].shape == (16,)
            assert result["example_weights"].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_unscaled_softmax_saturates_as_dk_grows():
    entropies = [diagnostics.softmax_saturation(d, scaled=False)["entropy"] for d in (1, 16, 256)]
    grads = [diagnostics.softmax_saturation(d, scaled=False)["grad_norm"] for d in (16, 256, 1024)]
    assert entropies[0] > entropies[1] > entropies[2]
    assert grads[0] > grads[1] > grads[2]


def test_grad_norm_is_the_softmax_jacobian_norm():
    """With one query, grad_norm equals the Frobenius norm of autograd's Jacobian of the softmax."""
    d_k, n = 8, 5
    result = diagnostics.softmax_saturation(d_k, scaled=True, n_keys=n, num_queries=1, seed=3)
    g = torch.Generator().manual_seed(3)  # the same draws, in the same order, as the function
    q = torch.randn(1, 1, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(1, n, d_k, generator=g, dtype=torch.float64)
    scores = (q @ k.transpose(-2, -1)).reshape(n) / math.sqrt(d_k)
    jacobian = torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1), scores)
    assert result["grad_norm"] == pytest.approx(jacobian.norm().item(), rel=1e-9)
    assert torch.allclose(result["example_weights"].double(), torch.softmax(scores, -1), atol=1e-6)


def test_softmax_saturation_rejects_bad_sizes():
    with pytest.raises(ValueError, match="d_k must be a positive int"):
        diagnostics.softmax_saturation(0)
    with pytest.raises(ValueError, match="n_keys"):
        diagnostics.softmax_saturation(4, n_keys=2.5)


def _stats(residual, norm, **kw):
    return diagnostics.stack_statistics(12, residual=residual, norm=norm, d_model=32, d_ff=64, seq_len=8,
                                        batch=4, **kw)


def test_stack_statistics_shapes_and_determinism():
    a, b = _stats(True, True), _stats(True, True)
    assert a == b
    assert all(len(v) == 13 for v in a.values())
    assert a != _stats(True, True, seed=1)


def test_add_and_norm_keep_signal_and_gradient_where_plain_loses_them():
    plain, add_norm = _stats(False, False), _stats(True, True)
    assert plain["grad_norm"][0] < 1e-6 * plain["grad_norm"][-1]       # the gradient dies on the way down
    assert plain["token_diversity"][-1] < 0.01                         # every position the same vector
    assert all(abs(s - 1) < 0.05 for s in add_norm["activation_std"][1:])
    assert min(add_norm["grad_norm"]) > 0.1 * max(add_norm["grad_norm"])
    assert add_norm["token_diversity"][-1] > 0.3
    assert _stats(True, False)["activation_std"][-1] > 1.3             # Add only: activations grow


def test_variance_preserving_init_keeps_each_linear_at_unit_variance():
    # the init itself: weights N(0, 1/fan_in) (2/fan_in before the ReLU), biases 0
    default, kept = _stats(False, False), _stats(False, False, init="variance_preserving")
    assert kept != default and kept == _stats(False, False, init="variance_preserving")
    # torch's default shrinks the plain stack's signal at once; the variance-preserving one much less
    assert default["activation_std"][1] < 0.1 < 0.25 < kept["activation_std"][1]
    # ... and the gradient reaches the input instead of vanishing
    assert default["grad_norm"][0] < 1e-6 * default["grad_norm"][-1]
    assert kept["grad_norm"][0] > 1e-3 * kept["grad_norm"][-1]
    # what the init does not change: repeated averaging makes every position the same vector
    assert kept["token_diversity"][-1] < 0.01


def test_stack_statistics_refuses_an_unknown_init():
    with pytest.raises(ValueError, match="init must be one of"):
        _stats(True, True, init="xavier")
    with pytest.raises(ValueError, match="init"):
        _stats(True, True, init=None)


def test_layer_gradient_norms_post_norm_grows_towards_the_output():
    post = diagnostics.layer_gradient_norms(12, norm_first=False)
    pre = diagnostics.layer_gradient_norms(12, norm_first=True)
    assert len(post) == len(pre) == 12 and min(post + pre) > 0
    assert post == diagnostics.layer_gradient_norms(12, norm_first=False)
    assert post[-1] / post[0] > pre[-1] / pre[0]
    with pytest.raises(ValueError, match="num_layers"):
        diagnostics.layer_gradient_norms(0, norm_first=True)
