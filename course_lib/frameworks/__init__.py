"""Notebook 06: the course's pieces held against Hugging Face's (transformers, tokenizers, Trainer).

- :mod:`~course_lib.frameworks.models`: the story BERT in both codes, weights copied both ways.
- :mod:`~course_lib.frameworks.tokenizers`: a WordPiece tokenizer trained with ``tokenizers``,
  as a ``BertTokenizerFast`` and as the course's ``WordPieceTokenizer``.
- :mod:`~course_lib.frameworks.collators`: counting what a masking rule did.
- :mod:`~course_lib.frameworks.data`: the MLM + NSP pairs as a plain ``Dataset`` for ``Trainer``.
- :mod:`~course_lib.frameworks.finetune`, :mod:`~course_lib.frameworks.trainer_run`: sections 6 and 7.

Submodules are imported on use (``from course_lib.frameworks import models``): importing
``transformers`` takes a few seconds, which the rest of the course does not pay.
"""
