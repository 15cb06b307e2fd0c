"""Decoding with a key/value cache gives what re-running the whole prefix gives.

``EncoderDecoder.greedy_decode(use_cache=True)`` against ``use_cache=False``, ``GPT.generate`` likewise,
and the layers' cache underneath: the same tokens, logits equal to float rounding, the same attention
maps. Random models of several sizes, post-norm and pre-norm, with and without the ablation switches.
"""

import pytest
import torch

from course_lib.attention import KVCache, MultiHeadAttention, causal_mask
from course_lib.encoder_decoder import EncoderDecoder
from course_lib.gpt import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAD, BOS = 0, 1
SIZES = [  # d_model, num_heads, num_layers
    (16, 2, 1),
    (32, 4, 2),
    (24, 3, 3),
]


def _translator(d, h, layers, norm_first, seed=0, vocab=9, **parts):
    torch.manual_seed(seed)
    return EncoderDecoder(11, vocab, d_model=d, num_heads=h, d_ff=2 * d, num_layers=layers, max_len=16,
                          dropout=0.1, norm_first=norm_first, **parts)


def _sources(B=6, S=7, seed=1):
    """(B, S) source ids with rows of different lengths (the rest is padding)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(2, 11, (B, S), generator=g)
    for row, length in enumerate(torch.randint(2, S + 1, (B,), generator=g).tolist()):
        src[row, length:] = PAD
    return src


def _decoding_case(d, h, layers, norm_first, max_len=12, **parts):
    """(model, src, eos): a random model (the first seed that fits) and a target id it emits at different
    steps in different rows of ``src``, so that decoding ends some rows early, others later or never."""
    src = _sources()
    for seed in range(10):
        model = _translator(d, h, layers, norm_first, seed=seed, **parts)
        # with eos_id = <bos>, which is never emitted, every row runs to max_len
        free = model.greedy_decode(src, max_len, BOS, eos_id=BOS, use_cache=False)
        for eos in range(2, model.decoder.embedding.vocab_size):
            first = [(row == eos).nonzero()[0, 0].item() if (row == eos).any() else max_len for row in free]
            if len(set(first)) >= 3:
                return model, src, eos
    pytest.fail("no random model ends its rows at different steps")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("d, h, layers", SIZES)
def test_decoder_with_a_cache_gives_the_logits_and_maps_of_a_full_run(d, h, layers, norm_first):
    model = _translator(d, h, layers, norm_first).eval()
    src = _sources()
    tgt = torch.randint(2, 9, (src.shape[0], 8))
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        full = model.decode(tgt, memory, src_mask, tgt_pad_id=-1)  # (B, T, V)
        full_maps = model.attention_maps()
        cache = model.decoder.new_cache()
        steps = [model.decoder(tgt[:, t:t + 1], memory, src_mask, cache=cache) for t in range(tgt.shape[1])]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert len(cache[0][0]) == tgt.shape[1] and len(cache[0][1]) == src.shape[1]  # C projected once
    cached_maps = model.attention_maps()
    for kind in ("decoder_self", "cross"):  # one row per step: the causal map of the full run
        for got, expected in zip(cached_maps[kind], full_maps[kind]):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("parts", [{}, {"positions": False}], ids=["all parts", "no positions"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("d, h, layers", SIZES)
def test_greedy_decode_with_the_cache_gives_the_same_tokens(d, h, layers, norm_first, parts):
    model, src, eos = _decoding_case(d, h, layers, norm_first, **parts)
    model.train()  # decoding switches to eval itself
    slow = model.greedy_decode(src, 12, BOS, eos, use_cache=False)
    slow_maps = model.attention_maps()
    fast = model.greedy_decode(src, 12, BOS, eos)  # use_cache=True is the default
    assert torch.equal(fast, slow)
    ends = [(row == eos).nonzero()[0, 0].item() if (row == eos).any() else None for row in slow]
    assert len(set(ends)) >= 3  # rows finished at different steps (and finished rows kept <eos>)
    fast_maps = model.attention_maps()
    for kind in slow_maps:
        for got, expected in zip(fast_maps[kind], slow_maps[kind]):
            assert got.shape == expected.shape
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert model.training  # the mode is given back


def test_without_the_causal_mask_nothing_can_be_cached_so_greedy_decode_re_runs_the_prefix():
    model, src, eos = _decoding_case(32, 4, 2, False, max_len=10, causal=False)
    tgt = torch.randint(2, 9, (src.shape[0], 6))
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        full = model.decode(tgt, memory, src_mask, tgt_pad_id=-1)
        cache = model.decoder.new_cache()
        steps = torch.cat([model.decoder(tgt[:, t:t + 1], memory, src_mask, cache=cache) for t in range(6)], 1)
    # earlier positions see later ones: a cache would freeze them, and the second layer would read stale keys
    assert not torch.allclose(steps[:, :-1], full[:, :-1], atol=1e-3)
    assert torch.equal(model.greedy_decode(src, 10, BOS, eos), model.greedy_decode(src, 10, BOS, eos, use_cache=False))


def test_decoder_cache_refuses_what_does_not_fit():
    model = _translator(16, 2, 2, False).eval()
    src = _sources(B=2)
    memory, src_mask = model.encode(src)
    with pytest.raises(TypeError, match="cache must be None or Decoder.new_cache"):
        model.decoder(torch.tensor([[BOS], [BOS]]), memory, src_mask, cache=[KVCache()])
    with pytest.raises(TypeError, match="use_cache must be True or False"):
        model.greedy_decode(src, 5, BOS, 2, use_cache=1)
    cache = model.decoder.new_cache()
    model.decoder(torch.full((2, 15), BOS), memory, src_mask, cache=cache)
    with pytest.raises(ValueError, match="positional table"):  # max_len = 16 positions
        model.decoder(torch.full((2, 2), BOS), memory, src_mask, cache=cache)
    with pytest.raises(ValueError, match="a cache serves one batch"):
        model.decoder(torch.full((1, 1), BOS), memory[:1], src_mask[:1], cache=cache)


def test_attention_cache_appends_keys_and_reuses_the_memory():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x, memory = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    full, _ = mha(x, x, x, causal_mask(5))
    cross_full, _ = mha(x, memory, memory)
    grow, static = KVCache(), KVCache(static=True)
    rows, cross_rows = [], []
    for t in range(5):
        xt = x[:, t:t + 1]
        rows.append(mha(xt, xt, xt, cache=grow)[0])
        cross_rows.append(mha(xt, memory, memory, cache=static)[0])
        assert len(grow) == t + 1 and len(static) == 7
    torch.testing.assert_close(torch.cat(rows, 1), full, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(torch.cat(cross_rows, 1), cross_full, atol=1e-6, rtol=1e-5)
    with pytest.raises(TypeError, match="cache must be a KVCache"):
        mha(x, x, x, cache=(grow.k, grow.v))
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(B, h, Tq, Tk\) = \(2, 4, 1, 6\)"):
        mha(x[:, :1], x[:, :1], x[:, :1], torch.ones(1, 5, dtype=torch.bool), cache=grow)  # 5 + 1 keys


# ---------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------

def _gpt(n_layer, n_head, n_embd, block_size=16, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=13, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                         dropout=0.1))


@pytest.mark.parametrize("n_layer, n_head, n_embd", [(1, 2, 16), (2, 4, 32), (3, 3, 24)])
def test_gpt_hidden_states_with_a_cache_equal_a_full_run(n_layer, n_head, n_embd):
    model = _gpt(n_layer, n_head, n_embd).eval()
    idx = torch.randint(0, 13, (3, 11))
    with torch.no_grad():
        full = model.hidden_states(idx)
        cache = model.new_cache()
        parts = [model.hidden_states(idx[:, :4], cache)]  # a prompt of 4, then one token at a time
        parts += [model.hidden_states(idx[:, t:t + 1], cache) for t in range(4, 11)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    maps = [block.attn_weights for block in model.blocks]
    assert maps[0].shape == (3, n_head, 11, 11) and (maps[0].triu(1) == 0).all()


@pytest.mark.parametrize("prompt, new", [(3, 10), (5, 30), (20, 6)],
                         ids=["inside the window", "past block_size", "prompt longer than block_size"])
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, 5)])
@pytest.mark.parametrize("n_layer, n_head, n_embd", [(1, 2, 16), (2, 4, 32)])
def test_gpt_generate_with_the_cache_samples_the_same_tokens(n_layer, n_head, n_embd, temperature, top_k,
                                                             prompt, new):
    model = _gpt(n_layer, n_head, n_embd).train()
    idx = torch.randint(0, 13, (4, prompt))
    runs = {}
    for use_cache in (False, True):
        g = torch.Generator().manual_seed(7)
        runs[use_cache] = model.generate(idx, new, temperature, top_k, generator=g, use_cache=use_cache)
    assert runs[True].shape == (4, prompt + new)
    assert torch.equal(runs[True], runs[False])
    assert model.training


def test_gpt_cache_refuses_what_does_not_fit():
    model = _gpt(2, 2, 16, block_size=8).eval()
    cache = model.new_cache()
    model.hidden_states(torch.zeros(1, 6, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="block_size=8"):
        model.hidden_states(torch.zeros(1, 3, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="a cache serves one batch"):
        model.hidden_states(torch.zeros(2, 1, dtype=torch.long), cache)
    with pytest.raises(TypeError, match="cache must be None or GPT.new_cache"):
        model.hidden_states(torch.zeros(1, 1, dtype=torch.long), cache[:1])
    with pytest.raises(TypeError, match="use_cache must be True or False"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 2, use_cache="yes")
