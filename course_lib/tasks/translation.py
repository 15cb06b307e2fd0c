"""The translation task of notebooks 01 and 02: the GRU translator with attention, and the batches,
training recipes, evaluation and attention traces that serve it and the Transformer.

Notebook 01: the RNN encoder-decoder with attention (the notes' machine-translation figure).

The encoder reads the Chinese sentence into states H = [h_1, ..., h_n]. At each step t the
decoder

1. uses its previous state as the query, q = s_{t-1};
2. scores every encoder state, a_i = softmax(s(h_i, q))        (``course_lib.attention.attend``);
3. forms context = sum_i a_i * h_i: what it should look at now;
4. feeds context and the previous output word y_{t-1} (e.g. "love") into its GRU cell, s_t;
5. predicts the next English word from s_t and the context.

Notebook 02: the same task for :class:`course_lib.encoder_decoder.EncoderDecoder`
(``train_transformer_translator``, ``trace_transformer``, ``cross_attention_alignment``).
``evaluate_translation`` accepts either model.

Shapes: B batch, S source length, T target length, d model width, V vocabulary size,
L layers, h heads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..attention import attend, make_score
from ..batching import epoch_batches
from ..encoder_decoder import EncoderDecoder
from ..tokenizers import WordVocab
from ..training import evaluating, set_seed, train

__all__ = [
    "AttentionGRUTranslator",
    "encode_pairs",
    "translation_batches",
    "translation_loss",
    "translate",
    "trace_translation",
    "evaluate_translation",
    "forced_attention",
    "alignment_hits",
    "alignment_score",
    "train_translator",
    "transformer_translation_loss",
    "train_transformer_translator",
    "trace_transformer",
    "cross_attention_alignment",
]


class AttentionGRUTranslator(nn.Module):
    """A bidirectional GRU encoder and a GRU decoder that attends over the encoder states.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (id 0 is padding in both).
        d_model: width d of encoder states h_i and decoder states s_t (even: d/2 per direction).
        score: the score function s(h_i, q): "additive", "dot", "scaled_dot" or "bilinear".
        d_embed: word embedding width (default d_model // 2).
        bos_id, eos_id: target ids of <bos> and <eos>.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, score: str = "additive",
                 d_embed: int | None = None, bos_id: int = 2, eos_id: int = 3):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even (d_model / 2 per encoder direction), got {d_model}")
        d_embed = d_embed or d_model // 2
        self.d_model, self.bos_id, self.eos_id, self.score_name = d_model, bos_id, eos_id, score
        self.src_embed = nn.Embedding(src_vocab_size, d_embed, padding_idx=0)
        self.encoder = nn.GRU(d_embed, d_model // 2, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(d_model, d_model)  # s_0 from the encoder's two final states
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_embed, padding_idx=0)
        self.score = make_score(score, d_model)
        self.cell = nn.GRUCell(d_embed + d_model, d_model)  # input: [embed(y_{t-1}); context]
        self.out = nn.Linear(2 * d_model, tgt_vocab_size)  # from [s_t; context]

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor):
        """src (B, S) ids, src_lengths (B,) -> H (B, S, d), s_0 (B, d), mask (B, S) True on real words."""
        if src.dim() != 2 or src_lengths.shape != src.shape[:1]:
            raise ValueError(f"src must be (B, S) and src_lengths (B,), got {tuple(src.shape)} and "
                             f"{tuple(src_lengths.shape)}")
        S = src.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), src_lengths.cpu(),
                                                   batch_first=True, enforce_sorted=False)
        out, last = self.encoder(packed)  # packing keeps the backward GRU from reading padding
        H, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=S)
        s0 = torch.tanh(self.init_state(torch.cat([last[0], last[1]], dim=-1)))  # (B, d)
        mask = torch.arange(S, device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        return H, s0, mask

    def decode_step(self, y_prev: torch.Tensor, state: torch.Tensor, H: torch.Tensor, mask: torch.Tensor):
        """One decoder step: y_prev (B,), state s_{t-1} (B, d) -> logits (B, V), s_t (B, d), a (B, S)."""
        # steps 1-3: query q = s_{t-1}; a_i = softmax(s(h_i, q)); context = sum_i a_i h_i
        context, a = attend(state, H, score=self.score, mask=mask[:, None, :])  # (B, d), (B, S)
        # step 4: the RNN cell reads the context and the previous output word
        state = self.cell(torch.cat([self.tgt_embed(y_prev), context], dim=-1), state)
        # step 5: predict the next word
        logits = self.out(torch.cat([state, context], dim=-1))
        return logits, state, a

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor):
        """Teacher forcing: tgt_in (B, T) starts with <bos>. Returns logits (B, T, V), weights (B, T, S)."""
        H, state, mask = self.encode(src, src_lengths)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, a = self.decode_step(tgt_in[:, t], state, H, mask)
            logits.append(step_logits)
            weights.append(a)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int = 30):
        """Translate by taking the most likely word at each step.

        Returns ids (B, T') without <bos> (each row ends at its first <eos>, padded with <eos>),
        and the attention weights of every step (B, T', S).
        """
        H, state, mask = self.encode(src, src_lengths)
        B = src.shape[0]
        y = torch.full((B,), self.bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        ids, weights = [], []
        for _ in range(max_len):
            logits, state, a = self.decode_step(y, state, H, mask)
            y = logits.argmax(dim=-1).masked_fill(done, self.eos_id)
            ids.append(y)
            weights.append(a)
            done |= y == self.eos_id
            if done.all():
                break
        return torch.stack(ids, dim=1), torch.stack(weights, dim=1)


# ---------------------------------------------------------------------------
# Data, loss and evaluation
# ---------------------------------------------------------------------------

def encode_pairs(pairs: Sequence, src_vocab: WordVocab, tgt_vocab: WordVocab):
    """Sentence pairs -> src (B, S), src_lengths (B,), tgt_in (B, T) = <bos> y_1..y_n, tgt_out (B, T) = y_1..y_n <eos>.

    Padding is id 0 (``<pad>``) everywhere; the losses ignore it in ``tgt_out``.
    """
    src, src_lengths = src_vocab.encode_batch([p.zh for p in pairs])
    tgt, _ = tgt_vocab.encode_batch([p.en for p in pairs], add_bos=True, add_eos=True)
    return src, src_lengths, tgt[:, :-1], tgt[:, 1:]


def translation_batches(pairs: Sequence, src_vocab: WordVocab, tgt_vocab: WordVocab, batch_size: int = 64,
                        seed: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled mini-batches (src, src_lengths, tgt_in, tgt_out), reshuffled every epoch."""
    return epoch_batches(pairs, batch_size, lambda chunk: encode_pairs(chunk, src_vocab, tgt_vocab), seed)


def translation_loss(model: AttentionGRUTranslator, batch) -> torch.Tensor:
    """Mean cross-entropy of the next English word, ignoring padding."""
    src, src_lengths, tgt_in, tgt_out = batch
    logits, _ = model(src, src_lengths, tgt_in)
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=0)


@torch.no_grad()
def _source_ids(model: nn.Module, zh_words: Sequence[str], src_vocab: WordVocab) -> torch.Tensor:
    """One Chinese sentence (a list of words) -> its ids (1, S) on the model's device."""
    if isinstance(zh_words, str):
        raise TypeError("zh_words must be a list of words; use segment_chinese(text, src_vocab.itos)")
    if len(zh_words) == 0:
        raise ValueError("zh_words must contain at least one word")
    device = next(model.parameters()).device
    return torch.tensor([src_vocab.encode(zh_words)], device=device)


def trace_translation(model: AttentionGRUTranslator, zh_words: Sequence[str], src_vocab: WordVocab,
                      tgt_vocab: WordVocab, max_len: int = 30) -> dict:
    """Translate one sentence and keep what attention did at every step.

    Returns a dict with
        source: the Chinese words (S);  output: the English words, then "<eos>" (T);
        weights: a (T, S), one row per decoder step;  encoder_states: H (S, d);
        contexts: (T, d), context_t = sum_i a_ti h_i.
    """
    src = _source_ids(model, zh_words, src_vocab)  # (1, S)
    lengths = torch.tensor([len(zh_words)])
    with evaluating(model):
        ids, weights = model.greedy_decode(src, lengths, max_len=max_len)
        H, _, _ = model.encode(src, lengths)
    words = tgt_vocab.decode(ids[0])
    T = min(len(words) + 1, ids.shape[1])  # the words and the step that emitted <eos>
    output = words + ["<eos>"] if T > len(words) else words
    a = weights[0, :T].cpu()
    return {"source": list(zh_words), "output": output, "weights": a,
            "encoder_states": H[0].cpu(), "contexts": a @ H[0].cpu()}


def translate(model: AttentionGRUTranslator, zh_words: Sequence[str], src_vocab: WordVocab,
              tgt_vocab: WordVocab, max_len: int = 30) -> list[str]:
    """Translate one sentence (a list of Chinese words) into a list of English words, greedily."""
    trace = trace_translation(model, zh_words, src_vocab, tgt_vocab, max_len)
    return [w for w in trace["output"] if w != "<eos>"]


def _greedy_ids(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int,
                tgt_vocab: WordVocab) -> torch.Tensor:
    """Greedy translation ids (B, T') of either model, without <bos>, <eos>-padded."""
    if isinstance(model, EncoderDecoder):
        return model.greedy_decode(src, min(max_len, model.max_len), tgt_vocab.bos_id, tgt_vocab.eos_id)
    ids, _ = model.greedy_decode(src, src_lengths, max_len=max_len)
    return ids


@torch.no_grad()
def evaluate_translation(model: AttentionGRUTranslator | EncoderDecoder, pairs: Sequence, src_vocab: WordVocab,
                         tgt_vocab: WordVocab, batch_size: int = 500) -> dict[str, float]:
    """Greedy-decode every pair: exact_match = share of sentences translated word for word right."""
    device = next(model.parameters()).device
    exact = 0
    with evaluating(model):
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            src, src_lengths, _, _ = encode_pairs(chunk, src_vocab, tgt_vocab)
            max_len = max(len(p.en) for p in chunk) + 2
            ids = _greedy_ids(model, src.to(device), src_lengths, max_len, tgt_vocab)
            exact += sum(tgt_vocab.decode(row) == list(p.en) for row, p in zip(ids.cpu(), chunk))
    return {"exact_match": exact / len(pairs)}


@torch.no_grad()
def forced_attention(model: AttentionGRUTranslator, pairs: Sequence, src_vocab: WordVocab,
                     tgt_vocab: WordVocab) -> list[torch.Tensor]:
    """Attention weights while the decoder is fed the reference translation (teacher forcing).

    Returns, per pair, weights (len(en), len(zh)): row j is the attention at the step that
    emits English word j, so it can be compared with the word alignment.
    """
    src, src_lengths, tgt_in, _ = encode_pairs(pairs, src_vocab, tgt_vocab)
    device = next(model.parameters()).device
    with evaluating(model):
        _, weights = model(src.to(device), src_lengths, tgt_in.to(device))
    return [weights[b, :len(p.en), :len(p.zh)].cpu() for b, p in enumerate(pairs)]


def alignment_hits(weights: Sequence[torch.Tensor], pairs: Sequence) -> dict:
    """Count attention peaks on the aligned Chinese word, for any attention weights (the scorer
    behind :func:`alignment_score` and :func:`cross_attention_alignment`).

    weights: per pair a tensor (..., len(en), len(zh)); the leading axes (e.g. layer and head)
    are scored separately. Returns hit rates over reordered words and over all aligned words,
    each of shape (...), and the number of reordered words.
    """
    hits = total = hits_all = total_all = 0
    for w, p in zip(weights, pairs):
        peak = w.argmax(dim=-1)  # (..., len(en)): the Chinese word each English word looks at most
        for j, (src_index, reordered) in enumerate(zip(p.alignment, p.reordered)):
            if src_index < 0:
                continue
            hit = (peak[..., j] == src_index).float()
            total_all += 1
            hits_all = hits_all + hit
            if reordered:
                total += 1
                hits = hits + hit
    if total == 0:
        raise ValueError("pairs contain no reordered words to score")
    return {"reordered": hits / total, "num_reordered": total, "all_aligned": hits_all / total_all}


def alignment_score(model: AttentionGRUTranslator, pairs: Sequence, src_vocab: WordVocab,
                    tgt_vocab: WordVocab) -> dict[str, float]:
    """How often the attention peak falls on the right Chinese word, for the reordered words.

    For every English word marked ``reordered`` (content words of time, place and
    relative-clause phrases, which sit elsewhere in the Chinese sentence) we take the
    attention of the step that emits it (teacher forcing) and check whether its argmax is
    the aligned Chinese word. Returns the score over those words, the number of words, and
    the same score over all aligned words for comparison.
    """
    result = alignment_hits(forced_attention(model, pairs, src_vocab, tgt_vocab), pairs)
    return {k: float(v) for k, v in result.items()}


def train_translator(corpus, src_vocab: WordVocab, tgt_vocab: WordVocab, *, score: str = "additive",
                     d_model: int = 64, steps: int = 400, batch_size: int = 64, lr: float = 0.01,
                     seed: int = 0, eval_every: int | None = None, live_plot=None, progress: bool = True):
    """Build an :class:`AttentionGRUTranslator` and train it on ``corpus.train`` with the course's loop.

    Returns (model, history); the history's evaluations hold validation exact match.
    The same recipe serves notebook 01 and ``python -m course_lib.figures``.
    """
    set_seed(seed)  # the initial weights depend on the seed too
    model = AttentionGRUTranslator(len(src_vocab), len(tgt_vocab), d_model=d_model, score=score,
                                   bos_id=tgt_vocab.bos_id, eos_id=tgt_vocab.eos_id)
    history = train(
        model, translation_batches(corpus.train, src_vocab, tgt_vocab, batch_size, seed=seed), translation_loss,
        steps=steps, lr=lr, schedule="cosine", seed=seed, eval_every=eval_every,
        eval_fn=lambda m: evaluate_translation(m, corpus.validation, src_vocab, tgt_vocab),
        live_plot=live_plot, progress=progress, desc=f"{score} attention",
    )
    return model, history


# ---------------------------------------------------------------------------
# The Transformer on the same task (notebook 02)
# ---------------------------------------------------------------------------

def transformer_translation_loss(model: EncoderDecoder, batch) -> torch.Tensor:
    """Mean cross-entropy of the next English word under teacher forcing, ignoring padding."""
    src, _, tgt_in, tgt_out = batch
    logits = model(src, tgt_in)  # (B, T, V): logits[:, t] predicts tgt_out[:, t]
    return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=0)


def train_transformer_translator(corpus, src_vocab: WordVocab, tgt_vocab: WordVocab, *, d_model: int = 64,
                                 num_heads: int = 4, d_ff: int = 128, num_layers: int = 2,
                                 dropout: float = 0.1, norm_first: bool = False, max_len: int = 32,
                                 steps: int = 600, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                                 eval_every: int | None = None, live_plot=None, progress: bool = True,
                                 desc: str | None = None):
    """Build an :class:`~course_lib.encoder_decoder.EncoderDecoder` and train it on ``corpus.train``.

    AdamW with a cosine schedule (linear warm-up over the first 5% of the steps), the course's
    training loop, validation exact match every ``eval_every`` steps. Returns (model, history).
    """
    set_seed(seed)  # the initial weights depend on the seed too
    model = EncoderDecoder(len(src_vocab), len(tgt_vocab), d_model=d_model, num_heads=num_heads, d_ff=d_ff,
                           num_layers=num_layers, max_len=max_len, dropout=dropout, norm_first=norm_first)
    history = train(
        model, translation_batches(corpus.train, src_vocab, tgt_vocab, batch_size, seed=seed),
        transformer_translation_loss, steps=steps, lr=lr, schedule="cosine", seed=seed, eval_every=eval_every,
        eval_fn=lambda m: evaluate_translation(m, corpus.validation, src_vocab, tgt_vocab),
        live_plot=live_plot, progress=progress,
        desc=desc or f"Transformer ({'pre' if norm_first else 'post'}-norm)",
    )
    return model, history


@torch.no_grad()
def _teacher_forced_maps(model: EncoderDecoder, src: torch.Tensor, tgt_in: torch.Tensor) -> dict:
    """Run the model once in eval mode; every layer's weights stacked: kind -> (L, B, h, Tq, Tk)."""
    with evaluating(model):
        model(src, tgt_in)
        return {kind: torch.stack(ws).cpu() for kind, ws in model.attention_maps().items()}


def trace_transformer(model: EncoderDecoder, zh_words: Sequence[str], src_vocab: WordVocab,
                      tgt_vocab: WordVocab, max_len: int = 30) -> dict:
    """Translate one sentence greedily and return every attention map of the model.

    Returns a dict with
        source: the Chinese words (S);
        output: the English words, then "<eos>" (T): row t of a decoder map is the step that emits output[t];
        target_inputs: "<bos>" and the English words (T): what the decoder reads at each step;
        maps: {"encoder_self": (L, h, S, S), "decoder_self": (L, h, T, T), "cross": (L, h, T, S)},
            computed by re-running the decoder on its own output (identical to the step-by-step
            weights, because the decoder is causal).
    """
    src = _source_ids(model, zh_words, src_vocab)  # (1, S)
    ids = _greedy_ids(model, src, torch.tensor([len(zh_words)]), max_len, tgt_vocab)
    words = tgt_vocab.decode(ids[0])
    emitted = tgt_vocab.encode(words) + ([tgt_vocab.eos_id] if len(words) < ids.shape[1] else [])
    tgt_in = torch.tensor([[tgt_vocab.bos_id] + emitted[:-1]], device=src.device)  # (1, T)
    maps = _teacher_forced_maps(model, src, tgt_in)
    return {"source": list(zh_words), "output": [tgt_vocab.itos[i] for i in emitted],
            "target_inputs": [tgt_vocab.itos[i] for i in tgt_in[0].tolist()],
            "maps": {kind: m[:, 0] for kind, m in maps.items()}}


def cross_attention_alignment(model: EncoderDecoder, pairs: Sequence, src_vocab: WordVocab,
                              tgt_vocab: WordVocab) -> dict:
    """:func:`alignment_score` for every cross-attention head of a Transformer.

    The decoder reads the reference translation (teacher forcing); for each layer and head we
    check whether the peak of the step that emits an English word is its aligned Chinese word.
    Returns {"reordered": (L, h), "all_aligned": (L, h), "num_reordered": int}.
    """
    src, _, tgt_in, _ = encode_pairs(pairs, src_vocab, tgt_vocab)
    device = next(model.parameters()).device
    cross = _teacher_forced_maps(model, src.to(device), tgt_in.to(device))["cross"]  # (L, B, h, T, S)
    weights = [cross[:, b, :, :len(p.en), :len(p.zh)] for b, p in enumerate(pairs)]  # (L, h, en, zh)
    return alignment_hits(weights, pairs)
