"""course_lib: the helper library of the course "From attention to BERT, in PyTorch, in JupyterLab".

Every notebook starts with ``import course_lib`` (or ``from course_lib import ...``);
each module has one job:

- ``attention``: score functions, soft / key-value attention, scaled dot-product, multi-head, masks
- ``seq2seq``: the GRU encoder-decoder with attention of notebook 01
- ``data``: corpora the course generates itself (no downloads)
- ``tokenizers``: word vocabularies for the generated corpora
- ``training``: one training loop for every notebook, checkpoints
- ``viz``: heatmaps and the widgets built on them
- ``exercises``: auto-checked exercises
- ``toys``: tiny tasks that make one mechanism visible in seconds
- ``figures``: ``python -m course_lib.figures`` regenerates ``figures/``
"""

__version__ = "0.1.0"
