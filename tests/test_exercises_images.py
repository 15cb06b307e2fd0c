"""Tests for the exercise hwc_to_chw of notebook 05: each classic mistake is named by the checker."""

import numpy as np
import pytest
import torch

from course_lib.exercises import check, get_exercise

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(fn, capsys):
    """check("hwc_to_chw", fn) and the verdict's first printed line."""
    capsys.readouterr()
    verdict = check("hwc_to_chw", fn)
    return bool(verdict), capsys.readouterr().out.splitlines()[0]


def test_solution_passes(capsys):
    ok, line = run(get_exercise("hwc_to_chw").load_solution(), capsys)
    assert ok, line


@pytest.mark.parametrize("fn, words", [
    (lambda image: torch.from_numpy(image).reshape(3, image.shape[0], image.shape[1]).float() / 255,
     "pixels are scrambled"),
    (lambda image: torch.from_numpy(image).view(3, *image.shape[:2]).float().div(255), "pixels are scrambled"),
    (lambda image: torch.from_numpy(image).permute(2, 0, 1).float(), "divide by 255"),
    (lambda image: torch.from_numpy(image).permute(2, 0, 1), "still integers"),
    (lambda image: torch.from_numpy(image).permute(2, 0, 1).long(), "still integers"),
    (lambda image: torch.from_numpy(image).permute(2, 1, 0).float() / 255, "(3, W, H)"),
    (lambda image: torch.from_numpy(image.T.copy()).float() / 255, "(3, W, H)"),
    (lambda image: torch.from_numpy(image).float() / 255, "still (H, W, 3)"),
    (lambda image: torch.from_numpy(image).double() / 255, "still (H, W, 3)"),
])
def test_mistakes_are_named(fn, words, capsys):
    ok, line = run(fn, capsys)
    assert ok is False and words in line, line


def test_float64_and_numpy_results(capsys):
    # the right values in float64: refused on dtype, not on values
    ok, line = run(lambda image: torch.from_numpy(image).permute(2, 0, 1).double() / 255, capsys)
    assert ok is False and "dtype" in line, line
    # a numpy array is not a tensor
    ok, line = run(lambda image: np.transpose(image, (2, 0, 1)).astype(np.float32) / 255, capsys)
    assert ok is False and "wrong type" in line, line


def test_starter_is_not_attempted(capsys):
    def starter(image):
        raise NotImplementedError

    ok, _ = run(starter, capsys)
    assert ok is False
