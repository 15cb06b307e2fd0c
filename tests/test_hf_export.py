"""Saving the course's GPT and BERT as Hugging Face folders (config.json + model.safetensors).

``GPT.save_hf_gpt2`` and ``BertForPreTraining.save_pretrained`` against transformers itself:
the folders load into ``GPT2LMHeadModel`` / ``BertForPreTraining`` with no missing or unexpected
tensor and no warning, give the same logits, load back into the course's models weight for weight,
and an interrupted save leaves the previous files whole.
"""

import json
import logging
import os
import pathlib

import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file, save_file

from course_lib.bert import BertConfig, BertForPreTraining
from course_lib.gpt import GPT, GPTConfig

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing may try the network: every folder here is local."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def hf_warnings():
    """The warnings transformers logs while a test runs (its loading reports among them).

    Other test modules turn transformers' verbosity down to errors: set it to warnings here, or
    an empty list would prove nothing.
    """
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler, logger = Keep(level=logging.WARNING), logging.getLogger("transformers")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    transformers.logging.set_verbosity(verbosity)


def _shake(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Add noise to every parameter: freshly made LayerNorms (1, 0) and biases (0) would hide a
    mixed-up or transposed tensor. Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _no_loading_problems(info: dict) -> None:
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert not info["error_msgs"], info


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# --- GPT -> GPT2LMHeadModel ---------------------------------------------------------------

GPT_CONFIGS = [
    dict(vocab_size=37, block_size=12, n_layer=1, n_head=1, n_embd=8),
    dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, layer_norm_eps=1e-6),
    dict(vocab_size=23, block_size=9, n_layer=3, n_head=4, n_embd=16),
]


def _gpt(seed: int = 0, **sizes) -> GPT:
    torch.manual_seed(seed)
    return _shake(GPT(GPTConfig(dropout=0.1, **sizes)), seed)


@pytest.mark.parametrize("sizes", GPT_CONFIGS, ids=lambda s: f"{s['n_layer']}layers")
def test_gpt_loads_into_transformers_with_the_same_logits(sizes, tmp_path, hf_warnings):
    model = _gpt(**sizes)
    folder = model.save_hf_gpt2(tmp_path / "gpt")
    assert folder == tmp_path / "gpt" and isinstance(folder, pathlib.Path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]

    theirs, info = transformers.GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True)
    _no_loading_problems(info)
    assert hf_warnings == []
    assert not theirs.training
    c = theirs.config
    assert (c.n_positions, c.n_layer, c.n_head, c.n_embd, c.vocab_size) == (
        sizes["block_size"], sizes["n_layer"], sizes["n_head"], sizes["n_embd"], sizes["vocab_size"])
    assert (c.resid_pdrop, c.embd_pdrop, c.attn_pdrop) == (0.1, 0.1, 0.1)
    assert c.activation_function == "gelu_pytorch_tanh" and c.n_inner == 4 * sizes["n_embd"]
    assert theirs.lm_head.weight.data_ptr() == theirs.transformer.wte.weight.data_ptr()  # tied again

    g = torch.Generator().manual_seed(1)
    for T in (sizes["block_size"], 3):
        idx = torch.randint(0, sizes["vocab_size"], (3, T), generator=g)
        with torch.no_grad():
            torch.testing.assert_close(theirs(idx).logits, model(idx)[0], atol=1e-5, rtol=0)

    back = GPT.from_hf_gpt2(folder)
    assert back.config == GPTConfig(**{**sizes, "dropout": 0.0})  # from_hf_gpt2 loads for inference
    _same_state(back, model)


def test_gpt_config_json_spells_out_what_changes_the_computation(tmp_path):
    folder = _gpt(**GPT_CONFIGS[1]).save_hf_gpt2(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    assert config["layer_norm_epsilon"] == 1e-6 and config["n_ctx"] == config["n_positions"] == 16
    assert config["scale_attn_weights"] is True and config["scale_attn_by_inverse_layer_idx"] is False
    assert config["reorder_and_upcast_attn"] is False and config["tie_word_embeddings"] is True
    # GPT-2's default ids (50256) would lie outside a small vocabulary: left unset
    assert config["bos_token_id"] is None and config["eos_token_id"] is None
    # what transformers itself writes: lm_head.weight is wte.weight, stored once
    names = set(load_file(str(folder / "model.safetensors")))
    assert "lm_head.weight" not in names and "transformer.wte.weight" in names
    assert all(n.startswith("transformer.") for n in names)


def test_gpt_activation_is_the_course_gelu_not_gelu_new(tmp_path):
    """gelu_new writes the tanh formula out and rounds differently: exact equality needs gelu_pytorch_tanh."""
    x = torch.linspace(-6, 6, 10001)
    ours = GPT(GPTConfig(vocab_size=5, block_size=2, n_layer=1, n_head=1, n_embd=4)).blocks[0].ffn
    folder = _gpt(**GPT_CONFIGS[0]).save_hf_gpt2(tmp_path)
    act = transformers.activations.ACT2FN[json.loads((folder / "config.json").read_text())["activation_function"]]
    from course_lib.transformer import ACTIVATIONS
    assert torch.equal(act(x), ACTIVATIONS[ours.activation](x))
    assert not torch.equal(transformers.activations.ACT2FN["gelu_new"](x), ACTIVATIONS[ours.activation](x))


def test_gpt_without_biases_is_saved_with_zero_biases(tmp_path, hf_warnings):
    sizes = dict(GPT_CONFIGS[1], bias=False)
    model = _gpt(**sizes)
    folder = model.save_hf_gpt2(tmp_path)
    theirs, info = transformers.GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True)
    _no_loading_problems(info)
    assert hf_warnings == []
    idx = torch.randint(0, sizes["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(2))
    back = GPT.from_hf_gpt2(folder)
    assert back.config.bias is True  # GPT-2 always has biases: they come back, all zero
    biases = {k: v for k, v in back.state_dict().items() if k.endswith(".bias")}
    assert len(biases) == 1 + 8 * sizes["n_layer"] and all(not v.any() for v in biases.values())
    with torch.no_grad():
        torch.testing.assert_close(theirs(idx).logits, model(idx)[0], atol=1e-5, rtol=0)
        assert torch.equal(back(idx)[0], model(idx)[0])


def test_the_capture_sees_a_loading_report(tmp_path, hf_warnings):
    """The 'no warning' checks above can fail: an unexpected tensor is reported and caught here."""
    folder = _gpt(**GPT_CONFIGS[0]).save_hf_gpt2(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    state["transformer.h.0.extra"] = torch.zeros(2)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    _, info = transformers.GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True)
    assert info["unexpected_keys"] == {"transformer.h.0.extra"}
    assert any("transformer.h.0.extra" in message for message in hf_warnings)


# --- BertForPreTraining -> transformers.BertForPreTraining --------------------------------

BERT_CONFIGS = [
    dict(vocab_size=41, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
         max_position_embeddings=20),
    dict(vocab_size=30, hidden_size=12, num_hidden_layers=3, num_attention_heads=3, intermediate_size=20,
         max_position_embeddings=12, type_vocab_size=3, layer_norm_eps=1e-5),
]


def _bert(seed: int = 0, **sizes) -> BertForPreTraining:
    torch.manual_seed(seed)
    return _shake(BertForPreTraining(BertConfig(**sizes)), seed)


def _bert_batch(config: dict, seed: int = 3):
    """ids, segments and a padding mask (B=3, T=10): row 1 padded after 6 tokens, row 2 after 3."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, config["vocab_size"], (3, 10), generator=g)
    segments = torch.randint(0, config.get("type_vocab_size", 2), (3, 10), generator=g)
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 6:] = mask[2, 3:] = 0
    ids[mask == 0] = 0  # [PAD]
    return ids, segments, mask


@pytest.mark.parametrize("sizes", BERT_CONFIGS, ids=lambda s: f"{s['num_hidden_layers']}layers")
def test_bert_loads_into_transformers_with_the_same_logits(sizes, tmp_path, hf_warnings):
    model = _bert(**sizes)
    folder = model.save_pretrained(tmp_path / "bert")
    assert folder == tmp_path / "bert" and isinstance(folder, pathlib.Path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]

    theirs, info = transformers.BertForPreTraining.from_pretrained(folder, output_loading_info=True)
    _no_loading_problems(info)
    assert hf_warnings == []
    assert not theirs.training and theirs.config.pad_token_id == 0 and theirs.config.hidden_act == "gelu"
    ids, segments, mask = _bert_batch(sizes)
    with torch.no_grad():
        out = theirs(input_ids=ids, token_type_ids=segments, attention_mask=mask)
        mlm, nsp, _ = model(ids, segments, mask)
    torch.testing.assert_close(out.prediction_logits, mlm, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.seq_relationship_logits, nsp, atol=1e-5, rtol=0)

    back = BertForPreTraining.from_pretrained(folder)
    assert not back.training and back.bert.config == BertConfig(**sizes)
    _same_state(back, model)
    assert not any(t.is_meta for t in [*back.parameters(), *back.buffers()])
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(back(ids, segments, mask)[:2], (mlm, nsp)))


def test_bert_config_json_and_names_are_what_transformers_writes(tmp_path):
    sizes = BERT_CONFIGS[0]
    ours = _bert(**sizes).save_pretrained(tmp_path / "ours")
    torch.manual_seed(0)
    reference = transformers.BertForPreTraining(transformers.BertConfig(**sizes))
    reference.save_pretrained(tmp_path / "theirs")
    names = {name: set(load_file(str(tmp_path / name / "model.safetensors"))) for name in ("ours", "theirs")}
    assert names["ours"] == names["theirs"]
    config = json.loads((ours / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["model_type"] == "bert"
    assert config["position_embedding_type"] == "absolute" and config["pad_token_id"] == 0
    assert BertConfig.from_json(ours / "config.json") == BertConfig(**sizes)


def test_bert_from_pretrained_reads_a_folder_transformers_saved(tmp_path):
    torch.manual_seed(0)
    reference = _shake(transformers.BertForPreTraining(transformers.BertConfig(**BERT_CONFIGS[1])), 5)
    reference.save_pretrained(tmp_path)
    ours = BertForPreTraining.from_pretrained(tmp_path)
    ids, segments, mask = _bert_batch(BERT_CONFIGS[1])
    with torch.no_grad():
        out = reference(input_ids=ids, token_type_ids=segments, attention_mask=mask)
        mlm, nsp, _ = ours(ids, segments, mask)
    torch.testing.assert_close(mlm, out.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(nsp, out.seq_relationship_logits, atol=1e-5, rtol=0)


def test_bert_from_pretrained_skips_the_tied_decoder_copies_of_older_files(tmp_path):
    model = _bert(**BERT_CONFIGS[0])
    folder = model.save_pretrained(tmp_path)
    file = folder / "model.safetensors"
    state = load_file(str(file))
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"].clone()
    state["cls.predictions.decoder.bias"] = state.pop("cls.predictions.bias")  # only the tied copy left
    save_file(state, str(file), metadata={"format": "pt"})
    _same_state(BertForPreTraining.from_pretrained(folder), model)


def test_bert_also_loads_into_masked_lm(tmp_path, hf_warnings):
    sizes = BERT_CONFIGS[0]
    model = _bert(**sizes)
    folder = model.save_pretrained(tmp_path)
    theirs, info = transformers.BertForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    # what any BertForPreTraining checkpoint leaves over: the pooler and the NSP head, and a report saying so
    assert info["unexpected_keys"] == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                       "cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    assert any("LOAD REPORT" in message for message in hf_warnings)
    ids, segments, mask = _bert_batch(sizes)
    with torch.no_grad():
        torch.testing.assert_close(theirs(input_ids=ids, token_type_ids=segments, attention_mask=mask).logits,
                                   model(ids, segments, mask)[0], atol=1e-5, rtol=0)


def test_bert_from_pretrained_refuses_folders_without_fitting_heads(tmp_path):
    sizes = BERT_CONFIGS[0]
    encoder_only = tmp_path / "encoder"
    transformers.BertModel(transformers.BertConfig(**sizes)).save_pretrained(encoder_only)
    with pytest.raises(ValueError, match=r"holds no pretraining heads.*BertModel\.from_pretrained"):
        BertForPreTraining.from_pretrained(encoder_only)

    folder = _bert(**sizes).save_pretrained(tmp_path / "bert")
    file = folder / "model.safetensors"
    good = load_file(str(file))
    save_file({**good, "cls.predictions.extra": torch.zeros(2)}, str(file), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"heads\) does not fit the model: unused cls\.predictions\.extra$"):
        BertForPreTraining.from_pretrained(folder)
    save_file({k: v for k, v in good.items() if k != "cls.seq_relationship.bias"}, str(file), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"missing cls\.seq_relationship\.bias"):
        BertForPreTraining.from_pretrained(folder)
    save_file({**good, "cls.seq_relationship.weight": torch.zeros(3, 16)}, str(file), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"seq_relationship\.weight \(3, 16\) \(config\.json asks for \(2, 16\)\)"):
        BertForPreTraining.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="config.json and model.safetensors"):
        BertForPreTraining.from_pretrained(tmp_path / "nothing")
    with pytest.raises(TypeError, match="path must be a str or a pathlib.Path"):
        BertForPreTraining.from_pretrained(3)


def test_bert_with_relu_is_refused_both_ways(tmp_path):
    """The course's MLM head always applies GELU; transformers' applies hidden_act."""
    model = _bert(**BERT_CONFIGS[0], hidden_act="relu")
    with pytest.raises(ValueError, match="hidden_act='relu' cannot be saved.*always uses GELU"):
        model.save_pretrained(tmp_path / "relu")
    assert not (tmp_path / "relu").exists()
    config = transformers.BertConfig(**BERT_CONFIGS[0], hidden_act="relu")
    transformers.BertForPreTraining(config).save_pretrained(tmp_path / "theirs")
    with pytest.raises(ValueError, match="hidden_act='relu' in .*config.json cannot be loaded"):
        BertForPreTraining.from_pretrained(tmp_path / "theirs")


def test_bert_config_to_dict_and_to_json(tmp_path):
    config = BertConfig(**BERT_CONFIGS[1])
    d = config.to_dict()
    assert d["num_hidden_layers"] == 3 and d["type_vocab_size"] == 3 and BertConfig(**d) == config
    file = config.to_json(tmp_path / "new" / "config.json")
    assert file == tmp_path / "new" / "config.json"
    assert BertConfig.from_json(file) == config
    theirs = transformers.BertConfig.from_pretrained(file.parent)
    assert {k: getattr(theirs, k) for k in d} == d and theirs.model_type == "bert"
    with pytest.raises(ValueError, match="is a folder"):
        config.to_json(tmp_path)
    with pytest.raises(TypeError, match="path must be a str or a pathlib.Path"):
        config.to_json(None)


# --- Both: atomic writes, bad paths -----------------------------------------------------------

SAVERS = {
    "gpt": lambda seed: _gpt(seed, **GPT_CONFIGS[0]).save_hf_gpt2,
    "bert": lambda seed: _bert(seed, **BERT_CONFIGS[0]).save_pretrained,
}


@pytest.mark.parametrize("kind", SAVERS)
def test_a_failed_save_leaves_the_older_files_whole(kind, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    SAVERS[kind](0)(folder)
    (folder / "vocab.txt").write_text("kept\n")  # other files in the folder are not touched
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(tensors, filename, metadata=None):
        pathlib.Path(filename).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="No space left"):
        SAVERS[kind](1)(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary file left either

    monkeypatch.undo()
    SAVERS[kind](1)(folder)  # a later save replaces both files
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after["vocab.txt"] == before["vocab.txt"] and after["model.safetensors"] != before["model.safetensors"]
    if os.name == "posix":  # not the private 0o600 of a temporary file
        assert all((folder / n).stat().st_mode & 0o777 == 0o644 for n in ("config.json", "model.safetensors"))


@pytest.mark.parametrize("kind", SAVERS)
def test_bad_paths_are_refused_before_anything_is_written(kind, tmp_path):
    save = SAVERS[kind](0)
    for bad in (None, 3, b"folder"):
        with pytest.raises(TypeError, match="path must be a str or a pathlib.Path naming a folder"):
            save(bad)
    with pytest.raises(ValueError, match="path must name a folder"):
        save("")
    file = tmp_path / "model.bin"
    file.write_text("not a folder")
    with pytest.raises(ValueError, match=rf"path='{file}' is a file"):
        save(file)
    with pytest.raises(ValueError, match=rf"'{file}' is a file, not a folder"):
        save(file / "inside")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
    assert save(str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"  # a str works, missing parents are made
