"""Tests for the newer exercises of notebooks 03, 04 and 05: lm_inputs_and_targets,
next_token_distribution, last_token_states (GPT), bert_input, wordpiece (BERT), pad_collate,
training_step (PyTorch basics).

Each classic mistake the checkers claim to catch is written out the way a learner would write it
and must be rejected with its own diagnosis; the untouched starters are "not attempted yet", and
a learner's bug (an exception, None, a wrong type or shape) gets a verdict, never a crash.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.exercises import get_exercise
from course_lib.gpt import GPT, GPTConfig, GPTForClassification
from course_lib.tasks.gpt import text_windows
from exercise_helpers import assert_named_mistake, run_check as run

NAMES = ["lm_inputs_and_targets", "next_token_distribution", "last_token_states", "bert_input", "wordpiece",
         "pad_collate", "training_step"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------
# The learner's classic mistakes, one function each
# ---------------------------------------------------------------------------

# lm_inputs_and_targets
def shift_none(token_ids):
    return token_ids[:, :-1], token_ids[:, :-1]


def shift_wrong_way(token_ids):
    return token_ids[:, 1:], token_ids[:, :-1]


def shift_batch_axis(token_ids):
    return token_ids[:-1], token_ids[1:]


# next_token_distribution
def _cut(scaled, top_k):
    if top_k is None:
        return scaled
    kth = torch.topk(scaled, top_k).values[-1]
    return scaled.masked_fill(scaled < kth, float("-inf"))


def temp_times(logits, temperature, top_k):
    return torch.softmax(_cut(logits * temperature, top_k), dim=-1)


def temp_after_softmax(logits, temperature, top_k):
    p = torch.softmax(logits, dim=-1) ** (1 / temperature)
    if top_k is not None:
        p = p.masked_fill(logits < torch.topk(logits, top_k).values[-1], 0.0)
        p = p / p.sum()
    return p


def topk_not_renormalised(logits, temperature, top_k):
    p = torch.softmax(logits / temperature, dim=-1)
    if top_k is not None:
        p = p.masked_fill(logits < torch.topk(logits, top_k).values[-1], 0.0)
    return p


def topk_le(logits, temperature, top_k):   # `<=` drops the k-th too: k - 1 kept
    scaled = logits / temperature
    if top_k is not None:
        scaled = scaled.masked_fill(scaled <= torch.topk(scaled, top_k).values[-1], float("-inf"))
    return torch.softmax(scaled, dim=-1)


def topk_plus_one(logits, temperature, top_k):
    scaled = logits / temperature
    if top_k is not None and top_k < len(logits):
        scaled = _cut(scaled, top_k + 1)
    return torch.softmax(scaled, dim=-1)


def greedy_one_hot(logits, temperature, top_k):
    return F.one_hot(logits.argmax(), logits.shape[0]).float()


# last_token_states
def last_position(h, lengths):
    return h[:, -1]


def last_off_by_one(h, lengths):
    return torch.stack([h[b, lengths[b]] for b in range(h.shape[0])])


def last_mean_pool(h, lengths):
    return h.mean(dim=1)


def last_all_rows(h, lengths):
    return h[:, lengths - 1]


# bert_input
def bert_sep_in_b(tokens_a, tokens_b):
    tokens = ["[CLS]"] + tokens_a
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens += ["[SEP]"] + tokens_b + ["[SEP]"]
        segments += [1] * (len(tokens_b) + 2)
    else:
        tokens += ["[SEP]"]
        segments += [0]
    return tokens, segments


def bert_no_final_sep(tokens_a, tokens_b):
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens += tokens_b
        segments += [1] * len(tokens_b)
    return tokens, segments


def bert_no_cls(tokens_a, tokens_b):
    tokens = tokens_a + ["[SEP]"]
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens += tokens_b + ["[SEP]"]
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


def bert_one_two(tokens_a, tokens_b):
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segments = [1] * len(tokens)
    if tokens_b is not None:
        tokens += tokens_b + ["[SEP]"]
        segments += [2] * (len(tokens_b) + 1)
    return tokens, segments


def bert_truthy_b(tokens_a, tokens_b):
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segments = [0] * len(tokens)
    if tokens_b:
        tokens += tokens_b + ["[SEP]"]
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


def bert_tensor_segments(tokens_a, tokens_b):
    tokens, segments = get_exercise("bert_input").load_solution()(tokens_a, tokens_b)
    return tokens, torch.tensor(segments)


def bert_appends_in_place(tokens_a, tokens_b):
    tokens_a.insert(0, "[CLS]")
    tokens_a.append("[SEP]")
    segments = [0] * len(tokens_a)
    if tokens_b is not None:
        tokens_b.append("[SEP]")
        segments += [1] * len(tokens_b)
        return tokens_a + tokens_b, segments
    return tokens_a, segments


# wordpiece
def _greedy(word, vocab, unk, *, longest=True, hashes=lambda start: start > 0, on_fail="unk", limit=True):
    if limit and len(word) > 100:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        ends = range(len(word), start, -1) if longest else range(start + 1, len(word) + 1)
        for end in ends:
            piece = ("##" if hashes(start) else "") + word[start:end]
            if piece in vocab:
                break
        else:
            return pieces + [unk] if on_fail == "partial" else [unk]
        pieces.append(piece)
        start = end
    return pieces


def wp_shortest(word, vocab, unk="[UNK]"):
    return _greedy(word, vocab, unk, longest=False)


def wp_no_hashes(word, vocab, unk="[UNK]"):
    return _greedy(word, vocab, unk, hashes=lambda start: False)


def wp_hashes_first(word, vocab, unk="[UNK]"):
    return _greedy(word, vocab, unk, hashes=lambda start: True)


def wp_partial(word, vocab, unk="[UNK]"):
    return _greedy(word, vocab, unk, on_fail="partial")


def wp_no_length_rule(word, vocab, unk="[UNK]"):
    return _greedy(word, vocab, unk, limit=False)


def wp_fixed_unk(word, vocab, unk="[UNK]"):
    return _greedy(word, vocab, "[UNK]")


def wp_string(word, vocab, unk="[UNK]"):
    return " ".join(_greedy(word, vocab, unk))


# pad_collate
def collate_left(batch, pad_id):
    T = max(len(ids) for ids, _ in batch)
    rows = [torch.cat([torch.full((T - len(ids),), pad_id), ids]) for ids, _ in batch]
    return (torch.stack(rows), torch.tensor([y for _, y in batch]), torch.tensor([len(ids) for ids, _ in batch]))


def collate_zero(batch, pad_id):
    ids = nn.utils.rnn.pad_sequence([ids for ids, _ in batch], batch_first=True)
    return ids, torch.tensor([y for _, y in batch]), torch.tensor([len(i) for i, _ in batch])


def collate_time_first(batch, pad_id):
    ids = nn.utils.rnn.pad_sequence([ids for ids, _ in batch], padding_value=pad_id)
    return ids, torch.tensor([y for _, y in batch]), torch.tensor([len(i) for i, _ in batch])


def collate_labels_list(batch, pad_id):
    ids = nn.utils.rnn.pad_sequence([ids for ids, _ in batch], batch_first=True, padding_value=pad_id)
    return ids, [y for _, y in batch], torch.tensor([len(i) for i, _ in batch])


def collate_lengths_max(batch, pad_id):
    ids = nn.utils.rnn.pad_sequence([ids for ids, _ in batch], batch_first=True, padding_value=pad_id)
    return ids, torch.tensor([y for _, y in batch]), torch.full((len(batch),), ids.shape[1])


def collate_library_order(batch, pad_id):
    ids = nn.utils.rnn.pad_sequence([ids for ids, _ in batch], batch_first=True, padding_value=pad_id)
    return ids, torch.tensor([len(i) for i, _ in batch]), torch.tensor([y for _, y in batch])


# training_step
def step_no_zero_grad(model, inputs, targets, loss_fn, optimizer):
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_before_backward(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    loss.backward()
    return loss.item()


def step_before_backward_no_zero_grad(model, inputs, targets, loss_fn, optimizer):
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    loss.backward()
    return loss.item()


def step_no_backward(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    optimizer.step()
    return loss.item()


def step_returns_tensor(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss


def step_no_step(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    return loss.item()


def step_loss_after(model, inputs, targets, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss_fn(model(inputs), targets).item()


MISTAKES = [
    ("lm_inputs_and_targets", shift_none, "no shift"),
    ("lm_inputs_and_targets", shift_wrong_way, "the shift goes the wrong way"),
    ("lm_inputs_and_targets", shift_batch_axis, "along the batch axis"),
    ("next_token_distribution", temp_times, "MULTIPLIED by the temperature"),
    ("next_token_distribution", temp_after_softmax, "applied after the softmax"),
    ("next_token_distribution", topk_not_renormalised, "does not renormalise"),
    ("next_token_distribution", topk_le, "keeps k - 1 tokens"),
    ("next_token_distribution", topk_plus_one, "keeps k + 1 tokens"),
    ("next_token_distribution", greedy_one_hot, "one-hot argmax"),
    ("last_token_states", last_position, "h[:, -1]"),
    ("last_token_states", last_off_by_one, "off by one"),
    ("last_token_states", last_mean_pool, "mean pooling"),
    ("last_token_states", last_all_rows, "(B, B, d)"),
    ("bert_input", bert_sep_in_b, "the first [SEP] is in segment 1"),
    ("bert_input", bert_no_final_sep, "the final [SEP] is missing"),
    ("bert_input", bert_no_cls, "[CLS] is missing"),
    ("bert_input", bert_one_two, "numbered 1 and 2"),
    ("bert_input", bert_truthy_b, "an empty B ([]) is treated like no B"),
    ("bert_input", bert_tensor_segments, "not tensors"),
    ("bert_input", bert_appends_in_place, "in place"),
    ("wordpiece", wp_shortest, "shortest match first"),
    ("wordpiece", wp_no_hashes, "lack the '##' prefix"),
    ("wordpiece", wp_hashes_first, "the first piece got '##'"),
    ("wordpiece", wp_partial, "a partial result"),
    ("wordpiece", wp_no_length_rule, "longer than 100 characters"),
    ("wordpiece", wp_fixed_unk, "the unk argument is ignored"),
    ("wordpiece", wp_string, "not one str"),
    ("pad_collate", collate_left, "padding is on the left"),
    ("pad_collate", collate_zero, "0 instead of pad_id"),
    ("pad_collate", collate_time_first, "batch_first=True"),
    ("pad_collate", collate_labels_list, "labels is a Python list"),
    ("pad_collate", collate_lengths_max, "the lengths are wrong"),
    ("pad_collate", collate_library_order, "labels and lengths are swapped"),
    ("training_step", step_no_zero_grad, "gradients are never zeroed"),
    ("training_step", step_before_backward, "the parameters never change"),
    ("training_step", step_before_backward_no_zero_grad, "optimizer.step() comes before loss.backward()"),
    ("training_step", step_returns_tensor, "returned as a tensor"),
    ("training_step", step_no_step, "the parameters never change"),
    ("training_step", step_no_backward, "the parameters never change"),
    ("training_step", step_loss_after, "not the loss of this batch before the step"),
]


@pytest.mark.parametrize("name, fn, phrase", MISTAKES, ids=[f"{n}-{fn.__name__}" for n, fn, _ in MISTAKES])
def test_classic_mistake_is_named(name, fn, phrase, capsys):
    assert_named_mistake(name, fn, phrase, capsys)


def test_off_by_one_shift_by_two_is_wrong(capsys):
    ok, out = run("lm_inputs_and_targets", lambda ids: (ids[:, :-2], ids[:, 2:]), capsys)
    assert not ok and "wrong shape" in out


def test_step_message_says_how_to_get_the_float(capsys):
    _, out = run("training_step", step_returns_tensor, capsys)
    assert "loss.item()" in out


def test_temperature_after_softmax_is_caught_without_top_k(capsys):
    """With top-k the renormalisation hides p ** (1/T); the case with top_k=None and T != 1 must catch it."""
    _, out = run("next_token_distribution", temp_after_softmax, capsys)
    assert "top_k=None" in out


# ---------------------------------------------------------------------------
# Starters, learners' bugs, correct alternatives
# ---------------------------------------------------------------------------

STARTER_ARGS = {
    "lm_inputs_and_targets": "token_ids", "next_token_distribution": "logits, temperature, top_k",
    "last_token_states": "h, lengths", "bert_input": "tokens_a, tokens_b", "wordpiece": 'word, vocab, unk="[UNK]"',
    "pad_collate": "batch, pad_id", "training_step": "model, inputs, targets, loss_fn, optimizer",
}


@pytest.mark.parametrize("name", NAMES)
def test_starter_is_not_attempted(name, capsys):
    namespace = {}
    exec(f"def my_{name}({STARTER_ARGS[name]}):\n    raise NotImplementedError  # your code here\n", namespace)
    ok, out = run(name, namespace[f"my_{name}"], capsys)
    assert ok is False
    assert out == (f"⏳ {name}: not attempted yet — replace `raise NotImplementedError` with your code, "
                   "then run check again.\n")


def _raises(*args):
    raise RuntimeError("boom")


def _returns(value):
    return lambda *args: value


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fn", [_raises, _returns(None), _returns("text"), _returns(3), _returns((1, 2, 3)),
                                _returns(torch.zeros(2, 2)), _returns([None, None]), _returns((torch.zeros(1),) * 2)],
                         ids=["raises", "None", "str", "int", "tuple3", "tensor", "list_of_None", "two_tensors"])
def test_learner_bug_gets_a_verdict(name, fn, capsys):
    ok, out = run(name, fn, capsys)
    assert ok is False
    assert out.startswith(f"❌ {name}:") or out.startswith(f"⏳ {name}:"), out
    assert "Traceback" not in out


def test_raised_exception_is_named(capsys):
    for name in NAMES:
        _, out = run(name, _raises, capsys)
        assert "RuntimeError: boom" in out, (name, out)


def next_token_by_sorting(logits, temperature, top_k):
    """Correct, written differently: a sort instead of topk, probabilities renormalised by hand."""
    p = torch.softmax(logits / temperature, dim=-1)
    if top_k is not None:
        order = torch.argsort(logits, descending=True)
        keep = torch.zeros_like(p)
        keep[order[:top_k]] = 1
        p = p * keep
        p = p / p.sum()
    return p


def wordpiece_recursive(word, vocab, unk="[UNK]"):
    """Correct, written differently: recursion over the rest of the word."""
    if len(word) > 100:
        return [unk]

    def rest(start):
        if start == len(word):
            return []
        for end in range(len(word), start, -1):
            piece = ("##" if start else "") + word[start:end]
            if piece in vocab:
                tail = rest(end)
                return None if tail is None else [piece] + tail
        return None

    pieces = rest(0)
    return [unk] if pieces is None else pieces


def step_model_zero_grad(model, inputs, targets, loss_fn, optimizer):
    """Correct, written differently: model.zero_grad(set_to_none=True) and float(loss)."""
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def bert_input_tuple_pair(tokens_a, tokens_b):
    """Correct: a list [tokens, segment_ids] instead of a tuple is accepted."""
    tokens = ["[CLS]", *tokens_a, "[SEP]"]
    if tokens_b is None:
        return [tokens, [0] * len(tokens)]
    return [tokens + [*tokens_b, "[SEP]"], [0] * len(tokens) + [1] * (len(tokens_b) + 1)]


@pytest.mark.parametrize("name, fn", [
    ("lm_inputs_and_targets", lambda ids: (ids[..., :-1].clone(), ids.roll(-1, dims=1)[:, :-1])),
    ("next_token_distribution", next_token_by_sorting),
    ("last_token_states", lambda h, lengths: h.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, h.shape[2]))[:, 0]),
    ("bert_input", bert_input_tuple_pair),
    ("wordpiece", wordpiece_recursive),
    ("training_step", step_model_zero_grad),
], ids=lambda x: x if isinstance(x, str) else "")
def test_correct_alternatives_pass(name, fn, capsys):
    ok, out = run(name, fn, capsys)
    assert ok, out


def test_hints_and_solutions_exist(capsys):
    for name in NAMES:
        exercise = get_exercise(name)
        assert len(exercise.hints) == 3
        assert f"def {name}(" in exercise.solution


# ---------------------------------------------------------------------------
# The solutions agree with what the library does inside bigger functions
# ---------------------------------------------------------------------------

def test_lm_inputs_and_targets_matches_text_windows():
    stream = torch.arange(40)
    inputs, targets = text_windows(stream, block_size=6, batch_size=3, generator=torch.Generator().manual_seed(0))
    solution = get_exercise("lm_inputs_and_targets").load_solution()
    ours = solution(torch.cat([inputs, targets[:, -1:]], dim=1))
    assert torch.equal(ours[0], inputs) and torch.equal(ours[1], targets)


def test_last_token_states_is_what_the_classifier_reads():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    clf = GPTForClassification(gpt, num_classes=3).eval()
    idx, lengths = torch.randint(1, 17, (3, 8)), torch.tensor([8, 2, 5])
    solution = get_exercise("last_token_states").load_solution()
    with torch.no_grad():
        logits, _ = clf(idx, lengths=lengths)
        h = gpt.hidden_states(idx)
        by_hand = clf.head(solution(h, lengths))   # W_y on the states the exercise gathers
    assert torch.allclose(logits, by_hand, atol=1e-6)
