"""course_lib._checks: the input validation every public function shares, and "checked once".

The first half tests each check's verdicts and messages. The second tests ``checked_by`` and
counts the checks that one forward pass makes (monkeypatched spies): a public entry point checks
its inputs once, and the layers and stacks it calls skip their checks, so a mask is checked once
on its way through a layer, a stack or a whole model, never once per sub-layer; a call from
outside the library (a learner's own module, another thread) is always checked.
"""

import collections
import threading

import pytest
import torch
from torch import nn

from course_lib import _checks
from course_lib.attention import MultiHeadAttention, attend, causal_mask, masked_softmax, padding_mask
from course_lib.attention import scaled_dot_product_attention
from course_lib.bert import BertConfig, BertModel
from course_lib.gpt import GPT, GPTConfig
from course_lib.encoder_decoder import Decoder, Encoder, EncoderDecoder
from course_lib.transformer import DecoderLayer, EncoderLayer, FeedForward

pytestmark = pytest.mark.usefixtures("one_torch_thread")

B, T, S, D, H = 2, 5, 4, 8, 2


# ---------------------------------------------------------------------------
# The checks themselves
# ---------------------------------------------------------------------------

def test_shape_of():
    assert _checks.shape_of(torch.zeros(2, 3, 4)) == "(2, 3, 4)"
    assert _checks.shape_of(torch.zeros(5)) == "(5)"
    assert _checks.shape_of(torch.tensor(1.0)) == "()"


def test_check_tensor():
    _checks.check_tensor("x", torch.zeros(2, 3), 2, "(B, d)")
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor of shape \(B, d\), got list$"):
        _checks.check_tensor("x", [[1.0]], 2, "(B, d)")
    with pytest.raises(TypeError,
                       match=r"^x must be a floating-point tensor of shape \(B, d\), got dtype torch.int64$"):
        _checks.check_tensor("x", torch.zeros(2, 3, dtype=torch.long), 2, "(B, d)")
    with pytest.raises(ValueError, match=r"^x must have shape \(B, d\), got \(3\)$"):
        _checks.check_tensor("x", torch.zeros(3), 2, "(B, d)")


def test_check_stream():
    _checks.check_stream("x", torch.zeros(B, T, D), D, "(B, T, d=8)")
    _checks.check_stream("x", torch.zeros(3, B, T, D), D, "(..., d=8)", dim=None)  # any leading axes
    with pytest.raises(ValueError, match=r"^x must have shape \(B, T, d=8\), got \(2, 5, 4\)$"):
        _checks.check_stream("x", torch.zeros(B, T, 4), D, "(B, T, d=8)")
    with pytest.raises(ValueError, match=r"^x must have shape \(B, T, d=8\), got \(1, 2, 5, 8\)$"):
        _checks.check_stream("x", torch.zeros(1, B, T, D), D, "(B, T, d=8)")
    with pytest.raises(ValueError, match=r"got \(5, 8\)"):
        _checks.check_stream("x", torch.zeros(T, D), D, "(B, T, d=8)")
    with pytest.raises(TypeError, match="floating-point"):
        _checks.check_stream("x", torch.zeros(B, T, D, dtype=torch.long), D, "(B, T, d=8)")


def test_check_same_shape():
    idx = torch.zeros(2, 3, dtype=torch.long)
    _checks.check_same_shape("targets", idx.clone(), "idx", idx)
    with pytest.raises(ValueError, match=r"^targets must have the shape of idx \(2, 3\), got \(2, 4\)$"):
        _checks.check_same_shape("targets", torch.zeros(2, 4), "idx", idx)
    with pytest.raises(TypeError, match=r"^targets must be a torch.Tensor with the shape of idx \(2, 3\), got list$"):
        _checks.check_same_shape("targets", [[0, 0, 0]], "idx", idx)


def test_check_mask_names_the_argument():
    _checks.check_mask(causal_mask(T), (B, H, T, T), "(B, h, T, T)")  # broadcasts
    with pytest.raises(TypeError, match=r"^tgt_mask must have dtype torch.bool .*got torch.float32"):
        _checks.check_mask(causal_mask(T).float(), (B, H, T, T), "(B, h, T, T)", name="tgt_mask")
    with pytest.raises(TypeError, match=r"^mask must be a bool torch.Tensor broadcastable to \(B, h, T, T\), got list"):
        _checks.check_mask([[True]], (B, H, T, T), "(B, h, T, T)")
    with pytest.raises(ValueError, match=r"^src_mask must be broadcastable to \(B, h, T, S\) = \(2, 2, 5, 4\), "
                                         r"got \(2, 1, 1, 5\)$"):
        _checks.check_mask(torch.ones(B, 1, 1, T, dtype=torch.bool), (B, H, T, S), "(B, h, T, S)", name="src_mask")
    with pytest.raises(ValueError, match="got \\(3, 5, 5\\)"):  # would broadcast *up* the batch: not allowed
        _checks.check_mask(torch.ones(3, T, T, dtype=torch.bool), (T, T), "(Tq, Tk)")


def test_check_token_ids():
    ids = torch.tensor([[1, 2, 3]])
    _checks.check_token_ids("idx", ids, vocab_size=4, max_len=3)
    _checks.check_token_ids("idx", ids.int())  # torch.int is an embedding index too; no limits given
    with pytest.raises(TypeError, match=r"^idx must be an integer torch.Tensor of shape \(B, T\), got list$"):
        _checks.check_token_ids("idx", [[1, 2]])
    for dtype in (torch.float32, torch.bool, torch.uint8):
        with pytest.raises(TypeError, match=rf"^idx must hold integer token ids .*got dtype {dtype}$"):
            _checks.check_token_ids("idx", ids.to(dtype))
    with pytest.raises(ValueError, match=r"^src must have shape \(B, L\), got \(3\)$"):
        _checks.check_token_ids("src", ids[0], length="L")
    with pytest.raises(ValueError, match=r"^idx must hold at least one token, got \(1, 0\)$"):
        _checks.check_token_ids("idx", ids[:, :0])
    with pytest.raises(ValueError, match=r"^idx has length T=3, more than block_size=2: keep at most its last 2 "
                                         r"tokens, or use a model with a larger block_size$"):
        _checks.check_token_ids("idx", ids, max_len=2, limit="block_size")
    with pytest.raises(ValueError, match=r"^idx must hold ids in \[0, vocab_size=3\), got values from 1 to 3$"):
        _checks.check_token_ids("idx", ids, vocab_size=3)
    with pytest.raises(ValueError, match=r"got values from -1 to 2"):
        _checks.check_token_ids("idx", torch.tensor([[-1, 2]]), vocab_size=3)


def test_check_id_range():
    _checks.check_id_range("token_type_ids", torch.tensor([[0, 1]]), 2, "type_vocab_size")
    _checks.check_id_range("ids", torch.zeros(0, dtype=torch.long), 1)  # nothing to check
    with pytest.raises(ValueError, match=r"^token_type_ids must hold ids in \[0, type_vocab_size=2\), "
                                         r"got values from 0 to 2$"):
        _checks.check_id_range("token_type_ids", torch.tensor([[0, 2]]), 2, "type_vocab_size")


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None])
def test_check_positive_int_rejects(value):
    with pytest.raises(ValueError, match=rf"^n must be a positive int, got {value!r}$".replace("(", r"\(")):
        _checks.check_positive_int("n", value)


def test_check_positive_int_accepts():
    _checks.check_positive_int("n", 3)
    _checks.check_positive_int("n", None, allow_none=True)
    with pytest.raises(ValueError, match="^top_k must be a positive int or None, got 0$"):
        _checks.check_positive_int("top_k", 0, allow_none=True)


def test_check_probability():
    for ok in (0, 0.0, 0.5, 0.999):
        _checks.check_probability("dropout", ok)
    _checks.check_probability("p", 1.0, upper_inclusive=True)
    for bad in (1.0, -0.1, 1.5, True, "0.1", None):
        with pytest.raises(ValueError, match=r"^dropout must be a float in \[0, 1\), got "):
            _checks.check_probability("dropout", bad)
    with pytest.raises(ValueError, match=r"^p must be a float in \[0, 1\], got 1.5$"):
        _checks.check_probability("p", 1.5, upper_inclusive=True)


def test_check_bool():
    _checks.check_bool("norm_first", False)
    for bad in (0, 1, "yes", None):
        with pytest.raises(TypeError, match=r"^norm_first must be True or False, got "):
            _checks.check_bool("norm_first", bad)


def test_check_checkpoint_keys_names_every_missing_and_unused_key():
    expected = ["a.weight", "a.bias", "b.weight"]
    _checks.check_checkpoint_keys("ckpt", ["b.weight", "a.bias", "a.weight"], expected)
    _checks.check_checkpoint_keys("ckpt", [*expected, "h.0.attn.bias"], expected, skip=r"h\.\d+\.attn\.bias")
    with pytest.raises(ValueError, match=r"^ckpt does not fit the model: missing a.bias, b.weight; unused c, d$"):
        _checks.check_checkpoint_keys("ckpt", ["a.weight", "d", "c"], expected)
    with pytest.raises(ValueError, match=r"^ckpt does not fit the model: unused x$"):
        _checks.check_checkpoint_keys("ckpt", [*expected, "x"], expected)
    # skip matches whole names only
    with pytest.raises(ValueError, match=r"unused h.0.attn.bias_extra$"):
        _checks.check_checkpoint_keys("ckpt", [*expected, "h.0.attn.bias_extra"], expected, skip=r"h\.\d+\.attn\.bias")


# ---------------------------------------------------------------------------
# checked_by: the check runs at the outermost checked call only
# ---------------------------------------------------------------------------

def _checked(log, name, body=None):
    """A function checked_by a check that logs ``(name, x)``; its body logs and runs ``body(x)``."""
    def check(x):
        log.append(("check", name, x))

    @_checks.checked_by(check)
    def fn(x):
        """fn's docstring"""
        log.append(("run", name, x))
        return body(x) if body else x

    return fn


def test_checked_by_checks_the_outermost_call_only():
    log = []
    inner = _checked(log, "inner")
    outer = _checked(log, "outer", body=lambda x: inner(x + 1))
    assert outer(1) == 2
    assert log == [("check", "outer", 1), ("run", "outer", 1), ("run", "inner", 2)]  # inner: no check
    log.clear()
    assert inner(5) == 5  # called from outside: checked
    assert log == [("check", "inner", 5), ("run", "inner", 5)]
    assert inner.__name__ == "fn" and inner.__doc__ == "fn's docstring"  # functools.wraps


def test_checked_by_needs_the_functions_parameters():
    def check(self, x):
        pass

    with pytest.raises(TypeError, match=r"check\(self, x\) must take the parameters of "
                                        r".*forward\(self, x, mask=None\)"):
        @_checks.checked_by(check)
        def forward(self, x, mask=None):
            pass

    def check_default(self, x, mask=1):
        pass

    with pytest.raises(TypeError, match="must take the parameters"):  # a different default is a different call
        @_checks.checked_by(check_default)
        def forward2(self, x, mask=None):
            pass

    with pytest.raises(TypeError, match="takes the check function itself"):
        _checks.checked_by("_check_inputs")


def test_nesting_resets_after_an_exception_in_a_check_or_a_body():
    log = []

    def fail(x):
        raise ZeroDivisionError

    inner = _checked(log, "inner")
    failing_body = _checked(log, "outer", body=fail)
    with pytest.raises(ZeroDivisionError):
        failing_body(1)

    def bad_check(x):
        raise ValueError("bad x")

    failing_check = _checks.checked_by(bad_check)(lambda x: x)
    with pytest.raises(ValueError, match="bad x"):
        failing_check(1)
    log.clear()
    inner(2)
    assert log == [("check", "inner", 2), ("run", "inner", 2)]  # outside again: checked

    # the same with the course's layers: a sub-layer fails inside a checked call ...
    layer = EncoderLayer(D, H, 16)
    x, bad_mask = torch.randn(B, T, D), torch.ones(T, T + 1, dtype=torch.bool)
    handle = layer.ffn.register_forward_hook(lambda *args: fail(None))
    with pytest.raises(ZeroDivisionError):
        layer(x)
    handle.remove()
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model\)"):  # ... or a check fails
        layer(torch.randn(B, T, 4))
    # and the next calls from outside are checked, down to a sub-layer called directly
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(B, h, T, T\)"):
        layer(x, bad_mask)
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(B, h, Tq, Tk\)"):
        layer.self_attn(x, x, x, bad_mask)


def test_checks_are_counted_per_thread():
    """A checked call running in one thread does not switch off the checks of another thread."""
    layer, errors = EncoderLayer(D, H, 16), []

    def other_thread():
        try:
            layer(torch.randn(B, T, 4))
        except ValueError as e:
            errors.append(str(e))

    def start_other_thread(x):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()

    _checked([], "outer", body=start_other_thread)(0)  # the other thread starts inside a checked call
    assert len(errors) == 1 and errors[0].startswith("x must have shape (B, T, d_model)")


# ---------------------------------------------------------------------------
# Checked once: count the checks one call makes
# ---------------------------------------------------------------------------

@pytest.fixture
def checks(monkeypatch):
    """Spies on _checks: counts each check's calls by (check, argument name)."""
    counts = collections.Counter()

    def spy(fn_name, real):
        def counting(*args, **kwargs):
            name = kwargs.get("name", "mask") if fn_name == "check_mask" else args[0]
            counts[fn_name, name] += 1
            return real(*args, **kwargs)
        return counting

    for fn_name in ("check_mask", "check_token_ids", "check_stream"):
        monkeypatch.setattr(_checks, fn_name, spy(fn_name, getattr(_checks, fn_name)))
    return counts


def calls(counts, fn_name) -> dict:
    """{argument name: number of calls} of one check."""
    return {name: n for (fn, name), n in counts.items() if fn == fn_name}


def test_multi_head_attention_checks_its_mask_once(checks):
    mha = MultiHeadAttention(D, H)
    x = torch.randn(B, T, D)
    mha(x, x, x, mask=causal_mask(T))
    assert calls(checks, "check_mask") == {"mask": 1}
    assert calls(checks, "check_stream") == {"query": 1, "key": 1, "value": 1}


def test_encoder_layer_checks_x_and_its_mask_once(checks):
    EncoderLayer(D, H, 16)(torch.randn(B, T, D), causal_mask(T))
    assert calls(checks, "check_mask") == {"mask": 1}
    assert calls(checks, "check_stream") == {"x": 1}  # not again in the attention or the feed-forward network


def test_decoder_layer_checks_each_mask_once(checks):
    DecoderLayer(D, H, 16)(torch.randn(B, T, D), torch.randn(B, S, D), src_mask=torch.ones(B, 1, 1, S, dtype=bool),
                           tgt_mask=causal_mask(T))
    assert calls(checks, "check_mask") == {"src_mask": 1, "tgt_mask": 1}
    assert calls(checks, "check_stream") == {"x": 1, "memory": 1}


def test_stacks_check_their_masks_once_not_once_per_layer(checks):
    src, tgt = torch.randint(0, 11, (B, S)), torch.randint(0, 13, (B, T))
    memory = Encoder(11, D, H, 16, num_layers=3, max_len=8)(src, padding_mask(src, 0))
    assert calls(checks, "check_mask") == {"src_mask": 1}
    Decoder(13, D, H, 16, num_layers=3, max_len=8)(tgt, memory.detach(), padding_mask(src, 0), causal_mask(T))
    assert calls(checks, "check_mask") == {"src_mask": 2, "tgt_mask": 1}
    assert calls(checks, "check_token_ids") == {"src": 1, "tgt": 1}
    assert calls(checks, "check_stream") == {"memory": 1}


def test_whole_models_check_their_ids_once_and_their_own_masks_never(checks):
    model = EncoderDecoder(11, 13, d_model=D, num_heads=H, d_ff=16, num_layers=2, max_len=8)
    model(torch.randint(1, 11, (B, S)), torch.randint(1, 13, (B, T)))
    assert calls(checks, "check_token_ids") == {"src": 1, "tgt_in": 1}
    model.greedy_decode(torch.randint(1, 11, (B, S)), max_len=6, bos_id=1, eos_id=2)
    assert calls(checks, "check_token_ids") == {"src": 2, "tgt_in": 1}  # the source once, the steps never
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=H, n_embd=D))
    gpt(torch.randint(0, 11, (B, T)))
    gpt.generate(torch.randint(0, 11, (B, 2)), max_new_tokens=10)  # 10 steps, one check
    assert calls(checks, "check_token_ids")["idx"] == 2
    bert = BertModel(BertConfig(vocab_size=11, hidden_size=D, num_hidden_layers=3, num_attention_heads=H,
                                intermediate_size=16, max_position_embeddings=8))
    bert(torch.randint(0, 11, (B, T)), attention_mask=torch.ones(B, T, dtype=torch.long))
    assert calls(checks, "check_token_ids")["input_ids"] == 1
    assert calls(checks, "check_mask") == {}  # every mask above was built inside, from checked ids
    assert calls(checks, "check_stream") == {}  # and no layer checks its input again


def test_attention_functions_check_their_mask_once(checks):
    q, k = torch.randn(B, T, D), torch.randn(B, S, D)
    mask = torch.ones(B, 1, S, dtype=torch.bool)
    scaled_dot_product_attention(q, k, k, mask=mask)
    attend(q, k, mask=mask)
    masked_softmax(torch.randn(B, T, S), mask)
    assert calls(checks, "check_mask") == {"mask": 3}


def test_a_learners_module_calling_a_course_layer_gets_its_checks(checks):
    class MyBlock(nn.Module):  # not checked_by anything: the layer it calls checks its input
        def __init__(self):
            super().__init__()
            self.layer = EncoderLayer(D, H, 16)

        def forward(self, x, mask=None):
            return x + self.layer(x, mask)

    block = MyBlock()
    block(torch.randn(B, T, D), causal_mask(T))
    assert calls(checks, "check_mask") == {"mask": 1}  # by the layer, not again by its attention
    with pytest.raises(ValueError, match=r"^mask must be broadcastable to \(B, h, T, T\)"):
        block(torch.randn(B, T, D), torch.ones(T, T + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^x must have shape \(B, T, d_model\) with d_model=8"):
        block(torch.randn(B, T, 4))


def test_public_modules_still_reject_bad_input_directly():
    mha = MultiHeadAttention(D, H)
    x = torch.randn(B, T, D)
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(B, h, Tq, Tk\)"):
        mha(x, x, x, mask=torch.ones(T, T + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"query must have shape \(B, T, d_model=8\)"):
        mha(torch.randn(T, D), x, x)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., d_model=8\)"):
        FeedForward(D, 16)(torch.randn(T, 4))
    with pytest.raises(ValueError, match=r"src_mask must be broadcastable to \(B, h, S, S\)"):
        Encoder(11, D, H, 16, 1, max_len=8)(torch.randint(0, 11, (B, S)), torch.ones(B, 1, 1, T, dtype=torch.bool))
    with pytest.raises(ValueError, match="tgt has length L=9, more than max_len=8"):
        Decoder(13, D, H, 16, 1, max_len=8)(torch.randint(0, 13, (B, 9)), torch.randn(B, S, D))
    with pytest.raises(ValueError, match="memory must have the batch size of tgt"):
        Decoder(13, D, H, 16, 1, max_len=8)(torch.randint(0, 13, (B, T)), torch.randn(B + 1, S, D))
