"""course_lib.gpt: the GPT language model, its GPT-2 loader (against transformers), fine-tuning."""

import math

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from course_lib.exercises import get_exercise
from course_lib.gpt import GPT, IGNORE_INDEX, GPTConfig, GPTForClassification, next_token_probs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = GPTConfig(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(CONFIG).eval()


def test_shapes_tying_and_loss(model):
    idx = torch.randint(0, 23, (3, 10))
    logits, loss = model(idx)
    assert logits.shape == (3, 10, 23) and loss is None
    assert model.lm_head.weight is model.wte.weight  # P(u) = softmax(h_n W_e^T)
    targets = torch.randint(0, 23, (3, 10))
    targets[0, 7:] = IGNORE_INDEX
    _, loss = model(idx, targets)
    mask = targets != IGNORE_INDEX
    expected = -torch.log_softmax(logits, -1)[mask].gather(-1, targets[mask][:, None]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # tying saves one V x d matrix: counted once
    assert model.num_parameters() == sum(p.numel() for p in set(model.parameters()))
    assert model.num_parameters(embeddings=False) == model.num_parameters() - 23 * 16 - 12 * 16


def test_initial_loss_is_near_uniform(model):
    idx = torch.randint(0, 23, (8, 12))
    _, loss = model(idx, torch.randint(0, 23, (8, 12)))
    assert abs(loss.item() - math.log(23)) < 0.1


def test_causal_a_later_token_changes_no_earlier_logit(model):
    idx = torch.randint(0, 23, (1, 12))
    changed = idx.clone()
    changed[0, 8] = (idx[0, 8] + 1) % 23
    a, b = model(idx)[0], model(changed)[0]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:], atol=1e-4)


def test_bad_input_raises_clear_errors(model):
    with pytest.raises(ValueError, match="more than block_size=12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids in \[0, vocab_size=23\)"):
        model(torch.full((1, 3), 23))
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(vocab_size=5, block_size=4, n_head=3, n_embd=16)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        GPTConfig(vocab_size=5, block_size=0)


@pytest.fixture
def gpt2_folder(tmp_path):
    """A small random GPT2LMHeadModel saved by transformers, and the model itself (eval mode)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    reference.save_pretrained(tmp_path)
    return tmp_path, reference


def test_from_hf_gpt2_equals_transformers(gpt2_folder, tmp_path):
    folder, reference = gpt2_folder
    ours = GPT.from_hf_gpt2(folder)
    assert ours.lm_head.weight is ours.wte.weight
    assert not ours.training
    idx = torch.randint(0, 61, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], reference(idx).logits, atol=1e-4, rtol=1e-4)
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors"):
        GPT.from_hf_gpt2(tmp_path / "nowhere")


def _edit_checkpoint(folder, edit) -> None:
    file = folder / "model.safetensors"
    state = load_file(str(file))
    edit(state)
    save_file(state, str(file))


def test_from_hf_gpt2_names_a_missing_or_unused_tensor(gpt2_folder):
    folder, _ = gpt2_folder
    _edit_checkpoint(folder, lambda state: state.update({"transformer.h.0.attn.extra.weight": torch.zeros(3)}))
    with pytest.raises(ValueError, match=r"does not fit the model: unused transformer\.h\.0\.attn\.extra\.weight$"):
        GPT.from_hf_gpt2(folder)
    _edit_checkpoint(folder, lambda state: state.pop("transformer.h.0.attn.extra.weight"))
    _edit_checkpoint(folder, lambda state: state.pop("transformer.h.1.ln_2.bias"))
    with pytest.raises(ValueError, match=r"model\.safetensors \(GPT-2\) does not fit the model: "
                                         r"missing transformer\.h\.1\.ln_2\.bias$"):
        GPT.from_hf_gpt2(folder)


def test_from_hf_gpt2_skips_mask_buffers_and_the_tied_head(gpt2_folder):
    """Older GPT-2 files carry each block's causal mask and a copy of wte as lm_head: neither is a weight."""
    folder, reference = gpt2_folder

    def add_buffers(state):
        for i in range(2):
            state[f"transformer.h.{i}.attn.bias"] = torch.ones(1, 1, 24, 24).tril()
            state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        state["lm_head.weight"] = state["transformer.wte.weight"].clone()

    _edit_checkpoint(folder, add_buffers)
    idx = torch.randint(0, 61, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(GPT.from_hf_gpt2(folder)(idx)[0], reference(idx).logits, atol=1e-4, rtol=1e-4)


def test_from_hf_gpt2_reads_a_checkpoint_without_prefix(gpt2_folder):
    """GPT2Model (no LM head) saves its tensors without the "transformer." prefix."""
    folder, reference = gpt2_folder
    _edit_checkpoint(folder, lambda state: state.update({k.removeprefix("transformer."): state.pop(k)
                                                         for k in list(state)}))
    idx = torch.randint(0, 61, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(GPT.from_hf_gpt2(folder)(idx)[0], reference(idx).logits, atol=1e-4, rtol=1e-4)


def test_generate_is_seeded_and_respects_top_k(model):
    prompt = torch.tensor([[1, 2, 3]])
    a = model.generate(prompt, 9, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 9, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1, 12) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    long = model.generate(prompt, 20, generator=torch.Generator().manual_seed(0))  # crops to block_size
    assert long.shape == (1, 23)
    probs = next_token_probs(model(prompt)[0][:, -1], top_k=3)
    assert int((probs > 0).sum()) == 3
    top1 = model.generate(prompt, 5, top_k=1)
    greedy = prompt
    for _ in range(5):
        greedy = torch.cat([greedy, model(greedy)[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(top1, greedy)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate(prompt, 3, temperature=0)
    with pytest.raises(ValueError, match=r"idx must hold ids in \[0, vocab_size=23\)"):
        model.generate(torch.tensor([[1, 23]]), 3)


def test_generate_runs_in_eval_mode_and_gives_the_mode_back():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=23, block_size=12, n_layer=1, n_head=2, n_embd=16, dropout=0.5)).train()
    prompt = torch.tensor([[1, 2, 3]])
    a = model.generate(prompt, 6, generator=torch.Generator().manual_seed(0))
    assert model.training  # given back as it came
    model.eval()
    assert torch.equal(a, model.generate(prompt, 6, generator=torch.Generator().manual_seed(0)))  # no dropout inside
    assert not model.training


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    cold, warm = next_token_probs(logits, 0.5), next_token_probs(logits, 2.0)
    assert cold.max() > F.softmax(logits, -1).max() > warm.max()


def test_classifier_reads_the_last_real_token_and_l3(model):
    clf = GPTForClassification(model, num_classes=3).eval()
    idx = torch.randint(1, 23, (2, 6))
    padded = torch.cat([idx, torch.zeros(2, 4, dtype=torch.long)], 1)
    a, _ = clf(idx)
    b, _ = clf(padded, lengths=torch.tensor([6, 6]))
    assert torch.allclose(a, b, atol=1e-5)  # padding after the text changes nothing
    labels = torch.tensor([0, 2])
    lengths = torch.tensor([6, 4])
    logits, l3 = clf(padded, labels=labels, lengths=lengths, lm_weight=0.5)
    lm_logits = model.lm_head(model.hidden_states(padded))[:, :-1]
    targets = padded[:, 1:].clone()
    targets[0, 5:] = IGNORE_INDEX
    targets[1, 3:] = IGNORE_INDEX
    reference = get_exercise("gpt_combined_loss").checker.reference  # the exercise's L2 + λ L1
    (expected,) = reference(logits, labels, lm_logits, targets, 0.5)
    assert l3.item() == pytest.approx(expected.item(), rel=1e-5)
    _, l2 = clf(padded, labels=labels, lengths=lengths)
    assert l2.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    with pytest.raises(ValueError, match="lengths must be"):
        clf(padded, lengths=torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="gpt must be a GPT"):
        GPTForClassification(torch.nn.Linear(2, 2), 2)
