"""Tests of course_lib.logs: TensorBoard event files read back without a server, and a real board started and stopped."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from course_lib import logs
from course_lib.logs import free_port, read_images, read_scalars, repeated_steps, stop_tensorboard


def _writer(folder):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed: SummaryWriter cannot write logs")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(folder)


def test_read_scalars(tmp_path):
    with _writer(tmp_path) as writer:
        for step in range(5):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step)
    scalars = read_scalars(tmp_path)
    steps, values = scalars["loss/train"]
    assert steps == [0, 1, 2, 3, 4]
    assert values == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
    with pytest.raises(FileNotFoundError, match="no log folder"):
        read_scalars(tmp_path / "none")


def test_read_images_gives_back_the_pixels_written(tmp_path):
    rng = np.random.default_rng(0)
    # a float picture in the (C, H, W) layout of to_chw_float / torchvision's ToTensor
    chw = rng.random((3, 5, 7)).astype(np.float32)
    # a uint8 picture in the (H, W, C) layout of np.asarray(PIL picture), and a grey (H, W) one
    hwc = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    grey = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    with _writer(tmp_path) as writer:
        writer.add_image("pictures/chw", chw, 0)
        writer.add_image("pictures/chw", 1.0 - chw, 1)
        writer.add_image("pictures/hwc", hwc, 3, dataformats="HWC")
        writer.add_image("attention/head0", grey, 0, dataformats="HW")
    images = read_images(tmp_path)

    assert sorted(images) == ["attention/head0", "pictures/chw", "pictures/hwc"]
    (step0, first), (step1, second) = images["pictures/chw"]
    assert (step0, step1) == (0, 1)
    assert first.dtype == np.uint8 and first.shape == (5, 7, 3)
    # add_image scales floats by 255 and rounds down; the PNG round trip is lossless
    np.testing.assert_array_equal(first, (chw.transpose(1, 2, 0) * 255).astype(np.uint8))
    np.testing.assert_array_equal(second, ((1.0 - chw).transpose(1, 2, 0) * 255).astype(np.uint8))
    [(step, back)] = images["pictures/hwc"]
    assert step == 3
    np.testing.assert_array_equal(back, hwc)  # uint8 is stored as it is
    [(_, attention)] = images["attention/head0"]
    assert attention.shape[:2] == (3, 4) and attention.dtype == np.uint8
    # SummaryWriter stores a grey picture as RGB: every channel the same grey
    expected = (grey * 255).astype(np.uint8)
    for c in range(attention.shape[2]):
        np.testing.assert_array_equal(attention[:, :, c], expected)


def test_read_images_keeps_every_picture(tmp_path):
    # TensorBoard's reader keeps a random sample of 4 pictures per tag by default; we want all
    with _writer(tmp_path) as writer:
        for step in range(9):
            writer.add_image("insects", np.full((1, 2, 2), step / 10, dtype=np.float32), step)
    steps = [step for step, _ in read_images(tmp_path)["insects"]]
    assert steps == list(range(9))


def test_read_images_checks_its_argument(tmp_path):
    with pytest.raises(TypeError, match="logdir must be a str or a pathlib.Path"):
        read_images(3)
    with pytest.raises(FileNotFoundError, match="no log folder"):
        read_images(tmp_path / "none")
    with _writer(tmp_path / "runs" / "a") as writer:
        writer.add_scalar("x", 1.0, 0)
    with pytest.raises(ValueError, match="sub-folders 'a' have some"):
        read_images(tmp_path / "runs")
    assert read_images(tmp_path / "runs" / "a") == {}  # a run with no pictures


def _log_run(folder, scale):
    with _writer(folder) as writer:
        for step in range(60):
            writer.add_scalar("loss/train", scale / (step + 1), step)
        writer.add_image("insects", np.zeros((3, 2, 2), dtype=np.float32), 0)


def test_repeated_steps_flags_two_runs_in_one_folder(tmp_path):
    same = tmp_path / "same"
    _log_run(same, 1.0)
    _log_run(same, 2.0)  # the cell run again, logging into the same folder
    assert len(list(same.glob("events.out.tfevents.*"))) == 2
    assert repeated_steps(same) == {"insects": [0], "loss/train": list(range(60))}
    # what the reader (and TensorBoard's line) sees: 0..59, then back to 0
    steps, values = read_scalars(same)["loss/train"]
    assert steps == list(range(60)) * 2
    assert sorted({values[0], values[60]}) == [1.0, 2.0]


def test_repeated_steps_is_empty_for_one_run_per_folder(tmp_path):
    _log_run(tmp_path / "runs" / "first", 1.0)
    _log_run(tmp_path / "runs" / "second", 2.0)
    assert repeated_steps(tmp_path / "runs" / "first") == {}
    assert repeated_steps(tmp_path / "runs" / "second") == {}
    with pytest.raises(ValueError, match="read one of those"):
        repeated_steps(tmp_path / "runs")  # the parent of the runs is not a run


def test_repeated_steps_sees_a_step_logged_twice_by_one_writer(tmp_path):
    with _writer(tmp_path) as writer:
        writer.add_scalar("loss", 1.0, 0)
        writer.add_scalar("loss", 0.5, 1)
        writer.add_scalar("loss", 0.4, 1)  # a loop that forgot to advance its step
    assert repeated_steps(tmp_path) == {"loss": [1]}


def test_free_port_is_free():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))  # would raise if something listened there
        server.listen()
        assert free_port() != port  # a port in use is never handed out


def test_find_tensorboard_points_the_magic_at_this_environment(monkeypatch):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    monkeypatch.delenv("TENSORBOARD_BINARY", raising=False)
    monkeypatch.setenv("PATH", "")  # as when JupyterLab started without activating the environment
    beside = logs._script_beside_python()
    if beside is None:
        pytest.skip("no tensorboard command installed beside this Python")
    assert logs.find_tensorboard() == str(beside)
    assert os.environ["TENSORBOARD_BINARY"] == str(beside)  # what %tensorboard will run
    monkeypatch.setenv("TENSORBOARD_BINARY", "/somewhere/tensorboard")
    assert logs.find_tensorboard() == "/somewhere/tensorboard"  # a choice already made is kept


def test_stop_tensorboard_checks_its_arguments():
    with pytest.raises(TypeError, match="logdir must be a str or a pathlib.Path"):
        stop_tensorboard(None)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        stop_tensorboard("runs", timeout=0)


def _get(url, timeout=2.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as reply:
        return json.load(reply)


def test_stop_tensorboard_stops_a_real_board(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed: no board to start")
    from tensorboard import manager

    runs = tmp_path / "runs"
    _log_run(runs / "a", 1.0)
    port = free_port()
    # started as a learner does in a terminal (tensorboard --logdir runs --port P), with a
    # relative --logdir: stop_tensorboard must still find it by the absolute folder
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", "runs", "--port", str(port),
                              "--host", "127.0.0.1"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # generous: two busy cores
        while True:
            assert board.poll() is None, f"tensorboard exited with {board.returncode}"
            try:
                assert _get(f"http://127.0.0.1:{port}/data/runs") == ["a"]
                break
            except OSError:
                assert time.monotonic() < deadline, "tensorboard did not answer within 60 s"
                time.sleep(0.2)
        assert stop_tensorboard(tmp_path / "elsewhere") == []  # another folder's board: left alone
        assert board.poll() is None

        stopped = stop_tensorboard(runs)
        assert [(info.pid, info.port) for info in stopped] == [(board.pid, port)]
        assert board.wait(timeout=10) is not None  # the process is gone ...
        with pytest.raises(OSError):
            _get(f"http://127.0.0.1:{port}/data/runs", timeout=1.0)  # ... and so is the server
        assert board.pid not in [info.pid for info in manager.get_all()]  # and its record
        assert stop_tensorboard(runs) == []  # nothing left to stop
    finally:
        if board.poll() is None:
            board.kill()
            board.wait()


def test_stop_tensorboard_deletes_the_record_of_a_dead_board(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from tensorboard import manager

    # a record left by a board killed without warning (SIGKILL, Windows, a crash): %tensorboard
    # would "reuse" it and show an empty frame
    port = free_port()  # nothing listens there
    dead = manager.TensorBoardInfo(version=manager.version.VERSION, start_time=int(time.time()),
                                   pid=2**22 + 12345, port=port, path_prefix="", logdir=str(tmp_path),
                                   db="", cache_key=manager.cache_key(str(tmp_path), [], {}))
    record = logs._info_file(dead.pid)
    with open(record, "w") as file:
        file.write(manager._info_to_string(dead))
    try:
        assert dead in manager.get_all()
        assert stop_tensorboard(tmp_path) == []  # not running: nothing stopped, no process signalled
        assert not os.path.exists(record)
    finally:
        if os.path.exists(record):
            os.remove(record)
