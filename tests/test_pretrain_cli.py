"""python -m course_lib.pretrain in one process: errors, files, exact resume, Hugging Face loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.bert import BertForPreTraining
from course_lib.data.stories import make_story_corpus
from course_lib.gpt import GPT
from course_lib.pretrain.cli import main
from course_lib.pretrain.data import BertData, load_tokenizer, shard
from course_lib.pretrain.loop import bert_shard_loss
from course_lib.tasks.bert import bert_loss

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "24", "--batch-size", "8",
         "--log-every", "1", "--eval-every", "5", "--eval-batches", "2", "--quiet"]


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    corpus = make_story_corpus(600, seed=3)
    folder = tmp_path_factory.mktemp("texts")
    gpt = folder / "stories.txt"
    gpt.write_text("\n".join(s.text for s in corpus.train), encoding="utf-8")
    bert = folder / "paragraphs.txt"  # one story a paragraph, one sentence a line
    bert.write_text("\n\n".join("\n".join(s.sentences) for s in corpus.train), encoding="utf-8")
    return {"gpt": gpt, "bert": bert}


def losses(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]


def error_line(capsys, argv) -> str:
    """Run main(argv), expect exit code 2; return the one line it printed."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --- errors: exit code 2, one line naming the argument --------------------------------------------

def test_errors_name_the_argument(tmp_path, texts, capsys, monkeypatch):
    out = str(tmp_path / "run")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    short = tmp_path / "short.txt"
    short.write_text("abcdef\n" * 3)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (["gpt", "--text", str(tmp_path / "missing.txt"), "--out", out], "--text", "no text file"),
        (["gpt", "--text", str(empty), "--out", out], "--text", "empty"),
        (["gpt", "--text", str(short), "--out", out, "--block-size", "64"], "--text", "too short"),
        (["gpt", "--text", str(texts["gpt"]), "--out", str(a_file)], "--out", "is a file"),
        (["gpt", "--text", str(texts["gpt"]), "--out", str(a_file / "sub")], "--out", "is a file"),
        (["gpt", "--text", str(texts["gpt"]), "--out", out, "--n-embd", "30", "--n-head", "4"], "--n-embd",
         "not divisible"),
        (["gpt", "--text", str(texts["gpt"]), "--out", out, "--steps", "0"], "--steps", "positive int"),
        (["gpt", "--text", str(texts["gpt"]), "--out", out, "--lr", "-1"], "--lr", "> 0"),
        (["gpt", "--text", str(texts["gpt"]), "--out", out, "--resume"], "--resume", "no checkpoint"),
        (["bert", "--text", str(texts["bert"]), "--out", out, "--tokenizer", "char"], "--tokenizer", "wordpiece"),
        (["bert", "--text", str(short), "--out", out, "--block-size", "8"], "--text", "sentence pairs"),
    ]
    for argv, argument, words in cases:
        line = error_line(capsys, argv)
        assert f"argument {argument}" in line and words in line, (argv, line)
    assert not Path(out).exists()  # nothing written by a refused command

    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node=3 would set it
    line = error_line(capsys, ["gpt", "--text", str(texts["gpt"]), "--out", out, "--batch-size", "16"])
    assert "argument --batch-size" in line and "3 processes" in line


def test_error_from_the_real_command_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course_lib.pretrain", "gpt", "--text", str(tmp_path / "nope.txt"),
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "argument --text" in result.stderr


def test_help_lists_the_options():
    result = subprocess.run([sys.executable, "-m", "course_lib.pretrain", "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0
    for option in ("--text", "--out", "--steps", "--batch-size", "--block-size", "--n-layer", "--n-head", "--n-embd",
                   "--lr", "--seed", "--resume", "--tokenizer", "torchrun"):
        assert option in result.stdout


# --- what a run writes --------------------------------------------------------------------------------

def test_gpt_run_writes_logs_tokenizer_and_a_gpt2_folder(tmp_path, texts):
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "gpt"
    assert main(["gpt", "--text", str(texts["gpt"]), "--out", str(out), "--steps", "10", *SMALL]) == 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 11))
    assert all({"loss", "lr", "tokens_per_s"} <= r.keys() for r in records)
    assert [r["step"] for r in records if "val_loss" in r] == [5, 10]
    assert records[-1]["loss"] < records[0]["loss"]
    assert list((out / "tb").glob("events.out.tfevents.*"))

    tokenizer = load_tokenizer(out)  # character-level: every character of the text, nothing else
    text = texts["gpt"].read_text()
    assert sorted(tokenizer.itos) == sorted(set(text)) and tokenizer.decode(tokenizer.encode(text[:50])) == text[:50]

    ours = GPT.from_hf_gpt2(out)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    idx = torch.tensor([tokenizer.encode(text[:24]), tokenizer.encode(text[30:54])])
    with torch.no_grad():
        torch.testing.assert_close(theirs(idx).logits, ours(idx)[0], atol=1e-5, rtol=1e-5)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 10
    for name, value in ours.state_dict().items():
        torch.testing.assert_close(value, saved["model"][name])


def test_bert_run_writes_a_bert_folder_and_a_vocab_txt(tmp_path, texts):
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "bert"
    assert main(["bert", "--text", str(texts["bert"]), "--out", str(out), "--steps", "6", *SMALL]) == 0
    assert len(losses(out)) == 6
    ours = BertForPreTraining.from_pretrained(out).eval()
    theirs = transformers.BertForPreTraining.from_pretrained(out).eval()
    hf_tokenizer = transformers.BertTokenizer(str(out / "vocab.txt"))
    tokenizer = load_tokenizer(out)
    a, b = "the girl went to the park .", "then she felt happy ."
    e = tokenizer.encode(a, b)
    assert hf_tokenizer(a, b)["input_ids"] == e["input_ids"]
    ids, types = torch.tensor([e["input_ids"]]), torch.tensor([e["token_type_ids"]])
    with torch.no_grad():
        mlm, nsp, _ = ours(ids, types)
        out_hf = theirs(input_ids=ids, token_type_ids=types)
    torch.testing.assert_close(out_hf.prediction_logits, mlm, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_hf.seq_relationship_logits, nsp, atol=1e-4, rtol=1e-4)


def test_bert_shards_add_up_to_bert_loss(texts):
    """N processes' scaled shard losses average to notebook 04's bert_loss of the global batch,
    although the shards hold different numbers of masked tokens."""
    from course_lib.pretrain.data import build_tokenizer
    from course_lib.bert import BertConfig

    text = texts["bert"].read_text()
    tokenizer = build_tokenizer("wordpiece", "bert", text, 8000)
    data = BertData(text, tokenizer, 24, seed=0)
    batch = data.batch(torch.Generator().manual_seed(1), 8)
    masked = [(shard(batch, r, 2)["mlm_labels"] != -100).sum().item() for r in range(2)]
    assert masked[0] != masked[1]  # the case that needs the global count
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=24,
                                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    expected = bert_loss(model, batch)
    torch.testing.assert_close(bert_shard_loss(model, batch, batch, 1), expected)
    two = sum(bert_shard_loss(model, shard(batch, r, 2), batch, 2) for r in range(2)) / 2
    torch.testing.assert_close(two, expected)
    naive = sum(bert_loss(model, shard(batch, r, 2)) for r in range(2)) / 2  # mean of the shards' means
    assert abs(float((naive - expected).detach())) > 1e-4


# --- --resume -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["gpt", "bert"])
def test_resume_continues_bit_for_bit(tmp_path, texts, model):
    common = [model, "--text", str(texts[model]), "--steps", "20", *SMALL, "--dropout", "0.1"]
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    main([*common, "--out", str(straight)])
    main([*common, "--out", str(halves), "--stop-after", "10"])
    assert [s for s, _ in losses(halves)] == list(range(1, 11))
    main([*common, "--out", str(halves), "--resume"])
    assert losses(halves) == losses(straight)  # identical floats, not close ones
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(halves / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 20
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_resume_refuses_other_settings(tmp_path, texts, capsys):
    out = str(tmp_path / "run")
    main(["gpt", "--text", str(texts["gpt"]), "--out", out, "--steps", "4", *SMALL])
    line = error_line(capsys, ["gpt", "--text", str(texts["gpt"]), "--out", out, "--steps", "4", *SMALL,
                               "--lr", "3e-4", "--resume"])
    assert "argument --lr" in line and "resumed" in line
