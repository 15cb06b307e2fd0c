"""The exercises of notebook 02 (the Transformer), in the notebook's order: ``layer_norm``,
``add_and_norm``, ``positional_encoding``, ``causal_mask`` and ``padding_mask``.

Importing this module registers them.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from course_lib.exercises.engine import Case, Exercise, Mistake, register
from course_lib.exercises.output_checker import OutputChecker


# ---------------------------------------------------------------------------
# layer_norm: the "Norm" of Add & Norm
# ---------------------------------------------------------------------------


def _ln_reference(x, gamma, beta, eps=1e-5):
    # in float64, so that the reference itself carries no float32 rounding
    x64 = x.double()
    mu = x64.mean(-1, keepdim=True)
    var = ((x64 - mu) ** 2).mean(-1, keepdim=True)  # biased: divide by d, not d - 1
    return (x64 - mu) / torch.sqrt(var + eps) * gamma.double() + beta.double()


def _ln_wrong(x, gamma, beta, eps=1e-5, *, dims=(-1,), unbiased=False, eps_mode="inside",
              scale=True, shift=True):
    """LayerNorm with one deliberate mistake (see _LN_MISTAKES), in float32 like a learner's."""
    if dims == "all_but_last":
        dims = tuple(range(x.dim() - 1))
    mu = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=unbiased, keepdim=True)
    if eps_mode == "inside":
        y = (x - mu) / torch.sqrt(var + eps)
    elif eps_mode == "outside":
        y = (x - mu) / (torch.sqrt(var) + eps)
    elif eps_mode == "none":
        y = (x - mu) / torch.sqrt(var)
    elif eps_mode == "fixed":  # the argument eps ignored, 1e-5 written in
        y = (x - mu) / torch.sqrt(var + 1e-5)
    if scale:
        y = y * gamma
    if shift:
        y = y + beta
    return y


def _ln_cases(g: torch.Generator) -> list[Case]:
    def rows(*shape, d):
        # every position its own scale and offset, so that normalising is visible
        x = torch.randn(*shape, d, generator=g)
        scale = torch.rand(*shape, 1, generator=g) * 4 + 0.5
        offset = torch.randn(*shape, 1, generator=g) * 3
        return x * scale + offset

    def affine(d):
        gamma = 1 + 0.5 * torch.randn(d, generator=g)
        beta = torch.randn(d, generator=g)
        return gamma, beta

    # rows whose variance is far below eps = 1e-5 ... 1e-3, or zero: only there does it matter
    # whether eps sits inside the square root (the mean is small, so float32 keeps the digits)
    quiet = rows(4, d=8)
    quiet[1] = 0.01 + 1e-3 * torch.randn(8, generator=g)    # variance ~ 1e-6
    quiet[2] = -0.02 + 3e-3 * torch.randn(8, generator=g)   # variance ~ 1e-5
    quiet[3] = 0.25                                         # variance 0: the output is beta
    quiet_wide = rows(5, d=16)
    quiet_wide[0] = 0.1 * torch.randn(16, generator=g)      # variance ~ 1e-2, comparable to eps = 1e-3
    quiet_wide[3] = 1e-3 * torch.randn(16, generator=g)
    # B = 3 != T = 4: statistics over the batch axis give other numbers than over the positions
    return [
        Case("x (3, 4, 8), eps = 1e-5", (rows(3, 4, d=8), *affine(8), 1e-5)),
        Case("x (4, 8) with rows of tiny variance (~1e-6, ~1e-5, 0), eps = 1e-5", (quiet, *affine(8), 1e-5),
             note="Rows with a tiny variance: eps goes INSIDE the square root, sqrt(var + eps)."),
        Case("x (3, 4) (d = 4), eps = 1e-5", (rows(3, d=4), *affine(4), 1e-5),
             note="With d = 4, dividing the squares by d - 1 instead of d is visible: use the biased variance."),
        Case("x (2, 2, 3, 5), eps = 1e-5", (rows(2, 2, 3, d=5), *affine(5), 1e-5),
             note="Any number of leading axes: normalise over the last one only (dim=-1)."),
        Case("x (5, 16) with rows of small variance, eps = 1e-3", (quiet_wide, *affine(16), 1e-3),
             note="Here eps = 1e-3: use the eps argument, not a fixed 1e-5."),
        Case("x (1, 8) (a single position), eps = 1e-5", (rows(1, d=8), *affine(8), 1e-5)),
    ]


_LN_MISTAKES = [
    Mistake(
        "the mean and variance are taken over the batch axis (that is BatchNorm), "
        "not over the d features of each position",
        "LayerNorm normalises each position on its own: x.mean(dim=-1, keepdim=True), and the "
        "variance over dim=-1 too.",
        variants=(partial(_ln_wrong, dims=(0,)), partial(_ln_wrong, dims="all_but_last")),
    ),
    Mistake(
        "the variance is the unbiased one (divided by d - 1); LayerNorm divides by d",
        "Use x.var(dim=-1, unbiased=False, keepdim=True), or ((x - mu) ** 2).mean(dim=-1, keepdim=True) "
        "(torch.var and torch.std divide by d - 1 by default).",
        variants=(partial(_ln_wrong, unbiased=True),),
    ),
    Mistake(
        "eps is added outside the square root: sqrt(var) + eps instead of sqrt(var + eps)",
        "Divide by torch.sqrt(var + eps): eps goes inside the square root "
        "(it matters for rows whose variance is close to eps).",
        variants=(partial(_ln_wrong, eps_mode="outside"),),
    ),
    Mistake(
        "eps is missing: a row whose variance is 0 (or tiny) is divided by 0 (or almost)",
        "Divide by torch.sqrt(var + eps), with the eps argument inside the square root.",
        variants=(partial(_ln_wrong, eps_mode="none"),),
    ),
    Mistake(
        "the eps argument is ignored: the function always uses 1e-5",
        "Use the eps your function receives: torch.sqrt(var + eps).",
        variants=(partial(_ln_wrong, eps_mode="fixed"),),
    ),
    Mistake(
        "gamma and beta are not applied: the output must be gamma * x_hat + beta",
        "After normalising, scale by gamma and shift by beta: gamma * x_hat + beta "
        "(both have shape (d,) and broadcast over the leading axes).",
        variants=(
            partial(_ln_wrong, scale=False, shift=False),
            partial(_ln_wrong, scale=False),
            partial(_ln_wrong, shift=False),
        ),
    ),
]

_LN_SOLUTION = '''\
import torch


def layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean(dim=-1, keepdim=True)                             # (..., 1): one mean per position
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)              # biased: divide by d, not d - 1
    x_hat = (x - mu) / torch.sqrt(var + eps)                      # eps inside the square root
    return gamma * x_hat + beta                                   # (..., d)
'''

register(
    Exercise(
        name="layer_norm",
        signature="layer_norm(x (..., d), gamma (d,), beta (d,), eps=1e-5) -> a tensor shaped like x",
        checker=OutputChecker(
            outputs=("y",),
            reference=_ln_reference,
            make_cases=_ln_cases,
            mistakes=_LN_MISTAKES,
        ),
        hints=(
            "LayerNorm works on one position at a time, over its d features (the LAST axis): "
            "mu = mean of x_i, sigma^2 = (1/d) Σ (x_i - mu)^2, then "
            "gamma * (x - mu) / sqrt(sigma^2 + eps) + beta. Not over the batch axis: that is BatchNorm.",
            "mu = x.mean(dim=-1, keepdim=True) keeps a size-1 last axis, so x - mu broadcasts. The "
            "variance is the biased one: ((x - mu) ** 2).mean(dim=-1, keepdim=True), or "
            "x.var(dim=-1, unbiased=False, keepdim=True) (torch.var divides by d - 1 by default).",
            "x_hat = (x - mu) / torch.sqrt(var + eps) (eps inside the square root, so a constant row "
            "gives 0, not 0/0), then return gamma * x_hat + beta. "
            "torch.nn.functional.layer_norm(x, x.shape[-1:], gamma, beta, eps) computes the same.",
        ),
        solution=_LN_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# add_and_norm: post-norm Add & Norm, x <- norm(x + sublayer(x))
# ---------------------------------------------------------------------------


def _an_reference(x, sublayer, norm):
    return norm(x + sublayer(x))


def _an_wrong(x, sublayer, norm, *, mode):
    """Add & Norm with one deliberate mistake (see _AN_MISTAKES)."""
    if mode == "pre_norm":
        return x + sublayer(norm(x))
    if mode == "no_residual":
        return norm(sublayer(x))
    if mode == "norm_then_add":
        return norm(sublayer(x)) + x
    if mode == "no_norm":
        return x + sublayer(x)
    if mode == "own_norm":  # a fresh LayerNorm instead of the `norm` passed in
        y = x + sublayer(x)
        return nn.functional.layer_norm(y, y.shape[-1:])


def _an_cases(g: torch.Generator) -> list[Case]:
    def layer_norm_with(d):
        norm = nn.LayerNorm(d)
        with torch.no_grad():  # learned-looking gamma and beta, so that ignoring `norm` shows
            norm.weight.copy_(1 + 0.5 * torch.randn(d, generator=g))
            norm.bias.copy_(torch.randn(d, generator=g))
        return norm

    def linear_tanh(d):
        sub = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        with torch.no_grad():
            sub[0].weight.copy_(torch.randn(d, d, generator=g) / math.sqrt(d))
            sub[0].bias.copy_(torch.randn(d, generator=g))
        return sub

    W = torch.randn(6, 6, generator=g)
    gamma, beta = 1 + 0.5 * torch.randn(6, generator=g), torch.randn(6, generator=g)

    def times_w(t):  # a plain function works as a sub-layer too
        return t @ W

    def rms_norm(t):  # ... and as a norm: any callable
        return t / t.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()

    def ln_function(t):
        return nn.functional.layer_norm(t, (6,), gamma, beta)

    def x(*shape):
        return torch.randn(*shape, generator=g) * 2 + 1

    return [
        Case("x (2, 5, 8), sublayer = Linear + tanh, norm = nn.LayerNorm(8) with trained-looking gamma, beta",
             (x(2, 5, 8), linear_tanh(8), layer_norm_with(8))),
        Case("x (3, 6), sublayer = a function t @ W, norm = a function calling F.layer_norm",
             (x(3, 6), times_w, ln_function)),
        Case("x (2, 4, 6), sublayer = a function t @ W, norm = an RMS norm (not a LayerNorm)",
             (x(2, 4, 6), times_w, rms_norm),
             note="norm can be any function: call the norm you are given, not a LayerNorm of your own."),
        Case("x (1, 3, 8), sublayer = Linear + tanh, norm = nn.LayerNorm(8)",
             (x(1, 3, 8), linear_tanh(8), layer_norm_with(8))),
    ]


_AN_MISTAKES = [
    Mistake(
        "this is pre-norm, x + sublayer(norm(x)) (GPT-2's arrangement); the notes' Add & Norm is "
        "post-norm, norm(x + sublayer(x))",
        "First add the sub-layer's output to x (Add), then normalise the sum (Norm): "
        "return norm(x + sublayer(x)).",
        variants=(partial(_an_wrong, mode="pre_norm"),),
    ),
    Mistake(
        "the residual connection is missing: norm(sublayer(x)) drops x",
        "Add x back before normalising (the Add of Add & Norm): norm(x + sublayer(x)).",
        variants=(partial(_an_wrong, mode="no_residual"),),
    ),
    Mistake(
        "x is added after the norm: norm(sublayer(x)) + x; the sum must go INTO the norm",
        "Normalise the sum itself: norm(x + sublayer(x)).",
        variants=(partial(_an_wrong, mode="norm_then_add"),),
    ),
    Mistake(
        "the norm is missing: x + sublayer(x) is only the Add",
        "Pass the sum through the norm you are given: norm(x + sublayer(x)).",
        variants=(partial(_an_wrong, mode="no_norm"),),
    ),
    Mistake(
        "the norm you were given is not used (a fresh LayerNorm has no trained gamma, beta, "
        "and norm may be another function)",
        "Call the norm argument itself: norm(x + sublayer(x)), not F.layer_norm or a new nn.LayerNorm.",
        variants=(partial(_an_wrong, mode="own_norm"),),
    ),
]

_AN_SOLUTION = '''\
def add_and_norm(x, sublayer, norm):
    # Add: the residual connection, x plus the sub-layer's correction;
    # Norm: normalise the sum (post-norm, as in the notes and the 2017 paper).
    return norm(x + sublayer(x))
'''

register(
    Exercise(
        name="add_and_norm",
        signature="add_and_norm(x, sublayer, norm) -> norm(x + sublayer(x)), shaped like x",
        checker=OutputChecker(
            outputs=("y",),
            reference=_an_reference,
            make_cases=_an_cases,
            mistakes=_AN_MISTAKES,
        ),
        hints=(
            "sublayer and norm are functions (an attention block, a feed-forward network, an "
            "nn.LayerNorm, ...): call them, sublayer(x) and norm(...). Add & Norm has two steps: "
            "Add, then Norm.",
            "Add is the residual connection: x + sublayer(x), the input plus the sub-layer's "
            "correction. Norm comes after the Add, on the sum (post-norm, as in the notes).",
            "return norm(x + sublayer(x)). Not x + sublayer(norm(x)) (that is pre-norm), "
            "not norm(sublayer(x)) + x.",
        ),
        solution=_AN_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# positional_encoding: the sinusoidal table
# ---------------------------------------------------------------------------

_PE_ATOL = 5e-5  # a float32 exp-log table of up to 200 x 64 is within about 1.3e-5 of the exact one


def _pe_table(max_len, d_model, *, base=10000.0, exponent="pair", swap=False, first_position=0):
    """The sinusoidal table, in float64, or one of its classic mistakes (see _PE_MISTAKES)."""
    p = torch.arange(first_position, first_position + max_len, dtype=torch.float64)[:, None]
    j = torch.arange(d_model, dtype=torch.float64)     # the column, 0 .. d - 1
    if exponent == "pair":           # right: columns 2i and 2i+1 share 10000^(2i/d)
        power = 2 * (j // 2) / d_model
    elif exponent == "column":       # 10000^(j/d): the cosine column 2i+1 gets its own exponent
        power = j / d_model
    elif exponent == "2 * column":   # 10000^(2j/d): the column index used as i
        power = 2 * j / d_model
    elif exponent == "2 * even column":  # i = torch.arange(0, d, 2), then 10000^(2i/d): 2i counted twice
        power = 2 * (2 * (j // 2)) / d_model
    angle = p / torch.pow(torch.tensor(base, dtype=torch.float64), power)
    even = (j % 2 == 0)
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    return torch.where(even, first(angle), second(angle))


def _pe_reference(max_len, d_model):
    return _pe_table(max_len, d_model)


def _pe_cases(g: torch.Generator) -> list[Case]:
    # even d_model throughout; max_len <= 200 keeps a float32 table within _PE_ATOL
    return [
        Case("max_len = 50, d_model = 16", (50, 16)),
        Case("max_len = 10, d_model = 4", (10, 4)),
        Case("max_len = 200, d_model = 64", (200, 64),
             note="A float32 table is fine here; compare your formula with the one above the exercise."),
        Case("max_len = 1, d_model = 2 (one position: sin 0 = 0, cos 0 = 1)", (1, 2)),
        Case("max_len = 7, d_model = 8", (7, 8)),
    ]


_PE_BASE_PROBLEM = "the frequencies use a base other than 10000"

_PE_MISTAKES = [
    Mistake(
        "sin and cos are swapped: the even columns (2i) hold the sine, the odd ones (2i+1) the cosine",
        "PE[p, 2i] = sin(p / 10000^(2i/d)) and PE[p, 2i+1] = cos(...): pe[:, 0::2] = torch.sin(angle), "
        "pe[:, 1::2] = torch.cos(angle).",
        variants=(partial(_pe_table, swap=True),),
    ),
    Mistake(
        "the exponent uses the column index where it needs the pair index i: columns 2i and 2i+1 "
        "share one frequency, 1 / 10000^(2i/d)",
        "Compute one angle per pair: two_i = torch.arange(0, d, 2) (that is 2i already, do not double "
        "it), angle = p / 10000 ** (two_i / d); use it for both pe[:, 0::2] and pe[:, 1::2].",
        variants=(
            partial(_pe_table, exponent="column"),
            partial(_pe_table, exponent="2 * column"),
            partial(_pe_table, exponent="2 * even column"),
        ),
    ),
    Mistake(
        _PE_BASE_PROBLEM,
        "The table of the paper uses 10000: angle = p / 10000 ** (2i / d).",
        variants=(partial(_pe_table, base=1000.0), partial(_pe_table, base=100000.0)),
    ),
    Mistake(
        "the positions start at 1; the first row is position p = 0 (sin 0 = 0, cos 0 = 1)",
        "Use p = torch.arange(max_len), which starts at 0.",
        variants=(partial(_pe_table, first_position=1),),
    ),
    Mistake(
        "the table is transposed: it must be (max_len, d_model), one row per position",
        "Row p is the code of position p: build a (max_len, d_model) table, or return pe.T.",
        variants=(lambda max_len, d_model: _pe_table(max_len, d_model).T,),
        by_shape=True,
    ),
    Mistake(
        "the table has an extra batch axis: return (max_len, d_model), without unsqueeze(0)",
        "Return the 2-D table itself, shape (max_len, d_model); broadcasting adds it to (B, T, d) later.",
        variants=(lambda max_len, d_model: _pe_table(max_len, d_model)[None],),
        by_shape=True,
    ),
]


class _PositionalChecker(OutputChecker):
    """The OutputChecker, plus: a table that is sinusoidal with ANY base other than 10000 is named.

    The variants can only try a few bases; here the base is read off the learner's own table
    (PE[1, 2] = sin(base^(-2/d))) and the whole table compared with that base's.
    """

    def _diagnose(self, fn, cases, wanted, first, first_outcome):
        found = super()._diagnose(fn, cases, wanted, first, first_outcome)
        if found is not None and found[0].problem != _PE_BASE_PROBLEM:
            return found  # e.g. 10000^(2·2i/d), which is base 10000² = 1e8: the doubled 2i is the likelier slip
        base = self._base_of(first_outcome, cases[first])
        if base is None:
            return found
        shown = f"{base:.4g}" if base < 1e6 else f"{base:.2e}"
        mistake = next(m for m in self.mistakes if m.problem == _PE_BASE_PROBLEM)
        return Mistake(_PE_BASE_PROBLEM, f"Your table matches base ≈ {shown}. " + mistake.fix), first, first_outcome

    def _base_of(self, outcome, case: Case) -> float | None:
        """The base b when the learner's table is the sinusoidal one with b != 10000, else None."""
        if outcome.error is not None:
            return None
        value = self._as_tuple(outcome.value)
        if self._structure_problem(value) is not None:
            return None
        table = value[0].detach().cpu().to(torch.float64)
        max_len, d_model = case.args
        if table.shape != (max_len, d_model) or max_len < 2 or d_model < 4:
            return None
        omega = math.asin(min(max(table[1, 2].item(), -1.0), 1.0))  # = base^(-2/d), in (0, 1]
        if not 0 < omega < 1:
            return None
        base = omega ** (-d_model / 2)
        if not math.isfinite(base) or abs(base / 10000 - 1) < 1e-3:
            return None
        if not torch.allclose(table, _pe_table(max_len, d_model, base=base), atol=1e-3, rtol=0):
            return None
        return base


_PE_SOLUTION = '''\
import torch


def positional_encoding(max_len, d_model):
    p = torch.arange(max_len, dtype=torch.float64)[:, None]           # positions 0 .. max_len - 1, (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)          # 2i = 0, 2, 4, ..., (d/2,)
    angle = p / 10000 ** (two_i / d_model)                            # one frequency per pair: (max_len, d/2)
    pe = torch.zeros(max_len, d_model)
    pe[:, 0::2] = torch.sin(angle)                                    # even columns: sine
    pe[:, 1::2] = torch.cos(angle)                                    # odd columns: cosine, same angle
    return pe                                                         # (max_len, d_model)
'''

register(
    Exercise(
        name="positional_encoding",
        signature="positional_encoding(max_len, d_model) -> PE, a (max_len, d_model) tensor",
        checker=_PositionalChecker(
            outputs=("PE",),
            reference=_pe_reference,
            make_cases=_pe_cases,
            mistakes=_PE_MISTAKES,
            atol=_PE_ATOL,
        ),
        hints=(
            "PE[p, 2i] = sin(p / 10000^(2i/d)) and PE[p, 2i+1] = cos(p / 10000^(2i/d)), for positions "
            "p = 0 .. max_len - 1 and pairs i = 0 .. d/2 - 1. The two columns of a pair share ONE angle.",
            "Build the angles for all positions and pairs at once: p = torch.arange(max_len)[:, None] "
            "(a column), two_i = torch.arange(0, d_model, 2) (the values 2i, a row), "
            "angle = p / 10000 ** (two_i / d_model), shape (max_len, d_model // 2) by broadcasting.",
            "pe = torch.zeros(max_len, d_model); pe[:, 0::2] = torch.sin(angle) fills the even "
            "columns, pe[:, 1::2] = torch.cos(angle) the odd ones. Return pe, shape (max_len, d_model).",
        ),
        solution=_PE_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# causal_mask: the causal mask of the Transformer decoder
# ---------------------------------------------------------------------------


def _causal_reference(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


def _causal_cases(g: torch.Generator) -> list[Case]:
    # T = 5 comes first: there every mistake below gives a different matrix
    # (for T = 2, diagonal=+1 and "no masking" are the same matrix).
    return [
        Case("T = 5", (5,)),
        Case("T = 1 (a single position, which sees only itself)", (1,)),
        Case("T = 2", (2,)),
        Case("T = 8", (8,)),
    ]


def _causal_tril(T, diagonal=0, dtype=torch.bool):
    return torch.ones(T, T, dtype=dtype).tril(diagonal)


_CAUSAL_MISTAKES = [
    Mistake(
        "off by one: the diagonal is blocked, so position i cannot attend to itself",
        "Position i sees j <= i, itself included: keep the diagonal, "
        "torch.tril with the default diagonal=0 (not diagonal=-1).",
        variants=(partial(_causal_tril, diagonal=-1),),
    ),
    Mistake(
        "off by one: position i also sees position i + 1, one step into the future",
        "Position i sees only j <= i: torch.tril with the default diagonal=0 "
        "(not diagonal=1).",
        variants=(partial(_causal_tril, diagonal=1),),
    ),
    Mistake(
        "this is the upper triangle: position i looks at the future (j >= i), not the past",
        "Keep the lower triangle, on and below the diagonal: torch.tril, not torch.triu.",
        variants=(lambda T: torch.ones(T, T, dtype=torch.bool).triu(),),
    ),
    Mistake(
        "the mask is inverted: it is True where attention is blocked, "
        "but True means 'may attend'",
        "True = may attend, as in F.scaled_dot_product_attention: return the lower "
        "triangle itself, torch.ones(T, T, dtype=torch.bool).tril() (no ~, no triu).",
        variants=(
            lambda T: ~_causal_tril(T),
            lambda T: torch.ones(T, T, dtype=torch.bool).triu(diagonal=1),
        ),
    ),
    Mistake(
        "this is an additive float mask (0 = attend, -inf = blocked), "
        "but here the mask is a bool tensor, True = may attend",
        "Return torch.ones(T, T, dtype=torch.bool).tril(); the attention code turns "
        'False into -inf itself (masked_fill(~mask, float("-inf"))).',
        variants=(
            lambda T: torch.zeros(T, T).masked_fill(~_causal_tril(T), float("-inf")),
        ),
    ),
    Mistake(
        "the mask blocks nothing: every position may attend to every position, "
        "the future included",
        "Keep only j <= i, the lower triangle: torch.ones(T, T, dtype=torch.bool).tril().",
        variants=(lambda T: torch.ones(T, T, dtype=torch.bool),),
    ),
    Mistake(
        "the mask holds numbers (0 / 1) instead of True / False: it must be a bool tensor",
        "Build it with dtype=torch.bool, torch.ones(T, T, dtype=torch.bool).tril(), "
        "or add .bool() at the end.",
        variants=(
            partial(_causal_tril, dtype=torch.float32),
            partial(_causal_tril, dtype=torch.int64),
        ),
    ),
    Mistake(
        "the mask has the wrong shape: it must be a (T, T) matrix, "
        "row i = query position, column j = key position",
        "Return exactly shape (T, T), no batch dim: torch.ones(T, T, dtype=torch.bool).tril() "
        "(it broadcasts over batches later).",
        variants=(
            lambda T: torch.ones(T, dtype=torch.bool),
            lambda T: _causal_tril(T).unsqueeze(0),
        ),
        by_shape=True,
    ),
]

_CAUSAL_SOLUTION = '''\
import torch


def causal_mask(T):
    # M[i, j] = True when position i may attend to position j, i.e. j <= i:
    # the lower triangle, diagonal included.
    return torch.ones(T, T, dtype=torch.bool).tril()   # shape (T, T), dtype bool
'''

register(
    Exercise(
        name="causal_mask",
        signature="causal_mask(T) -> mask, a bool tensor of shape (T, T)",
        checker=OutputChecker(
            outputs=("mask",),
            reference=_causal_reference,
            make_cases=_causal_cases,
            mistakes=_CAUSAL_MISTAKES,
            check_dtype=True,
        ),
        hints=(
            "The notes write the masked attention as softmax((QKᵀ ⊙ M)/√d_k)V, but taken "
            "literally that leaks: a score multiplied by 0 is 0, and e⁰ = 1 still gives the "
            "future weight (notebook 02, section 4). What works is softmax((QKᵀ + M̃)/√d_k)V "
            "with M̃[i, j] = 0 where j <= i and -inf elsewhere; the attention code builds M̃ "
            "from the bool mask you write here. In the (T, T) mask M, row i is the query "
            "position and column j the key position; position i may attend to j <= i, so "
            "M[i, j] is True on and below the diagonal (True = may attend, as in "
            "F.scaled_dot_product_attention).",
            "On and below the diagonal is the lower triangle: torch.tril(x) keeps it "
            "(diagonal included, diagonal=0 is the default) and sets the rest to zero / False. "
            "Start from a matrix that is all True.",
            "torch.ones(T, T, dtype=torch.bool) is all True; .tril() (or torch.tril(...)) keeps "
            "j <= i. Return that (T, T) bool tensor: no .float(), no extra batch dim.",
        ),
        solution=_CAUSAL_SOLUTION,
    )
)


# ---------------------------------------------------------------------------
# padding_mask: hide the padding keys
# ---------------------------------------------------------------------------


def _pad_reference(token_ids, pad_id):
    return (token_ids != pad_id)[:, None, None, :]


def _pad_cases(g: torch.Generator) -> list[Case]:
    def batch(lengths, T, pad_id, low=0, high=20):
        # right-padded sentences whose real tokens may take any id in [low, high) but pad_id
        ids = torch.randint(low, high, (len(lengths), T), generator=g)
        ids[ids == pad_id] = (pad_id + 1) % high
        for row, n in enumerate(lengths):
            ids[row, n:] = pad_id
        return ids

    with_zero = batch([5, 3, 4, 1], 5, pad_id=1)
    with_zero[:, 0] = 0  # token id 0 is a real word here: only pad_id is padding
    return [
        Case("token_ids (3, 6) with 6, 4 and 2 real tokens, pad_id = 0", (batch([6, 4, 2], 6, pad_id=0), 0)),
        Case("token_ids (4, 5), pad_id = 1, where the real token 0 starts every sentence", (with_zero, 1),
             note="Padding is whatever id pad_id says, here 1; compare token_ids with pad_id."),
        Case("token_ids (2, 3) with no padding, pad_id = 7", (batch([3, 3], 3, pad_id=7), 7)),
        Case("token_ids (2, 7), pad_id = 3", (batch([2, 7], 7, pad_id=3), 3)),
        Case("token_ids (1, 1), pad_id = 0", (torch.tensor([[5]]), 0)),
    ]


_PAD_MISTAKES = [
    Mistake(
        "the mask is inverted: it is True at the padding, but True means 'may attend' (a real token)",
        "Compare with !=, not ==: (token_ids != pad_id)[:, None, None, :].",
        variants=(lambda token_ids, pad_id: (token_ids == pad_id)[:, None, None, :],),
    ),
    Mistake(
        "the mask compares with 0, not with pad_id: the real token 0 is hidden, or the padding is not",
        "Use the pad_id argument: token_ids != pad_id.",
        variants=(lambda token_ids, pad_id: (token_ids != 0)[:, None, None, :],),
    ),
    Mistake(
        "this is an additive float mask (0 = attend, -inf = blocked), "
        "but here the mask is a bool tensor, True = may attend",
        "Return (token_ids != pad_id)[:, None, None, :], a bool tensor; the attention code turns "
        "False into -inf itself.",
        variants=(
            lambda token_ids, pad_id: torch.zeros(token_ids.shape).masked_fill(
                token_ids == pad_id, float("-inf"))[:, None, None, :],
        ),
    ),
    Mistake(
        "the mask holds numbers (0 / 1) instead of True / False: it must be a bool tensor",
        "token_ids != pad_id is already bool: do not add .float() / .long(), or add .bool() at the end.",
        variants=(
            lambda token_ids, pad_id: (token_ids != pad_id)[:, None, None, :].float(),
            lambda token_ids, pad_id: (token_ids != pad_id)[:, None, None, :].long(),
        ),
    ),
    Mistake(
        "the mask hides queries, not keys: (B, 1, T, 1) selects rows of the (T, T) scores, but "
        "padding must be hidden as a KEY, a column",
        "Put T last, (B, 1, 1, T): mask[b, 0, 0, j] says whether key j is a real token, for every query.",
        variants=(lambda token_ids, pad_id: (token_ids != pad_id)[:, None, :, None],),
        by_shape=True,
    ),
    Mistake(
        "the mask lacks the two singleton axes: it must be (B, 1, 1, T), to broadcast over the heads "
        "and the query positions of the scores (B, h, T, T)",
        "Index it as (token_ids != pad_id)[:, None, None, :], or .view(B, 1, 1, T).",
        variants=(
            lambda token_ids, pad_id: token_ids != pad_id,
            lambda token_ids, pad_id: (token_ids != pad_id)[:, None, :],
        ),
        by_shape=True,
    ),
]

_PAD_SOLUTION = '''\
import torch


def padding_mask(token_ids, pad_id):
    real = token_ids != pad_id           # (B, T) bool: True at real tokens, False at padding
    return real[:, None, None, :]        # (B, 1, 1, T): broadcasts over heads and query positions
'''

register(
    Exercise(
        name="padding_mask",
        signature="padding_mask(token_ids (B, T) long, pad_id) -> mask, a bool tensor of shape (B, 1, 1, T)",
        checker=OutputChecker(
            outputs=("mask",),
            reference=_pad_reference,
            make_cases=_pad_cases,
            mistakes=_PAD_MISTAKES,
            check_dtype=True,
        ),
        hints=(
            "A padded position must get no attention from anyone: it is hidden as a KEY, that is a "
            "column j of the scores (B, h, T_query, T_key). True means 'may attend', so the mask is True "
            "where token_ids holds a real token, False where it holds pad_id.",
            "token_ids != pad_id gives a (B, T) bool tensor, True at the real tokens. Compare with "
            "pad_id itself, not with 0: the id of the padding is whatever pad_id says.",
            "Add the head axis and the query axis, both of size 1, before the key axis: "
            "(token_ids != pad_id)[:, None, None, :] has shape (B, 1, 1, T) and broadcasts over "
            "(B, h, T, T).",
        ),
        solution=_PAD_SOLUTION,
    )
)
