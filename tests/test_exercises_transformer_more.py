"""Tests for notebook 02's newer exercises: layer_norm, add_and_norm, positional_encoding, padding_mask.

Every classic mistake the checkers claim to catch is written out as a learner would write it and
must be rejected with its own diagnosis; right answers written in other ways must pass; the
starters are "not attempted yet"; a learner's bug gives a verdict, never a crash.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.exercises import get_exercise
from course_lib.transformer import EncoderLayer
from exercise_helpers import assert_named_mistake, run_check as run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LN, AN, PE, PAD = "layer_norm", "add_and_norm", "positional_encoding", "padding_mask"


# ---------------------------------------------------------------------------
# layer_norm
# ---------------------------------------------------------------------------


def ln_right(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def ln_functional(x, gamma, beta, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def ln_module(x, gamma, beta, eps=1e-5):
    norm = torch.nn.LayerNorm(x.shape[-1], eps=eps)
    with torch.no_grad():
        norm.weight.copy_(gamma)
        norm.bias.copy_(beta)
    return norm(x)


def ln_batchnorm(x, gamma, beta, eps=1e-5):
    mu = x.mean(0, keepdim=True)
    var = x.var(0, unbiased=False, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def ln_batchnorm_all_positions(x, gamma, beta, eps=1e-5):
    flat = x.reshape(-1, x.shape[-1])
    mu, var = flat.mean(0), flat.var(0, unbiased=False)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def ln_unbiased(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(x.var(-1, keepdim=True) + eps) + beta


def ln_unbiased_std(x, gamma, beta, eps=1e-5):
    mu, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(std ** 2 + eps) + beta


def ln_eps_outside(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    std = x.var(-1, unbiased=False, keepdim=True).sqrt()
    return gamma * (x - mu) / (std + eps) + beta


def ln_no_eps(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    return gamma * (x - mu) / x.var(-1, unbiased=False, keepdim=True).sqrt() + beta


def ln_fixed_eps(x, gamma, beta, eps=1e-5):
    return ln_right(x, gamma, beta, 1e-5)


def ln_no_affine(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)


def ln_no_beta(x, gamma, beta, eps=1e-5):
    return ln_no_affine(x, gamma, beta, eps) * gamma


def ln_no_gamma(x, gamma, beta, eps=1e-5):
    return ln_no_affine(x, gamma, beta, eps) + beta


def ln_functional_without_weights(x, gamma, beta, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def ln_in_place(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    x -= mu
    return gamma * x / torch.sqrt(var + eps) + beta


@pytest.mark.parametrize("fn", [ln_right, ln_functional, ln_module, get_exercise(LN).load_solution()],
                         ids=["by_hand", "functional", "module", "solution"])
def test_layer_norm_right_answers_pass(fn, capsys):
    ok, out = run(LN, fn, capsys)
    assert ok, out


@pytest.mark.parametrize("fn, phrase", [
    (ln_batchnorm, "BatchNorm"),
    (ln_batchnorm_all_positions, "BatchNorm"),
    (ln_unbiased, "unbiased"),
    (ln_unbiased_std, "unbiased"),
    (ln_eps_outside, "eps is added outside the square root"),
    (ln_no_eps, "eps is missing"),
    (ln_fixed_eps, "eps argument is ignored"),
    (ln_no_affine, "gamma and beta are not applied"),
    (ln_no_beta, "gamma and beta are not applied"),
    (ln_no_gamma, "gamma and beta are not applied"),
    (ln_functional_without_weights, "gamma and beta are not applied"),
], ids=lambda x: getattr(x, "__name__", x))
def test_layer_norm_classic_mistakes(fn, phrase, capsys):
    assert_named_mistake(LN, fn, phrase, capsys)


def test_layer_norm_in_place_change_is_named(capsys):
    out = assert_named_mistake(LN, ln_in_place, "changes its input x in place", capsys)
    assert ".clone()" in out


def test_layer_norm_cases_pin_down_eps_and_the_axes():
    cases = get_exercise(LN).checker.cases()
    x, _, _, eps = cases[0].args
    assert x.dim() == 3 and x.shape[0] != x.shape[1]               # batch axis != position axis
    variances = [c.args[0].var(-1, unbiased=False) for c in cases]
    epses = {c.args[3] for c in cases}
    assert any((v < c.args[3]).any() for v, c in zip(variances, cases))     # a row with variance below eps
    assert any((v == 0).any() for v in variances)                           # and a constant row
    assert len(epses) >= 2                                                  # eps is passed, not only the default
    assert any(c.args[0].shape[-1] <= 4 for c in cases)                     # small d: d vs d - 1 is visible
    assert any(c.args[0].dim() == 4 for c in cases)                         # any number of leading axes
    assert all(c.args[0].dtype == torch.float32 for c in cases)


def test_layer_norm_library_norm_is_torch_layer_norm(capsys):
    from exercise_versions_02 import layer_norm_by_the_layers_norm

    ok, out = run(LN, layer_norm_by_the_layers_norm, capsys)
    assert ok, out


# ---------------------------------------------------------------------------
# add_and_norm
# ---------------------------------------------------------------------------


def an_right(x, sublayer, norm):
    y = sublayer(x)
    return norm(y + x)


def an_pre_norm(x, sublayer, norm):
    return x + sublayer(norm(x))


def an_no_residual(x, sublayer, norm):
    return norm(sublayer(x))


def an_norm_then_add(x, sublayer, norm):
    return norm(sublayer(x)) + x


def an_add_to_norm(x, sublayer, norm):
    return x + norm(sublayer(x))


def an_no_norm(x, sublayer, norm):
    return x + sublayer(x)


def an_own_layer_norm(x, sublayer, norm):
    y = x + sublayer(x)
    return torch.nn.LayerNorm(y.shape[-1])(y)


def an_functional_layer_norm(x, sublayer, norm):
    y = x + sublayer(x)
    return F.layer_norm(y, y.shape[-1:])


def an_in_place(x, sublayer, norm):
    x += sublayer(x.clone())
    return norm(x)


@pytest.mark.parametrize("fn", [an_right, get_exercise(AN).load_solution()], ids=["right", "solution"])
def test_add_and_norm_right_answers_pass(fn, capsys):
    ok, out = run(AN, fn, capsys)
    assert ok, out


@pytest.mark.parametrize("fn, phrase", [
    (an_pre_norm, "pre-norm"),
    (an_no_residual, "residual connection is missing"),
    (an_norm_then_add, "x is added after the norm"),
    (an_add_to_norm, "x is added after the norm"),
    (an_no_norm, "the norm is missing"),
    (an_own_layer_norm, "the norm you were given is not used"),
    (an_functional_layer_norm, "the norm you were given is not used"),
], ids=lambda x: getattr(x, "__name__", x))
def test_add_and_norm_classic_mistakes(fn, phrase, capsys):
    assert_named_mistake(AN, fn, phrase, capsys)


def test_add_and_norm_in_place_change_is_named(capsys):
    assert_named_mistake(AN, an_in_place, "changes its input x in place", capsys)


def test_add_and_norm_learner_calling_the_callables_wrongly_gets_a_verdict(capsys):
    ok, out = run(AN, lambda x, sublayer, norm: norm(x, sublayer), capsys)
    assert ok is False and out.startswith(f"❌ {AN}: your function raised TypeError")


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_add_and_norm_reproduces_the_encoder_layer(norm_first):
    """The solution (post-norm), or the pre-norm mistake, built from an EncoderLayer's own parts is that layer."""
    torch.manual_seed(0)
    layer = EncoderLayer(d_model=8, num_heads=2, d_ff=16, dropout=0.0, norm_first=norm_first).eval()
    x = torch.randn(2, 5, 8) * 2 + 1
    solution = get_exercise(AN).load_solution()
    step = (lambda x, sub, norm: x + sub(norm(x))) if norm_first else solution

    def attention(t):
        return layer.self_attn(t, t, t)[0]

    with torch.no_grad():
        by_exercise = step(step(x, attention, layer.norm1), layer.ffn, layer.norm2)
        assert torch.allclose(by_exercise, layer(x), atol=1e-6)
        if not norm_first:  # and the pre-norm arrangement is NOT the notes' layer
            pre = an_pre_norm(an_pre_norm(x, attention, layer.norm1), layer.ffn, layer.norm2)
            assert not torch.allclose(pre, layer(x), atol=1e-2)


# ---------------------------------------------------------------------------
# positional_encoding
# ---------------------------------------------------------------------------


def pe_float32_exp_log(max_len, d_model):
    """The Annotated Transformer's float32 table: a right answer within the checker's tolerance."""
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len).unsqueeze(1).float()
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def pe_loops(max_len, d_model):
    pe = torch.zeros(max_len, d_model)
    for p in range(max_len):
        for i in range(d_model // 2):
            pe[p, 2 * i] = math.sin(p / 10000 ** (2 * i / d_model))
            pe[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / d_model))
    return pe


def pe_general(max_len, d_model, *, base=10000, swap=False, exponent="pair", start=0):
    pe = torch.zeros(max_len, d_model)
    for p in range(max_len):
        for j in range(d_model):
            k = {"pair": j - j % 2, "column": j, "2 * column": 2 * j}[exponent]
            angle = (p + start) / base ** (k / d_model)
            sine = (j % 2 == 0) != swap
            pe[p, j] = math.sin(angle) if sine else math.cos(angle)
    return pe


def pe_swapped(max_len, d_model):
    return pe_general(max_len, d_model, swap=True)


def pe_column_exponent(max_len, d_model):
    return pe_general(max_len, d_model, exponent="column")


def pe_twice_column_exponent(max_len, d_model):
    return pe_general(max_len, d_model, exponent="2 * column")


def pe_two_i_doubled(max_len, d_model):
    position = torch.arange(max_len).unsqueeze(1)
    i = torch.arange(0, d_model, 2)                      # already 2i ...
    angle = position / 10000 ** (2 * i / d_model)        # ... and doubled again
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return pe


def pe_base_1000(max_len, d_model):
    return pe_general(max_len, d_model, base=1000)


def pe_base_500(max_len, d_model):
    return pe_general(max_len, d_model, base=500)


def pe_base_1e6(max_len, d_model):
    return pe_general(max_len, d_model, base=1e6)


def pe_from_one(max_len, d_model):
    return pe_general(max_len, d_model, start=1)


def pe_transposed(max_len, d_model):
    return pe_float32_exp_log(max_len, d_model).T


def pe_batched(max_len, d_model):
    return pe_float32_exp_log(max_len, d_model).unsqueeze(0)


@pytest.mark.parametrize("fn", [pe_float32_exp_log, pe_loops, get_exercise(PE).load_solution()],
                         ids=["float32_exp_log", "loops", "solution"])
def test_positional_encoding_right_answers_pass(fn, capsys):
    ok, out = run(PE, fn, capsys)
    assert ok, out


@pytest.mark.parametrize("fn, phrase", [
    (pe_swapped, "sin and cos are swapped"),
    (pe_column_exponent, "the exponent uses the column index"),
    (pe_twice_column_exponent, "the exponent uses the column index"),
    (pe_two_i_doubled, "the exponent uses the column index"),
    (pe_base_1000, "a base other than 10000"),
    (pe_base_500, "a base other than 10000"),
    (pe_base_1e6, "a base other than 10000"),
    (pe_from_one, "the positions start at 1"),
    (pe_transposed, "transposed"),
    (pe_batched, "extra batch axis"),
], ids=lambda x: getattr(x, "__name__", x))
def test_positional_encoding_classic_mistakes(fn, phrase, capsys):
    assert_named_mistake(PE, fn, phrase, capsys)


@pytest.mark.parametrize("fn, base", [(pe_base_500, "500"), (pe_base_1000, "1000"), (pe_base_1e6, "1e+06")],
                         ids=["500", "1000", "1e6"])
def test_positional_encoding_names_the_base_it_found(fn, base, capsys):
    out = assert_named_mistake(PE, fn, "a base other than 10000", capsys)
    assert f"base ≈ {base}" in out


def test_positional_encoding_cases_stay_in_float32_range():
    cases = get_exercise(PE).checker.cases()
    assert all(d % 2 == 0 and max_len <= 200 for max_len, d in (c.args for c in cases))
    assert max(max_len for max_len, _ in (c.args for c in cases)) == 200
    assert get_exercise(PE).checker.atol <= 5e-5


# ---------------------------------------------------------------------------
# padding_mask
# ---------------------------------------------------------------------------


def pad_right(token_ids, pad_id):
    return (token_ids != pad_id).unsqueeze(1).unsqueeze(2)


def pad_view(token_ids, pad_id):
    B, T = token_ids.shape
    return token_ids.ne(pad_id).view(B, 1, 1, T)


def pad_inverted(token_ids, pad_id):
    return (token_ids == pad_id).unsqueeze(1).unsqueeze(2)


def pad_inverted_not(token_ids, pad_id):
    return ~pad_right(token_ids, pad_id)


def pad_flat(token_ids, pad_id):
    return token_ids != pad_id


def pad_three_axes(token_ids, pad_id):
    return (token_ids != pad_id).unsqueeze(1)


def pad_queries(token_ids, pad_id):
    return (token_ids != pad_id).unsqueeze(1).unsqueeze(-1)


def pad_zero(token_ids, pad_id):
    return (token_ids != 0).unsqueeze(1).unsqueeze(2)


def pad_positive(token_ids, pad_id):
    return (token_ids > 0).unsqueeze(1).unsqueeze(2)


def pad_float(token_ids, pad_id):
    return pad_right(token_ids, pad_id).float()


def pad_int(token_ids, pad_id):
    return pad_right(token_ids, pad_id).int()


def pad_additive(token_ids, pad_id):
    return torch.zeros(token_ids.shape).masked_fill(token_ids == pad_id, float("-inf")).unsqueeze(1).unsqueeze(2)


@pytest.mark.parametrize("fn", [pad_right, pad_view, get_exercise(PAD).load_solution()],
                         ids=["unsqueeze", "view", "solution"])
def test_padding_mask_right_answers_pass(fn, capsys):
    ok, out = run(PAD, fn, capsys)
    assert ok, out


@pytest.mark.parametrize("fn, phrase", [
    (pad_inverted, "the mask is inverted"),
    (pad_inverted_not, "the mask is inverted"),
    (pad_flat, "lacks the two singleton axes"),
    (pad_three_axes, "lacks the two singleton axes"),
    (pad_queries, "hides queries, not keys"),
    (pad_zero, "compares with 0, not with pad_id"),
    (pad_positive, "compares with 0, not with pad_id"),
    (pad_float, "must be a bool tensor"),
    (pad_int, "must be a bool tensor"),
    (pad_additive, "additive float mask"),
], ids=lambda x: getattr(x, "__name__", x))
def test_padding_mask_classic_mistakes(fn, phrase, capsys):
    assert_named_mistake(PAD, fn, phrase, capsys)


@pytest.mark.parametrize("fn, got", [(pad_flat, "(3, 6)"), (pad_queries, "(3, 1, 6, 1)")], ids=["flat", "queries"])
def test_padding_mask_wrong_shape_reports_both_shapes(fn, got, capsys):
    _, out = run(PAD, fn, capsys)
    assert f"expected mask of shape (3, 1, 1, 6), got {got}" in out


def test_padding_mask_cases_separate_pad_id_from_zero():
    cases = get_exercise(PAD).checker.cases()
    assert any(pad_id != 0 and (ids == 0).any() for ids, pad_id in (c.args for c in cases))  # a real token 0
    assert any(pad_id == 0 and (ids == 0).any() for ids, pad_id in (c.args for c in cases))  # padding 0
    assert any(ids.shape[0] != ids.shape[1] for ids, _ in (c.args for c in cases))
    assert all(ids.dtype == torch.long for ids, _ in (c.args for c in cases))


# ---------------------------------------------------------------------------
# all four: starters, learner bugs
# ---------------------------------------------------------------------------

STARTERS = {
    LN: "def my_layer_norm(x, gamma, beta, eps=1e-5):\n    raise NotImplementedError  # your code here\n",
    AN: "def my_add_and_norm(x, sublayer, norm):\n    raise NotImplementedError  # your code here\n",
    PE: "def my_positional_encoding(max_len, d_model):\n    raise NotImplementedError  # your code here\n",
    PAD: "def my_padding_mask(token_ids, pad_id):\n    raise NotImplementedError  # your code here\n",
}


@pytest.mark.parametrize("name", list(STARTERS))
def test_starter_is_not_attempted(name, capsys):
    namespace = {}
    exec(STARTERS[name], namespace)
    ok, out = run(name, namespace[f"my_{name}"], capsys)
    assert ok is False
    assert out == (f"⏳ {name}: not attempted yet — replace `raise NotImplementedError` with your code, "
                   "then run check again.\n")


@pytest.mark.parametrize("name", list(STARTERS))
@pytest.mark.parametrize("result, summary", [
    (None, "returned None"),
    ("text", "wrong type"),
    (torch.zeros(2), "wrong shape"),
], ids=["None", "str", "shape"])
def test_wrong_results_get_a_verdict(name, result, summary, capsys):
    ok, out = run(name, lambda *args: result, capsys)
    assert ok is False and out.startswith(f"❌ {name}:") and summary in out, out


@pytest.mark.parametrize("name", list(STARTERS))
def test_an_exception_inside_the_learner_is_reported(name, capsys):
    def learner(*args):
        return args[0] @ torch.ones(3, 3, 3, 3)

    ok, out = run(name, learner, capsys)
    assert ok is False and out.startswith(f"❌ {name}: your function raised"), out


@pytest.mark.parametrize("name", list(STARTERS))
def test_three_hints_and_a_solution(name):
    exercise = get_exercise(name)
    assert len(exercise.hints) == 3
    assert f"def {name}(" in exercise.solution
