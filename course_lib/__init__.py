"""course_lib: the helper library of the course "From attention to BERT, in PyTorch, in JupyterLab".

Every notebook starts with ``import course_lib`` (or ``from course_lib import ...``);
each module has one job:

- ``attention``: score functions, soft / key-value attention, scaled dot-product, multi-head, masks
- ``seq2seq``: translation: the GRU encoder-decoder of notebook 01, the Transformer recipe of notebook 02
- ``transformer``: positional encoding, encoder / decoder layers, the encoder-decoder model
- ``diagnostics``: the measurements behind notebook 02 (softmax saturation, Add & Norm, layer gradients)
- ``gpt``: GPT, generation, the GPT-2 loader, fine-tuning with L3 = L2 + λ L1 (notebook 03)
- ``bert``: BERT, its MLM + NSP heads, MLM masking, NSP pairs, Hugging Face loader (notebook 04)
- ``pretraining``: pretraining and fine-tuning recipes of notebooks 03 and 04
- ``pretrained``: the bundled all-MiniLM-L6-v2 weights
- ``data_loading``: Dataset / DataLoader helpers and TensorBoard read-back (notebook 05)
- ``data``: corpora the course generates itself (no downloads): translation pairs, the story world
- ``tokenizers``: word vocabularies for the generated corpora, WordPiece for real BERT vocabularies
- ``training``: one training loop for every notebook, checkpoints
- ``viz``: heatmaps and the widgets built on them; ``transformer_widgets``, ``gpt_widgets``,
  ``bert_widgets``: the widgets of notebooks 02, 03 and 04
- ``exercises``: auto-checked exercises
- ``toys``: tiny tasks that make one mechanism visible in seconds
- ``figures``: ``python -m course_lib.figures`` regenerates ``figures/``
"""

__version__ = "0.1.0"
