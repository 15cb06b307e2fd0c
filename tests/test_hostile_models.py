"""Hostile and careless input to attention, the Transformer layers, the encoder-decoder, GPT and its recipes.

Each case asserts the exception's exact type and that its message names the argument: never a
torch RuntimeError, an IndexError from deep inside, a NaN or a silent acceptance. The property
tests (hypothesis) draw attention inputs: valid ones always give finite outputs and weights that
sum to 1 (or 0 on a fully masked row), equal to torch's own; any other shapes or dtypes give an
answer or a ValueError / TypeError, never a torch error. Tiny models only: seconds.
"""

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch.nn import functional as F

from course_lib import attention as A
from course_lib import diagnostics as D
from course_lib import transformer as Tr
from course_lib.data.stories import MoodExample
from course_lib.encoder_decoder import Decoder, Encoder, EncoderDecoder
from course_lib.gpt import IGNORE_INDEX, GPT, GPTConfig, GPTForClassification, next_token_probs
from course_lib.tasks import gpt as recipes
from course_lib.tokenizers import WordVocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAN, INF = float("nan"), float("inf")
torch.manual_seed(0)


def f32(*shape):
    return torch.randn(*shape)


def f64(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def ids(*shape, high=9):
    return torch.randint(1, high, shape)


def bools(*shape):
    return torch.ones(*shape, dtype=torch.bool)


# tiny models, built once: every case below refuses its input before any of them computes
MHA = A.MultiHeadAttention(8, 2)
MHA64 = A.MultiHeadAttention(8, 2).double()
ADDITIVE, BILINEAR = A.AdditiveScore(4, 4, 3), A.BilinearScore(4, 4)
FFN = Tr.FeedForward(8, 16)
ENC_LAYER, DEC_LAYER = Tr.EncoderLayer(8, 2, 16).eval(), Tr.DecoderLayer(8, 2, 16).eval()
ED = EncoderDecoder(10, 11, d_model=8, num_heads=2, d_ff=16, num_layers=1, max_len=8).eval()
MEMORY, SRC_MASK = ED.encode(ids(2, 4))
CONFIG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
MODEL = GPT(CONFIG).eval()
CLF = GPTForClassification(MODEL, 3).eval()
VOCAB = WordVocab("a b c d e".split())
EXAMPLES = [MoodExample("a b", 0, "b"), MoodExample("c", 1, "c")]
SIZES = dict(d_model=8, num_heads=2, d_ff=16, num_layers=1, max_len=8)
GOOD_CONFIG = dict(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)


def case(name, call, error, argument):
    """``call()`` must raise exactly ``error`` with ``argument`` named in its message."""
    return pytest.param(call, error, argument, id=name)


ATTENTION_CASES = [
    # scaled_dot_product_attention
    case("sdpa float32 q, float64 k", lambda: A.scaled_dot_product_attention(f32(2, 3, 4), f64(2, 5, 4), f32(2, 5, 6)),
         TypeError, "k"),
    case("sdpa float64 v", lambda: A.scaled_dot_product_attention(f32(2, 3, 4), f32(2, 5, 4), f64(2, 5, 6)),
         TypeError, "v"),
    case("sdpa int q", lambda: A.scaled_dot_product_attention(ids(2, 3, 4), f32(2, 5, 4), f32(2, 5, 6)),
         TypeError, "q"),
    case("sdpa list q", lambda: A.scaled_dot_product_attention([[1.0]], f32(2, 5, 4), f32(2, 5, 6)), TypeError, "q"),
    case("sdpa numpy k", lambda: A.scaled_dot_product_attention(f32(2, 3, 4), np.zeros((2, 5, 4)), f32(2, 5, 6)),
         TypeError, "k"),
    case("sdpa 1-D q", lambda: A.scaled_dot_product_attention(f32(4), f32(5, 4), f32(5, 6)), ValueError, "q"),
    case("sdpa d_k = 0", lambda: A.scaled_dot_product_attention(f32(3, 0), f32(5, 0), f32(5, 6)), ValueError, "d_k"),
    case("sdpa widths differ", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 3), f32(5, 6)),
         ValueError, "d_k"),
    case("sdpa lengths differ", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 4), f32(4, 6)),
         ValueError, "Tk"),
    case("sdpa batch axes clash", lambda: A.scaled_dot_product_attention(f32(3, 3, 4), f32(2, 5, 4), f32(2, 5, 6)),
         ValueError, "q"),
    case("sdpa int mask", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 4), f32(5, 6),
                                                                 torch.ones(3, 5, dtype=torch.long)),
         TypeError, "mask"),
    case("sdpa mask shape", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 4), f32(5, 6), bools(3, 4)),
         ValueError, "mask"),
    case("sdpa mask adds axes", lambda: A.scaled_dot_product_attention(f32(2, 3, 4), f32(2, 5, 4), f32(2, 5, 6),
                                                                       bools(7, 2, 3, 5)), ValueError, "mask"),
    case("sdpa dropout 1.5", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 4), f32(5, 6), dropout_p=1.5),
         ValueError, "dropout_p"),
    case("sdpa dropout NaN", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 4), f32(5, 6), dropout_p=NAN),
         ValueError, "dropout_p"),
    case("sdpa generator int", lambda: A.scaled_dot_product_attention(f32(3, 4), f32(5, 4), f32(5, 6), None, 0.1, 3),
         TypeError, "generator"),
    # masked_softmax
    case("masked_softmax list", lambda: A.masked_softmax([1.0, 2.0]), TypeError, "scores"),
    case("masked_softmax int scores", lambda: A.masked_softmax(torch.arange(3)), TypeError, "scores"),
    case("masked_softmax 0-d scores", lambda: A.masked_softmax(torch.tensor(1.0)), ValueError, "scores"),
    case("masked_softmax int mask", lambda: A.masked_softmax(f32(3, 4), torch.ones(3, 4, dtype=torch.long)),
         TypeError, "mask"),
    # attend
    case("attend float64 keys", lambda: A.attend(f32(2, 4), f64(2, 5, 4)), TypeError, "keys"),
    case("attend float64 values", lambda: A.attend(f32(2, 4), f32(2, 5, 4), f64(2, 5, 3)), TypeError, "values"),
    case("attend list query", lambda: A.attend([1.0] * 4, f32(2, 5, 4)), TypeError, "query"),
    case("attend batch clash", lambda: A.attend(f32(3, 4), f32(2, 5, 4)), ValueError, "query"),
    case("attend values batch clash", lambda: A.attend(f32(2, 4), f32(2, 5, 4), f32(3, 5, 4)), ValueError, "values"),
    case("attend values length", lambda: A.attend(f32(2, 4), f32(2, 5, 4), f32(2, 4, 4)), ValueError, "values"),
    case("attend query rank", lambda: A.attend(f32(1, 2, 3, 4), f32(2, 5, 4)), ValueError, "query"),
    case("attend score name", lambda: A.attend(f32(2, 4), f32(2, 5, 4), score="dot"), TypeError, "score"),
    case("attend score class", lambda: A.attend(f32(2, 4), f32(2, 5, 4), score=A.DotScore), TypeError, "score"),
    case("attend score returns int", lambda: A.attend(f32(2, 4), f32(2, 5, 4), score=lambda q, k: 1),
         TypeError, "score"),
    case("attend score wrong shape", lambda: A.attend(f32(2, 4), f32(2, 5, 4), score=lambda q, k: f32(5)),
         ValueError, "score"),
    case("attend mask shape", lambda: A.attend(f32(2, 4), f32(2, 5, 4), mask=bools(2, 4)), ValueError, "mask"),
    # score modules
    case("DotScore float64 keys", lambda: A.DotScore()(f32(3, 4), f64(5, 4)), TypeError, "keys"),
    case("ScaledDotScore width 0", lambda: A.ScaledDotScore()(f32(3, 0), f32(5, 0)), ValueError, "query"),
    case("ScaledDotScore batch clash", lambda: A.ScaledDotScore()(f32(2, 3, 4), f32(3, 5, 4)), ValueError, "keys"),
    case("DotScore list", lambda: A.DotScore()([[1.0] * 4], f32(5, 4)), TypeError, "query"),
    case("AdditiveScore float64 input", lambda: ADDITIVE(f64(3, 4), f64(5, 4)), TypeError, "query"),
    case("AdditiveScore width", lambda: ADDITIVE(f32(3, 5), f32(5, 4)), ValueError, "query"),
    case("BilinearScore float64 keys", lambda: BILINEAR(f32(3, 4), f64(5, 4)), TypeError, "keys"),
    case("BilinearScore rank clash", lambda: BILINEAR(f32(2, 2, 3, 4), f32(3, 5, 4)), ValueError, "keys"),
    case("AdditiveScore d_query 0", lambda: A.AdditiveScore(0, 4, 4), ValueError, "d_query"),
    case("AdditiveScore d_hidden -1", lambda: A.AdditiveScore(4, 4, -1), ValueError, "d_hidden"),
    case("AdditiveScore d_key bool", lambda: A.AdditiveScore(4, True, 4), ValueError, "d_key"),
    case("BilinearScore d_query float", lambda: A.BilinearScore(4.5, 4), ValueError, "d_query"),
    case("BilinearScore d_key -2", lambda: A.BilinearScore(4, -2), ValueError, "d_key"),
    case("make_score unknown", lambda: A.make_score("cosine", 4), ValueError, "name"),
    case("make_score name list", lambda: A.make_score(["dot"], 4), ValueError, "name"),
    case("make_score d_query 0", lambda: A.make_score("dot", 0), ValueError, "d_query"),
    case("make_score d_hidden 0", lambda: A.make_score("additive", 4, 4, 0), ValueError, "d_hidden"),
    case("make_score d_key -1", lambda: A.make_score("bilinear", 4, -1), ValueError, "d_key"),
    case("make_score dot widths", lambda: A.make_score("dot", 4, 5), ValueError, "d_key"),
    # MultiHeadAttention
    case("MHA dropout 1.5", lambda: A.MultiHeadAttention(8, 2, dropout=1.5), ValueError, "dropout"),
    case("MHA dropout NaN", lambda: A.MultiHeadAttention(8, 2, dropout=NAN), ValueError, "dropout"),
    case("MHA heads divide", lambda: A.MultiHeadAttention(8, 3), ValueError, "num_heads"),
    case("MHA d_model 0", lambda: A.MultiHeadAttention(0, 2), ValueError, "d_model"),
    case("MHA num_heads bool", lambda: A.MultiHeadAttention(8, True), ValueError, "num_heads"),
    case("MHA bias string", lambda: A.MultiHeadAttention(8, 2, bias="yes"), TypeError, "bias"),
    case("MHA float64 query", lambda: MHA(f64(2, 3, 8), f32(2, 3, 8), f32(2, 3, 8)), TypeError, "query"),
    case("MHA float64 value", lambda: MHA(f32(2, 3, 8), f32(2, 3, 8), f64(2, 3, 8)), TypeError, "value"),
    case("MHA float16 input", lambda: MHA(*(f32(2, 3, 8).half(),) * 3), TypeError, "query"),
    case("float64 MHA, float32 input", lambda: MHA64(*(f32(2, 3, 8),) * 3), TypeError, "query"),
    case("MHA width", lambda: MHA(*(f32(2, 3, 6),) * 3), ValueError, "query"),
    case("MHA 2-D query", lambda: MHA(f32(3, 8), f32(2, 3, 8), f32(2, 3, 8)), ValueError, "query"),
    case("MHA key/value lengths", lambda: MHA(f32(2, 3, 8), f32(2, 3, 8), f32(2, 4, 8)), ValueError, "value"),
    case("MHA batch", lambda: MHA(f32(2, 3, 8), f32(3, 3, 8), f32(3, 3, 8)), ValueError, "key"),
    case("MHA list key", lambda: MHA(f32(2, 3, 8), [[1.0]], f32(2, 3, 8)), TypeError, "key"),
    case("MHA int mask", lambda: MHA(*(f32(2, 3, 8),) * 3, torch.ones(3, 3, dtype=torch.int)), TypeError, "mask"),
    case("MHA mask shape", lambda: MHA(*(f32(2, 3, 8),) * 3, bools(3, 4)), ValueError, "mask"),
    # masks
    case("causal_mask 0", lambda: A.causal_mask(0), ValueError, "T"),
    case("causal_mask bool", lambda: A.causal_mask(True), ValueError, "T"),
    case("causal_mask tensor", lambda: A.causal_mask(torch.tensor(3)), ValueError, "T"),
    case("causal_mask device", lambda: A.causal_mask(3, device="gpu0"), ValueError, "device"),
    case("padding_mask list", lambda: A.padding_mask([[1, 2]], 0), TypeError, "token_ids"),
    case("padding_mask float ids", lambda: A.padding_mask(f32(1, 2), 0), TypeError, "token_ids"),
    case("padding_mask 1-D", lambda: A.padding_mask(ids(3), 0), ValueError, "token_ids"),
    case("padding_mask pad_id str", lambda: A.padding_mask(ids(1, 2), "0"), TypeError, "pad_id"),
    case("padding_mask pad_id None", lambda: A.padding_mask(ids(1, 2), None), TypeError, "pad_id"),
    case("padding_mask pad_id float", lambda: A.padding_mask(ids(1, 2), 0.5), TypeError, "pad_id"),
]

TRANSFORMER_CASES = [
    case("PE max_len 0", lambda: Tr.sinusoidal_positional_encoding(0, 4), ValueError, "max_len"),
    case("PE d_model float", lambda: Tr.sinusoidal_positional_encoding(4, 2.0), ValueError, "d_model"),
    case("FFN dropout", lambda: Tr.FeedForward(8, 16, dropout=1.5), ValueError, "dropout"),
    case("FFN d_ff 0", lambda: Tr.FeedForward(8, 0), ValueError, "d_ff"),
    case("FFN activation list", lambda: Tr.FeedForward(8, 16, activation=["relu"]), ValueError, "activation"),
    case("FFN activation unknown", lambda: Tr.FeedForward(8, 16, activation="tanh"), ValueError, "activation"),
    case("FFN bias", lambda: Tr.FeedForward(8, 16, bias="x"), TypeError, "bias"),
    case("FFN float64 x", lambda: FFN(f64(2, 8)), TypeError, "x"),
    case("FFN 0-d x", lambda: FFN(torch.tensor(1.0)), ValueError, "x"),
    case("FFN list x", lambda: FFN([1.0] * 8), TypeError, "x"),
    case("EncoderLayer eps -1", lambda: Tr.EncoderLayer(8, 2, 16, layer_norm_eps=-1), ValueError, "layer_norm_eps"),
    case("EncoderLayer eps 0", lambda: Tr.EncoderLayer(8, 2, 16, layer_norm_eps=0), ValueError, "layer_norm_eps"),
    case("EncoderLayer eps NaN", lambda: Tr.EncoderLayer(8, 2, 16, layer_norm_eps=NAN), ValueError, "layer_norm_eps"),
    case("EncoderLayer eps str", lambda: Tr.EncoderLayer(8, 2, 16, layer_norm_eps="1e-5"), TypeError,
         "layer_norm_eps"),
    case("EncoderLayer dropout", lambda: Tr.EncoderLayer(8, 2, 16, dropout=1.5), ValueError, "dropout"),
    case("EncoderLayer norm_first", lambda: Tr.EncoderLayer(8, 2, 16, norm_first=1), TypeError, "norm_first"),
    case("EncoderLayer bias", lambda: Tr.EncoderLayer(8, 2, 16, bias=0), TypeError, "bias"),
    case("EncoderLayer heads", lambda: Tr.EncoderLayer(8, 3, 16), ValueError, "num_heads"),
    case("EncoderLayer float64 x", lambda: ENC_LAYER(f64(2, 3, 8)), TypeError, "x"),
    case("EncoderLayer 2-D x", lambda: ENC_LAYER(f32(3, 8)), ValueError, "x"),
    case("EncoderLayer int mask", lambda: ENC_LAYER(f32(2, 3, 8), torch.ones(3, 3, dtype=torch.long)), TypeError,
         "mask"),
    case("DecoderLayer dropout", lambda: Tr.DecoderLayer(8, 2, 16, dropout=-0.1), ValueError, "dropout"),
    case("DecoderLayer norm_first", lambda: Tr.DecoderLayer(8, 2, 16, norm_first="yes"), TypeError, "norm_first"),
    case("DecoderLayer float64 x", lambda: DEC_LAYER(f64(2, 3, 8), f32(2, 4, 8)), TypeError, "x"),
    case("DecoderLayer float64 memory", lambda: DEC_LAYER(f32(2, 3, 8), f64(2, 4, 8)), TypeError, "memory"),
    case("DecoderLayer memory batch", lambda: DEC_LAYER(f32(2, 3, 8), f32(3, 4, 8)), ValueError, "memory"),
    case("DecoderLayer memory list", lambda: DEC_LAYER(f32(2, 3, 8), [1.0]), TypeError, "memory"),
    case("DecoderLayer src_mask", lambda: DEC_LAYER(f32(2, 3, 8), f32(2, 4, 8), bools(3, 5)), ValueError, "src_mask"),
    case("DecoderLayer tgt_mask", lambda: DEC_LAYER(f32(2, 3, 8), f32(2, 4, 8), None, torch.ones(3, 3)), TypeError,
         "tgt_mask"),
    case("to_torch str", lambda: Tr.to_torch("layer"), TypeError, "layer"),
    case("init_normal int", lambda: Tr.init_normal(3), TypeError, "module"),
    case("init_normal std -1", lambda: Tr.init_normal(torch.nn.Linear(2, 2), std=-1), ValueError, "std"),
    case("init_normal std NaN", lambda: Tr.init_normal(torch.nn.Linear(2, 2), std=NAN), ValueError, "std"),
]

ENCODER_DECODER_CASES = [
    case("EncoderDecoder d_model 0", lambda: EncoderDecoder(10, 11, **{**SIZES, "d_model": 0}), ValueError, "d_model"),
    case("EncoderDecoder heads", lambda: EncoderDecoder(10, 11, **{**SIZES, "num_heads": 3}), ValueError, "num_heads"),
    case("EncoderDecoder d_ff 0", lambda: EncoderDecoder(10, 11, **{**SIZES, "d_ff": 0}), ValueError, "d_ff"),
    case("EncoderDecoder layers 2.0", lambda: EncoderDecoder(10, 11, **{**SIZES, "num_layers": 2.0}), ValueError,
         "num_layers"),
    case("EncoderDecoder max_len bool", lambda: EncoderDecoder(10, 11, **{**SIZES, "max_len": True}), ValueError,
         "max_len"),
    case("EncoderDecoder vocab 0", lambda: EncoderDecoder(0, 11, **SIZES), ValueError, "vocab_size"),
    case("EncoderDecoder dropout", lambda: EncoderDecoder(10, 11, **SIZES, dropout=1.0), ValueError, "dropout"),
    case("EncoderDecoder norm_first", lambda: EncoderDecoder(10, 11, **SIZES, norm_first=0), TypeError, "norm_first"),
    case("Encoder d_model 0", lambda: Encoder(10, 0, 2, 16, 1, 8), ValueError, "d_model"),
    case("Decoder d_model 0", lambda: Decoder(10, 0, 2, 16, 1, 8), ValueError, "d_model"),
    case("forward float src", lambda: ED(f32(2, 4), ids(2, 3)), TypeError, "src"),
    case("forward list src", lambda: ED([[1, 2]], ids(2, 3)), TypeError, "src"),
    case("forward 1-D src", lambda: ED(ids(4), ids(2, 3)), ValueError, "src"),
    case("forward src out of vocabulary", lambda: ED(torch.full((2, 4), 10), ids(2, 3)), ValueError, "src"),
    case("forward tgt_in out of vocabulary", lambda: ED(ids(2, 4), torch.full((2, 3), -1)), ValueError, "tgt_in"),
    case("forward src too long", lambda: ED(ids(2, 9), ids(2, 3)), ValueError, "src"),
    case("forward empty src", lambda: ED(ids(2, 0), ids(2, 3)), ValueError, "src"),
    case("forward no rows", lambda: ED(ids(0, 4), ids(0, 3)), ValueError, "src"),
    case("forward batch clash", lambda: ED(ids(2, 4), ids(3, 3)), ValueError, "tgt_in"),
    case("forward src_pad_id str", lambda: ED(ids(2, 4), ids(2, 3), src_pad_id="0"), TypeError, "src_pad_id"),
    case("forward tgt_pad_id None", lambda: ED(ids(2, 4), ids(2, 3), tgt_pad_id=None), TypeError, "tgt_pad_id"),
    case("encode src_pad_id float", lambda: ED.encode(ids(2, 4), 0.5), TypeError, "src_pad_id"),
    case("decode float64 memory", lambda: ED.decode(ids(2, 3), MEMORY.double(), SRC_MASK), TypeError, "memory"),
    case("decode memory width", lambda: ED.decode(ids(2, 3), f32(2, 4, 5), SRC_MASK), ValueError, "memory"),
    case("decode memory batch", lambda: ED.decode(ids(3, 3), MEMORY, SRC_MASK), ValueError, "memory"),
    case("decode int src_mask", lambda: ED.decode(ids(2, 3), MEMORY, SRC_MASK.long()), TypeError, "src_mask"),
    case("decode tgt_pad_id str", lambda: ED.decode(ids(2, 3), MEMORY, SRC_MASK, "x"), TypeError, "tgt_pad_id"),
    case("Decoder float64 memory", lambda: ED.decoder(ids(2, 3), MEMORY.double()), TypeError, "memory"),
    case("Encoder int src_mask", lambda: ED.encoder(ids(2, 4), torch.ones(4, 4, dtype=torch.long)), TypeError,
         "src_mask"),
    case("greedy max_len 0", lambda: ED.greedy_decode(ids(2, 4), 0, 1, 2), ValueError, "max_len"),
    case("greedy max_len bool", lambda: ED.greedy_decode(ids(2, 4), True, 1, 2), ValueError, "max_len"),
    case("greedy max_len float", lambda: ED.greedy_decode(ids(2, 4), 3.0, 1, 2), ValueError, "max_len"),
    case("greedy max_len None", lambda: ED.greedy_decode(ids(2, 4), None, 1, 2), ValueError, "max_len"),
    case("greedy max_len too long", lambda: ED.greedy_decode(ids(2, 4), 9, 1, 2), ValueError, "max_len"),
    case("greedy bos_id out of vocabulary", lambda: ED.greedy_decode(ids(2, 4), 5, 11, 2), ValueError, "bos_id"),
    case("greedy eos_id negative", lambda: ED.greedy_decode(ids(2, 4), 5, 1, -1), ValueError, "eos_id"),
    case("greedy bos_id float", lambda: ED.greedy_decode(ids(2, 4), 5, 1.5, 2), TypeError, "bos_id"),
    case("greedy eos_id None", lambda: ED.greedy_decode(ids(2, 4), 5, 1, None), TypeError, "eos_id"),
    case("greedy eos_id str", lambda: ED.greedy_decode(ids(2, 4), 5, 1, "x"), TypeError, "eos_id"),
    case("greedy bos_id bool", lambda: ED.greedy_decode(ids(2, 4), 5, True, 2), TypeError, "bos_id"),
    case("greedy src_pad_id None", lambda: ED.greedy_decode(ids(2, 4), 5, 1, 2, None), TypeError, "src_pad_id"),
    case("greedy no rows", lambda: ED.greedy_decode(ids(0, 4), 5, 1, 2), ValueError, "src"),
    case("greedy float src", lambda: ED.greedy_decode(f32(2, 4), 5, 1, 2), TypeError, "src"),
]

GPT_CASES = [
    case("config n_embd % n_head", lambda: GPTConfig(**{**GOOD_CONFIG, "n_embd": 10, "n_head": 4}), ValueError,
         "n_embd"),
    case("config n_embd 0", lambda: GPTConfig(**{**GOOD_CONFIG, "n_embd": 0}), ValueError, "n_embd"),
    case("config n_head 0", lambda: GPTConfig(**{**GOOD_CONFIG, "n_head": 0}), ValueError, "n_head"),
    case("config n_layer bool", lambda: GPTConfig(**{**GOOD_CONFIG, "n_layer": True}), ValueError, "n_layer"),
    case("config vocab float", lambda: GPTConfig(**{**GOOD_CONFIG, "vocab_size": 5.0}), ValueError, "vocab_size"),
    case("config block_size -1", lambda: GPTConfig(**{**GOOD_CONFIG, "block_size": -1}), ValueError, "block_size"),
    case("config eps -1", lambda: GPTConfig(**GOOD_CONFIG, layer_norm_eps=-1), ValueError, "layer_norm_eps"),
    case("config eps 0", lambda: GPTConfig(**GOOD_CONFIG, layer_norm_eps=0.0), ValueError, "layer_norm_eps"),
    case("config eps NaN", lambda: GPTConfig(**GOOD_CONFIG, layer_norm_eps=NAN), ValueError, "layer_norm_eps"),
    case("config eps inf", lambda: GPTConfig(**GOOD_CONFIG, layer_norm_eps=INF), ValueError, "layer_norm_eps"),
    case("config eps str", lambda: GPTConfig(**GOOD_CONFIG, layer_norm_eps="x"), TypeError, "layer_norm_eps"),
    case("config dropout 1.5", lambda: GPTConfig(**GOOD_CONFIG, dropout=1.5), ValueError, "dropout"),
    case("config dropout NaN", lambda: GPTConfig(**GOOD_CONFIG, dropout=NAN), ValueError, "dropout"),
    case("config bias 1", lambda: GPTConfig(**GOOD_CONFIG, bias=1), TypeError, "bias"),
    case("GPT(dict)", lambda: GPT(dict(GOOD_CONFIG)), TypeError, "config"),
    case("forward 1-D idx", lambda: MODEL(ids(4)), ValueError, "idx"),
    case("forward no rows", lambda: MODEL(ids(0, 4)), ValueError, "idx"),
    case("forward empty rows", lambda: MODEL(ids(2, 0)), ValueError, "idx"),
    case("forward float idx", lambda: MODEL(f32(2, 4)), TypeError, "idx"),
    case("forward numpy idx", lambda: MODEL(np.ones((2, 4), dtype=np.int64)), TypeError, "idx"),
    case("forward idx too long", lambda: MODEL(ids(1, 9)), ValueError, "idx"),
    case("forward idx out of vocabulary", lambda: MODEL(torch.full((1, 3), 11)), ValueError, "idx"),
    case("targets out of vocabulary", lambda: MODEL(ids(2, 4), torch.full((2, 4), 11)), ValueError, "targets"),
    case("targets negative", lambda: MODEL(ids(2, 4), torch.full((2, 4), -5)), ValueError, "targets"),
    case("targets all IGNORE_INDEX", lambda: MODEL(ids(2, 4), torch.full((2, 4), IGNORE_INDEX)), ValueError, "targets"),
    case("targets float", lambda: MODEL(ids(2, 4), f32(2, 4)), TypeError, "targets"),
    case("targets bool", lambda: MODEL(ids(2, 4), bools(2, 4)), TypeError, "targets"),
    case("targets shape", lambda: MODEL(ids(2, 4), ids(2, 3)), ValueError, "targets"),
    case("targets list", lambda: MODEL(ids(2, 4), [[1]]), TypeError, "targets"),
    case("hidden_states 1-D", lambda: MODEL.hidden_states(ids(4)), ValueError, "idx"),
    case("num_parameters str", lambda: MODEL.num_parameters("no"), TypeError, "embeddings"),
    case("generate 1-D idx", lambda: MODEL.generate(ids(3), 2), ValueError, "idx"),
    case("generate empty idx", lambda: MODEL.generate(ids(2, 0), 2), ValueError, "idx"),
    case("generate no rows", lambda: MODEL.generate(ids(0, 3), 2), ValueError, "idx"),
    case("generate list idx", lambda: MODEL.generate([[1, 2]], 2), TypeError, "idx"),
    case("generate idx out of vocabulary", lambda: MODEL.generate(torch.full((1, 2), 11), 2), ValueError, "idx"),
    case("generate max_new_tokens 0", lambda: MODEL.generate(ids(1, 2), 0), ValueError, "max_new_tokens"),
    case("generate max_new_tokens float", lambda: MODEL.generate(ids(1, 2), 2.0), ValueError, "max_new_tokens"),
    case("generate temperature 0", lambda: MODEL.generate(ids(1, 2), 2, 0), ValueError, "temperature"),
    case("generate temperature NaN", lambda: MODEL.generate(ids(1, 2), 2, NAN), ValueError, "temperature"),
    case("generate temperature inf", lambda: MODEL.generate(ids(1, 2), 2, INF), ValueError, "temperature"),
    case("generate temperature str", lambda: MODEL.generate(ids(1, 2), 2, "1"), TypeError, "temperature"),
    case("generate temperature None", lambda: MODEL.generate(ids(1, 2), 2, None), TypeError, "temperature"),
    case("generate top_k 0", lambda: MODEL.generate(ids(1, 2), 2, top_k=0), ValueError, "top_k"),
    case("generate top_k float", lambda: MODEL.generate(ids(1, 2), 2, top_k=2.5), ValueError, "top_k"),
    case("generate generator str", lambda: MODEL.generate(ids(1, 2), 2, generator="x"), TypeError, "generator"),
    case("generate stop_token out of vocabulary", lambda: MODEL.generate(ids(1, 2), 2, stop_token=11), ValueError,
         "stop_token"),
    case("generate stop_token str", lambda: MODEL.generate(ids(1, 2), 2, stop_token="x"), TypeError, "stop_token"),
    case("next_token_probs list", lambda: next_token_probs([1.0, 2.0]), TypeError, "logits"),
    case("next_token_probs V = 0", lambda: next_token_probs(f32(2, 0)), ValueError, "logits"),
    case("next_token_probs temperature 0", lambda: next_token_probs(f32(11), 0), ValueError, "temperature"),
    case("next_token_probs top_k 0", lambda: next_token_probs(f32(11), 1.0, 0), ValueError, "top_k"),
    case("classifier gpt None", lambda: GPTForClassification(None, 2), TypeError, "gpt"),
    case("classifier num_classes 0", lambda: GPTForClassification(MODEL, 0), ValueError, "num_classes"),
    case("labels out of range", lambda: CLF(ids(2, 4), torch.tensor([0, 3])), ValueError, "labels"),
    case("labels negative", lambda: CLF(ids(2, 4), torch.tensor([0, -1])), ValueError, "labels"),
    case("labels IGNORE_INDEX", lambda: CLF(ids(2, 4), torch.full((2,), IGNORE_INDEX)), ValueError, "labels"),
    case("labels float", lambda: CLF(ids(2, 4), torch.tensor([0.0, 1.0])), TypeError, "labels"),
    case("labels bool", lambda: CLF(ids(2, 4), torch.tensor([True, False])), TypeError, "labels"),
    case("labels list", lambda: CLF(ids(2, 4), [0, 1]), TypeError, "labels"),
    case("labels shape", lambda: CLF(ids(2, 4), torch.tensor([0, 1, 1])), ValueError, "labels"),
    case("labels 2-D", lambda: CLF(ids(2, 4), torch.tensor([[0], [1]])), ValueError, "labels"),
    case("lengths list", lambda: CLF(ids(2, 4), lengths=[4, 2]), TypeError, "lengths"),
    case("lengths int", lambda: CLF(ids(2, 4), lengths=3), TypeError, "lengths"),
    case("lengths empty", lambda: CLF(ids(2, 4), lengths=torch.tensor([], dtype=torch.long)), ValueError, "lengths"),
    case("lengths 0", lambda: CLF(ids(2, 4), lengths=torch.tensor([0, 2])), ValueError, "lengths"),
    case("lengths > T", lambda: CLF(ids(2, 4), lengths=torch.tensor([5, 2])), ValueError, "lengths"),
    case("lengths float", lambda: CLF(ids(2, 4), lengths=torch.tensor([4.0, 2.0])), TypeError, "lengths"),
    case("lengths bool", lambda: CLF(ids(2, 4), lengths=torch.tensor([True, True])), TypeError, "lengths"),
    case("lm_weight negative", lambda: CLF(ids(2, 4), torch.tensor([0, 1]), None, -1.0), ValueError, "lm_weight"),
    case("lm_weight NaN", lambda: CLF(ids(2, 4), torch.tensor([0, 1]), None, NAN), ValueError, "lm_weight"),
    case("lm_weight inf", lambda: CLF(ids(2, 4), torch.tensor([0, 1]), None, INF), ValueError, "lm_weight"),
    case("lm_weight str", lambda: CLF(ids(2, 4), torch.tensor([0, 1]), None, "0.5"), TypeError, "lm_weight"),
    case("lm_weight None", lambda: CLF(ids(2, 4), torch.tensor([0, 1]), None, None), TypeError, "lm_weight"),
    case("classifier no rows", lambda: CLF(ids(0, 4), torch.zeros(0, dtype=torch.long)), ValueError, "idx"),
    case("classifier idx too long", lambda: CLF(ids(2, 9)), ValueError, "idx"),
    case("from_hf_gpt2 None", lambda: GPT.from_hf_gpt2(None), TypeError, "path"),
    case("from_hf_gpt2 int", lambda: GPT.from_hf_gpt2(3), TypeError, "path"),
]

DIAGNOSTICS_CASES = [
    case("saturation d_k 0", lambda: D.softmax_saturation(0), ValueError, "d_k"),
    case("saturation n_keys bool", lambda: D.softmax_saturation(4, n_keys=True), ValueError, "n_keys"),
    case("saturation scaled str", lambda: D.softmax_saturation(4, scaled="no"), TypeError, "scaled"),
    case("saturation seed str", lambda: D.softmax_saturation(4, seed="x"), TypeError, "seed"),
    case("saturation seed float", lambda: D.softmax_saturation(4, seed=1.5), TypeError, "seed"),
    case("saturation seed huge", lambda: D.softmax_saturation(4, seed=2 ** 70), ValueError, "seed"),
    case("stack depth 0", lambda: D.stack_statistics(0, residual=True, norm=True), ValueError, "depth"),
    case("stack seq_len 0", lambda: D.stack_statistics(2, residual=True, norm=True, seq_len=0), ValueError, "seq_len"),
    case("stack batch -1", lambda: D.stack_statistics(2, residual=True, norm=True, batch=-1), ValueError, "batch"),
    case("stack residual str", lambda: D.stack_statistics(2, residual="x", norm=True), TypeError, "residual"),
    case("stack norm None", lambda: D.stack_statistics(2, residual=True, norm=None), TypeError, "norm"),
    case("stack heads", lambda: D.stack_statistics(2, residual=True, norm=True, num_heads=3), ValueError, "num_heads"),
    case("gradients layers 0", lambda: D.layer_gradient_norms(0, norm_first=True), ValueError, "num_layers"),
    case("gradients d_model 0", lambda: D.layer_gradient_norms(1, norm_first=True, d_model=0), ValueError, "d_model"),
    case("gradients seq_len 0", lambda: D.layer_gradient_norms(1, norm_first=True, seq_len=0), ValueError, "seq_len"),
    case("gradients norm_first str", lambda: D.layer_gradient_norms(1, norm_first="x"), TypeError, "norm_first"),
    case("gradients seed None", lambda: D.layer_gradient_norms(1, norm_first=True, seed=None), TypeError, "seed"),
]

TEXTS = [["a", "b"], ["c"]]
STREAM = torch.randint(0, 5, (50,))
GEN = torch.Generator().manual_seed(0)

RECIPE_CASES = [
    case("encode_stories no texts", lambda: recipes.encode_stories([], VOCAB, 8), ValueError, "texts"),
    case("encode_stories a string", lambda: recipes.encode_stories("a b", VOCAB, 8), TypeError, "texts"),
    case("encode_stories strings", lambda: recipes.encode_stories(["a b"], VOCAB, 8), TypeError, "texts"),
    case("encode_stories vocab None", lambda: recipes.encode_stories(TEXTS, None, 8), TypeError, "vocab"),
    case("encode_stories block_size str", lambda: recipes.encode_stories(TEXTS, VOCAB, "8"), ValueError, "block_size"),
    case("encode_stories too long", lambda: recipes.encode_stories([["a"] * 8], VOCAB, 8), ValueError, "block_size"),
    case("lm_batches batch_size 0", lambda: recipes.lm_batches(TEXTS, VOCAB, 8, 0), ValueError, "batch_size"),
    case("lm_batches batch_size 3", lambda: recipes.lm_batches(TEXTS, VOCAB, 8, 3), ValueError, "batch_size"),
    case("lm_batches long text, at once", lambda: recipes.lm_batches([["a"]] * 5 + [["a"] * 20], VOCAB, 8, 1),
         ValueError, "block_size"),
    case("lm_batches seed str", lambda: recipes.lm_batches(TEXTS, VOCAB, 8, 1, seed="x"), TypeError, "seed"),
    case("text_windows list", lambda: recipes.text_windows([1, 2, 3] * 10, 8, 4, GEN), TypeError, "ids"),
    case("text_windows float ids", lambda: recipes.text_windows(STREAM.float(), 8, 4, GEN), TypeError, "ids"),
    case("text_windows short", lambda: recipes.text_windows(STREAM[:8], 8, 4, GEN), ValueError, "ids"),
    case("text_windows block_size 0", lambda: recipes.text_windows(STREAM, 0, 4, GEN), ValueError, "block_size"),
    case("text_windows batch_size 0", lambda: recipes.text_windows(STREAM, 8, 0, GEN), ValueError, "batch_size"),
    case("text_windows generator int", lambda: recipes.text_windows(STREAM, 8, 4, 3), TypeError, "generator"),
    case("lm_loss batch of 3", lambda: recipes.lm_loss(MODEL, (1, 2, 3)), ValueError, "batch"),
    case("lm_loss model str", lambda: recipes.lm_loss("m", (ids(1, 2), ids(1, 2))), TypeError, "model"),
    case("evaluate_lm no texts", lambda: recipes.evaluate_lm(MODEL, [], VOCAB), ValueError, "texts"),
    case("evaluate_lm batch_size 0", lambda: recipes.evaluate_lm(MODEL, TEXTS, VOCAB, 0), ValueError, "batch_size"),
    case("evaluate_lm model str", lambda: recipes.evaluate_lm("m", TEXTS, VOCAB), TypeError, "model"),
    case("pretrain config None", lambda: recipes.pretrain_gpt(TEXTS, TEXTS, VOCAB, None, steps=1), TypeError, "config"),
    case("pretrain no validation", lambda: recipes.pretrain_gpt(TEXTS, [], VOCAB, GPTConfig(9, 8, 1, 2, 8), steps=1),
         ValueError, "validation_texts"),
    case("pretrain long validation text", lambda: recipes.pretrain_gpt(TEXTS, [["a"] * 9], VOCAB,
                                                                       GPTConfig(9, 8, 1, 2, 8), steps=1),
         ValueError, "validation_texts"),
    case("pretrain small vocabulary", lambda: recipes.pretrain_gpt(TEXTS, TEXTS, VOCAB, GPTConfig(3, 8, 1, 2, 8),
                                                                   steps=1), ValueError, "vocab_size"),
    case("encode_examples none", lambda: recipes.encode_examples([], VOCAB), ValueError, "texts"),
    case("encode_examples strings", lambda: recipes.encode_examples(["a b"], VOCAB), TypeError, "texts"),
    case("encode_examples vocab list", lambda: recipes.encode_examples(TEXTS, ["a"]), TypeError, "vocab"),
    case("finetune no examples", lambda: recipes.finetune_classifier([], VOCAB, config=CONFIG, steps=1), ValueError,
         "examples"),
    case("finetune label out of range", lambda: recipes.finetune_classifier([MoodExample("a", 5, "a")], VOCAB,
                                                                            config=CONFIG, steps=1),
         ValueError, "label"),
    case("finetune label float", lambda: recipes.finetune_classifier([MoodExample("a", 0.5, "a")], VOCAB,
                                                                     config=CONFIG, steps=1), TypeError, "label"),
    case("finetune strings", lambda: recipes.finetune_classifier(["a b"], VOCAB, config=CONFIG, steps=1), TypeError,
         "examples"),
    case("finetune lm_weight NaN", lambda: recipes.finetune_classifier(EXAMPLES, VOCAB, config=CONFIG, steps=1,
                                                                       lm_weight=NAN), ValueError, "lm_weight"),
    case("finetune lm_weight negative", lambda: recipes.finetune_classifier(EXAMPLES, VOCAB, config=CONFIG, steps=1,
                                                                            lm_weight=-1), ValueError, "lm_weight"),
    case("finetune batch_size 0", lambda: recipes.finetune_classifier(EXAMPLES, VOCAB, config=CONFIG, steps=1,
                                                                      batch_size=0), ValueError, "batch_size"),
    case("finetune pretrained str", lambda: recipes.finetune_classifier(EXAMPLES, VOCAB, pretrained="x"), TypeError,
         "pretrained"),
    case("finetune config dict", lambda: recipes.finetune_classifier(EXAMPLES, VOCAB, config={}), TypeError, "config"),
    case("finetune example too long", lambda: recipes.finetune_classifier([MoodExample(" ".join("a" * 9), 0, "a")],
                                                                          VOCAB, config=CONFIG, steps=1),
         ValueError, "block_size"),
    case("accuracy of a GPT", lambda: recipes.classifier_accuracy(MODEL, EXAMPLES, VOCAB), TypeError, "model"),
    case("accuracy no examples", lambda: recipes.classifier_accuracy(CLF, [], VOCAB), ValueError, "examples"),
    case("accuracy example too long", lambda: recipes.classifier_accuracy(CLF, [MoodExample(" ".join("a" * 9), 0, "a")],
                                                                          VOCAB), ValueError, "block_size"),
    case("accuracy label out of range", lambda: recipes.classifier_accuracy(CLF, [MoodExample("a", 7, "a")], VOCAB),
         ValueError, "label"),
]


@pytest.mark.parametrize("call, error, argument",
                         ATTENTION_CASES + TRANSFORMER_CASES + ENCODER_DECODER_CASES + GPT_CASES + DIAGNOSTICS_CASES
                         + RECIPE_CASES)
def test_hostile_input_is_refused_naming_the_argument(call, error, argument):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert re.search(rf"(?<![\w]){re.escape(argument)}(?![\w])", str(info.value)), str(info.value)


def test_attention_maps_before_a_run_say_what_to_do():
    fresh = EncoderDecoder(10, 11, **SIZES)
    with pytest.raises(RuntimeError, match="run the model"):
        fresh.attention_maps()


# ---------------------------------------------------------------------------
# GPT-2 folders: every damaged one refused with the file named, nothing loaded half-way
# ---------------------------------------------------------------------------

GPT2_CONFIG = {"vocab_size": 11, "n_positions": 8, "n_layer": 1, "n_head": 2, "n_embd": 8}


def gpt2_tensors(d=8, vocab=11, positions=8):
    """A GPT-2 checkpoint in Hugging Face's names and layout (Conv1D weights are (in, out))."""
    g = torch.Generator().manual_seed(0)
    state = {"wte.weight": torch.randn(vocab, d, generator=g), "wpe.weight": torch.randn(positions, d, generator=g),
             "ln_f.weight": torch.ones(d), "ln_f.bias": torch.zeros(d)}
    for name, (d_in, d_out) in {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, 4 * d),
                                "mlp.c_proj": (4 * d, d)}.items():
        state[f"h.0.{name}.weight"] = torch.randn(d_in, d_out, generator=g) * 0.02
        state[f"h.0.{name}.bias"] = torch.zeros(d_out)
    for norm in ("ln_1", "ln_2"):
        state[f"h.0.{norm}.weight"], state[f"h.0.{norm}.bias"] = torch.ones(d), torch.zeros(d)
    return state


def write_gpt2(folder, config=GPT2_CONFIG, tensors=None, raw_config=None, raw_weights=None):
    folder.mkdir()
    (folder / "config.json").write_text(raw_config if raw_config is not None else json.dumps(config))
    if raw_weights is not None:
        (folder / "model.safetensors").write_bytes(raw_weights)
    else:
        save_file(gpt2_tensors() if tensors is None else tensors, str(folder / "model.safetensors"))
    return folder


def with_tensor(name, value):
    tensors = gpt2_tensors()
    tensors[name] = value
    return tensors


GPT2_FOLDERS = [
    ("not json", dict(raw_config="{not json"), "config.json"),
    ("json list", dict(raw_config="[1, 2]"), "config.json"),
    ("fields missing", dict(config={"n_embd": 8}), "n_positions"),
    ("size a string", dict(config={**GPT2_CONFIG, "n_embd": "8"}), "n_embd"),
    ("negative epsilon", dict(config={**GPT2_CONFIG, "layer_norm_epsilon": -1}), "layer_norm_eps"),
    ("other activation", dict(config={**GPT2_CONFIG, "activation_function": "relu"}), "activation_function"),
    ("config wider than weights", dict(config={**GPT2_CONFIG, "n_embd": 16}), "wte.weight"),
    ("config vocabulary smaller", dict(config={**GPT2_CONFIG, "vocab_size": 10}), "wte.weight"),
    ("garbage weights", dict(raw_weights=b"garbage bytes, not a safetensors file"), "model.safetensors"),
    ("empty weights", dict(raw_weights=b""), "model.safetensors"),
    ("wrong shape", dict(tensors=with_tensor("wte.weight", torch.zeros(5, 5))), "wte.weight"),
    ("c_attn not 3 x d", dict(tensors=with_tensor("h.0.attn.c_attn.weight", torch.zeros(8, 23))), "c_attn"),
    ("integer weights", dict(tensors=with_tensor("wpe.weight", torch.zeros(8, 8, dtype=torch.long))), "wpe.weight"),
    ("NaN weights", dict(tensors=with_tensor("h.0.ln_1.weight", torch.full((8,), NAN))), "ln_1.weight"),
    ("a tensor missing", dict(tensors={k: v for k, v in gpt2_tensors().items() if k != "ln_f.bias"}), "ln_f.bias"),
]


def test_a_gpt2_folder_of_the_course_s_own_layout_loads(tmp_path):
    model = GPT.from_hf_gpt2(write_gpt2(tmp_path / "good"))
    assert torch.isfinite(model(ids(1, 5))[0]).all()


@pytest.mark.parametrize("kwargs, named", [pytest.param(k, n, id=i) for i, k, n in GPT2_FOLDERS])
def test_damaged_gpt2_folders_are_refused(tmp_path, kwargs, named):
    folder = write_gpt2(tmp_path / "bad", **kwargs)
    with pytest.raises(ValueError) as info:
        GPT.from_hf_gpt2(folder)
    assert type(info.value) is ValueError and named in str(info.value), str(info.value)


def test_a_folder_without_the_two_files_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors"):
        GPT.from_hf_gpt2(tmp_path)


# ---------------------------------------------------------------------------
# Losses that cannot be formed, tiny temperatures, empty axes: no NaN
# ---------------------------------------------------------------------------

def test_l1_is_zero_when_no_sequence_has_a_next_token():
    """The documented rule: with every length 1 (or T = 1) L1 has no target, the loss is L2 alone."""
    clf = GPTForClassification(MODEL, 3).train()
    idx, labels = ids(3, 4), torch.tensor([0, 1, 2])
    for lengths, x in ((torch.tensor([1, 1, 1]), idx), (None, idx[:, :1])):
        _, l3 = clf(x, labels, lengths, lm_weight=0.5)
        _, l2 = clf(x, labels, lengths)
        assert torch.isfinite(l3) and l3.item() == l2.item()
        l3.backward()
        assert all(torch.isfinite(p.grad).all() for p in clf.parameters() if p.grad is not None)
        clf.zero_grad()
    # one row with a next token: L1 is that row's
    lengths = torch.tensor([1, 3, 1])
    _, l3 = clf(idx, labels, lengths, lm_weight=0.5)
    logits, l2 = clf(idx, labels, lengths)
    lm_logits = MODEL.lm_head(MODEL.hidden_states(idx))[1, :2]
    assert l3.item() == pytest.approx(l2.item() + 0.5 * F.cross_entropy(lm_logits, idx[1, 1:3]).item(), rel=1e-5)


@pytest.mark.parametrize("temperature", [1e-30, 1e-40, 1e-300, 5e-324])
def test_a_tiny_temperature_gives_the_argmax_not_nan(temperature):
    logits = torch.randn(4, 11)
    probs = next_token_probs(logits, temperature)
    assert torch.isfinite(probs).all()
    assert torch.equal(probs.argmax(-1), logits.argmax(-1)) and torch.allclose(probs.max(-1).values, torch.ones(4))
    out = MODEL.generate(ids(2, 2), 3, temperature, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 5)


def test_empty_axes_give_empty_or_zero_results():
    out, w = A.scaled_dot_product_attention(f32(0, 3, 4), f32(0, 5, 4), f32(0, 5, 6))
    assert out.shape == (0, 3, 6) and w.shape == (0, 3, 5)
    out, w = A.scaled_dot_product_attention(f32(2, 0, 4), f32(2, 5, 4), f32(2, 5, 6))
    assert out.shape == (2, 0, 6)
    out, w = A.scaled_dot_product_attention(f32(2, 3, 4), f32(2, 0, 4), f32(2, 0, 6))  # no key at all
    assert w.shape == (2, 3, 0) and torch.equal(out, torch.zeros(2, 3, 6))
    out, w = MHA(*(f32(2, 0, 8),) * 3)
    assert out.shape == (2, 0, 8) and w.shape == (2, 2, 0, 0)
    assert ENC_LAYER(f32(0, 3, 8)).shape == (0, 3, 8)


@pytest.mark.parametrize("layer", ["mha", "encoder", "decoder"])
def test_fully_masked_rows_have_zero_output_weights_and_finite_gradients(layer):
    torch.manual_seed(0)
    x = f32(2, 4, 8).requires_grad_(True)
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    mask[0, :, 1] = False  # query 1 of sequence 0 may attend to nothing
    mask[1] = False  # sequence 1: nothing at all
    if layer == "mha":
        out, weights = MHA(x, x, x, mask)
        assert torch.equal(weights[0, :, 1], torch.zeros(2, 4)) and torch.equal(weights[1], torch.zeros(2, 4, 4))
    elif layer == "encoder":
        out = Tr.EncoderLayer(8, 2, 16, dropout=0.0).train()(x, mask)
    else:
        memory = f32(2, 3, 8).requires_grad_(True)
        out = Tr.DecoderLayer(8, 2, 16, dropout=0.0)(x, memory, torch.zeros(2, 1, 4, 3, dtype=torch.bool), mask)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------
# Properties of attention (hypothesis)
# ---------------------------------------------------------------------------

@st.composite
def attention_inputs(draw):
    """Valid q, k, v (float64, leading axes that broadcast) and a mask (None, random, with fully masked rows)."""
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    Tq, Tk, d, dv = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.integers(1, 5))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16)))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))

    def lead():  # each leading axis either its full size or 1 (broadcast)
        return [1 if draw(st.booleans()) else b for b in batch]

    q_lead, k_lead = lead(), lead()
    q = torch.randn(*q_lead, Tq, d, generator=g, dtype=torch.float64) * scale
    k = torch.randn(*k_lead, Tk, d, generator=g, dtype=torch.float64) * scale
    v = torch.randn(*lead(), Tk, dv, generator=g, dtype=torch.float64)
    mask = None
    if draw(st.booleans()):  # broadcastable to the scores (..., Tq, Tk), whose leading axes are q's and k's
        scores_lead = [1 if draw(st.booleans()) else max(a, b) for a, b in zip(q_lead, k_lead)]
        shape = scores_lead[draw(st.integers(0, len(batch))):] + [Tq if draw(st.booleans()) else 1, Tk]
        mask = torch.rand(shape, generator=g) < draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
        if draw(st.booleans()):
            mask[..., draw(st.integers(0, mask.shape[-2] - 1)), :] = False  # a fully masked row
    return q, k, v, mask


@settings(max_examples=150, deadline=None)
@given(attention_inputs())
def test_attention_is_finite_normalised_and_equals_torch(inputs):
    q, k, v, mask = (t.requires_grad_(True) if t is not None and t.is_floating_point() else t for t in inputs)
    out, weights = A.scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    allowed = torch.ones(weights.shape, dtype=torch.bool) if mask is None else mask.expand(weights.shape)
    assert torch.equal(weights[~allowed], torch.zeros_like(weights[~allowed]))
    assert torch.allclose(weights.sum(-1), allowed.any(-1).double(), atol=1e-12)  # 1 per row, 0 if fully masked
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(out, reference, atol=1e-10)
    (out * torch.randn_like(out)).sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    # the same through attend with the scaled dot score (weights and context)
    context, a = A.attend(q.detach(), k.detach(), v.detach(), A.ScaledDotScore(), mask)
    assert torch.allclose(a, weights, atol=1e-12) and torch.allclose(context, out, atol=1e-10)


SHAPES = st.lists(st.integers(0, 3), min_size=0, max_size=4)
DTYPES = st.sampled_from([torch.float32, torch.float32, torch.float32, torch.float64, torch.long, torch.bool])


def tensor(shape, dtype):
    return torch.ones(shape, dtype=dtype) if dtype == torch.bool else torch.randn(shape).to(dtype)


@settings(max_examples=200, deadline=None)
@given(SHAPES, SHAPES, SHAPES, st.one_of(st.none(), SHAPES), DTYPES, DTYPES, DTYPES,
       st.sampled_from([torch.bool, torch.long]))
def test_any_shapes_and_dtypes_give_attention_or_a_clear_error(sq, sk, sv, sm, tq, tk, tv, tm):
    q, k, v = tensor(sq, tq), tensor(sk, tk), tensor(sv, tv)
    mask = None if sm is None else tensor(sm, tm)
    try:
        out, weights = A.scaled_dot_product_attention(q, k, v, mask)
    except (TypeError, ValueError) as e:
        assert re.search(r"\b(q|k|v|mask|d_k|Tk)\b", str(e)), str(e)
    else:  # a valid combination: the shapes torch would give, nothing non-finite
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        assert out.shape == (*lead, q.shape[-2], v.shape[-1]) and torch.isfinite(out).all()
        assert torch.isfinite(weights).all()


@settings(max_examples=100, deadline=None)
@given(attention_inputs(), st.sampled_from(["k width", "v length", "batch", "mask shape", "mask dtype", "k dtype",
                                            "v dtype", "q rank"]))
def test_one_corruption_of_valid_inputs_is_always_refused(inputs, corruption):
    q, k, v, mask = inputs
    Tq, Tk = q.shape[-2], k.shape[-2]
    if corruption == "k width":
        k = torch.randn(*k.shape[:-1], k.shape[-1] + 1, dtype=k.dtype)
    elif corruption == "v length":
        v = torch.randn(*v.shape[:-2], Tk + 1, v.shape[-1], dtype=v.dtype)
    elif corruption == "batch":
        k = torch.randn(5, *k.shape, dtype=k.dtype)
        q = torch.randn(4, *q.shape, dtype=q.dtype)
    elif corruption == "mask shape":
        mask = torch.ones(Tq, Tk + 1, dtype=torch.bool)
    elif corruption == "mask dtype":
        mask = torch.ones(Tq, Tk)
    elif corruption == "k dtype":
        k = k.float()
    elif corruption == "v dtype":
        v = v.half()
    else:
        q = q.flatten()  # one axis: no (Tq, d_k)
    with pytest.raises((TypeError, ValueError)):
        A.scaled_dot_product_attention(q, k, v, mask)


LAYERS = {
    "attend": lambda a, b, c, m: A.attend(a, b, c, A.DotScore(), m),
    "additive attend": lambda a, b, c, m: A.attend(a, b, c, A.AdditiveScore(4, 4, 3), m),
    "MultiHeadAttention": lambda a, b, c, m: A.MultiHeadAttention(4, 2)(a, b, c, m),
    "EncoderLayer": lambda a, b, c, m: Tr.EncoderLayer(4, 2, 8)(a, m),
    "DecoderLayer": lambda a, b, c, m: Tr.DecoderLayer(4, 2, 8)(a, b, c, m),
}


@pytest.mark.parametrize("name", LAYERS)
@settings(max_examples=60, deadline=None)
@given(sa=SHAPES, sb=SHAPES, sc=SHAPES, sm=st.one_of(st.none(), SHAPES), ta=DTYPES, tb=DTYPES)
def test_layers_give_a_result_or_a_clear_error_for_any_shapes(name, sa, sb, sc, sm, ta, tb):
    a, b, c = tensor([*sa, 4][-4:], ta), tensor([*sb, 4][-4:], tb), tensor(sc, torch.float32)
    mask = None if sm is None else torch.ones(sm, dtype=torch.bool)
    try:
        out = LAYERS[name](a, b, c, mask)
    except (TypeError, ValueError):
        pass  # refused: the parametrized cases above check that the message names the argument
    else:
        out = out[0] if isinstance(out, tuple) else out
        assert torch.isfinite(out).all()
