"""course_lib.frameworks.trainer_run: Trainer alone with 16 rows == Trainer under torchrun, 2 processes (gloo) x 8 rows.

Trainer deals one shuffled order of the blocks out to the processes in consecutive slices, DDP
averages the gradients, and every row has the same number of predicted tokens, so the two loss
curves agree step by step up to float rounding. The contrasts show that the agreement is not a
coincidence: another data order or another global batch gives another curve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available in this torch build")

ARGS = ["--steps", "12", "--block-size", "32", "--num-stories", "1000", "--lr", "3e-3"]


def run(launcher: list[str], out: Path, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    result = subprocess.run([*launcher, "-m", "course_lib.frameworks.trainer_run", "--out", str(out), *ARGS, *args],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "log.json").read_text())


def test_two_processes_train_like_one(tmp_path):
    one = run([sys.executable], tmp_path / "one", "--per-device-batch-size", "16")
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"], tmp_path / "two",
              "--per-device-batch-size", "8")
    assert (one["world_size"], one["global_batch_size"]) == (1, 16)
    assert (two["world_size"], two["global_batch_size"]) == (2, 16)
    assert len(one["losses"]) == len(two["losses"]) == 12
    assert max(abs(a - b) for a, b in zip(one["losses"], two["losses"])) < 1e-5
    assert one["losses"][-1] < one["losses"][0] - 1.0  # it learned: not two idle runs that agree trivially
    assert [h["step"] for h in one["log_history"] if "loss" in h] == list(range(1, 13))

    # another data order (the blocks in sequence) or another global batch: another curve
    in_order = run([sys.executable], tmp_path / "in_order", "--per-device-batch-size", "16", "--no-shuffle")
    half = run([sys.executable], tmp_path / "half", "--per-device-batch-size", "8")
    assert max(abs(a - b) for a, b in zip(one["losses"][1:], in_order["losses"][1:])) > 1e-3
    assert max(abs(a - b) for a, b in zip(one["losses"][1:], half["losses"][1:])) > 1e-3


def test_bad_arguments_end_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course_lib.frameworks.trainer_run", "--out", str(tmp_path),
                             "--n-embd", "65", "--n-head", "2"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "--n-embd" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "course_lib.frameworks.trainer_run", "--out", str(tmp_path),
                             "--steps", "0"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and "--steps" in result.stderr and "positive int" in result.stderr
