"""Data-parallel pretraining: 1 process with a global batch of 16 == 2 processes (torchrun, gloo) with 8 each.

Every process draws the same global batch and keeps its half, DDP averages the gradients, and the
BERT loss is scaled by the global count of masked tokens (course_lib/pretrain/loop.py), so the
losses agree step by step and the final weights agree, up to float rounding (the sums are added
in another order).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from course_lib.data.stories import make_story_corpus

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available in this torch build")

ARGS = ["--steps", "20", "--batch-size", "16", "--block-size", "32", "--n-layer", "2", "--n-head", "2",
        "--n-embd", "64", "--lr", "3e-3", "--log-every", "1", "--eval-every", "10", "--eval-batches", "1", "--quiet"]


def run(command: list[str], model: str, text: Path, out: Path) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", COURSE_DEVICE="cpu")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    result = subprocess.run([*command, "-m", "course_lib.pretrain", model, "--text", str(text), "--out", str(out),
                             *ARGS], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model", ["gpt", "bert"])
def test_two_processes_train_like_one(tmp_path, model):
    corpus = make_story_corpus(1000, seed=5)
    text = tmp_path / "stories.txt"
    sep = "\n" if model == "gpt" else "\n\n"  # bert: one story a paragraph, one sentence a line
    text.write_text(sep.join(s.text if model == "gpt" else "\n".join(s.sentences) for s in corpus.train))
    one = run([sys.executable], model, text, tmp_path / "one")
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"], model, text,
              tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 21))
    for a, b in zip(one, two):
        assert abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
        assert a["lr"] == b["lr"]
    assert abs(one[-1]["val_loss"] - two[-1]["val_loss"]) < 1e-5
    assert one[-1]["loss"] < one[0]["loss"] - 0.3  # it did learn: the comparison is not between two idle runs
    w1, w2 = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert w1.keys() == w2.keys()
    for name in w1:
        a, b = key_bias_apart(name, w1[name]), key_bias_apart(name, w2[name])
        torch.testing.assert_close(b[0], a[0], atol=1e-5, rtol=0, msg=name)
        # The key bias b_k changes every score of a query by the same q . b_k, which softmax ignores: its
        # gradient is 0 in exact arithmetic, so what it gets is rounding noise, which differs with the
        # order of the sums (1 or 2 processes), and Adam divides noise by its own size: steps of up to
        # lr in either direction. So it drifts apart by ~1e-5 here, without changing any output.
        torch.testing.assert_close(b[1], a[1], atol=1e-3, rtol=0, msg=name)


def key_bias_apart(name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(everything but the attention key bias, the key bias) of one checkpoint tensor."""
    if name.endswith("attn.c_attn.bias"):  # GPT-2 stores [b_q, b_k, b_v] in one vector
        q, k, v = tensor.chunk(3)
        return torch.cat([q, v]), k
    if name.endswith("attention.self.key.bias"):  # BERT
        return tensor[:0], tensor
    return tensor, tensor[:0]


def test_two_machines_form_trains_like_one_process(tmp_path):
    """README's several-machines command, with both 'machines' on this one: two torchrun launchers,
    --nnodes=2 and their own --node-rank, meeting at one --rdzv-endpoint (the c10d rendezvous)."""
    corpus = make_story_corpus(1000, seed=5)
    text = tmp_path / "stories.txt"
    text.write_text("\n".join(s.text for s in corpus.train))
    one = run([sys.executable], "gpt", text, tmp_path / "one")

    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", COURSE_DEVICE="cpu")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    out = tmp_path / "two_nodes"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={rank}",
                               "--nproc_per_node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
                               "--rdzv-id=course_test", "-m", "course_lib.pretrain", "gpt", "--text", str(text),
                               "--out", str(out), *ARGS],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, results):
        assert node.returncode == 0, err[-3000:]
    two = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in two] == [r["step"] for r in one]
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two)) < 1e-5
