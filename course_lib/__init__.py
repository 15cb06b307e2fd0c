"""course_lib: the helper library of the course "From attention to BERT, in PyTorch, in JupyterLab".

Every notebook imports what it needs from here; each module has one job:

Models (imports flow one way: attention <- transformer <- encoder_decoder, gpt, bert; attention <- gru_translator)
- ``attention``: score functions, soft / key-value attention, scaled dot-product, multi-head, masks
- ``transformer``: positional encoding, feed-forward, encoder / decoder layers (Add & Norm), ``to_torch``
- ``encoder_decoder``: the encoder-decoder Transformer of notebook 02: embeddings, stacks, greedy decoding
- ``gru_translator``: the GRU encoder-decoder with attention of notebook 01
- ``gpt``: GPT, generation, the GPT-2 loader, the classification head with L3 = L2 + λ L1 (notebook 03)
- ``bert``: BERT, its MLM + NSP heads, MLM masking, NSP pairs, the Hugging Face loader (notebook 04)
- ``pretrained``: the bundled all-MiniLM-L6-v2 weights

Data and recipes
- ``tokenizers``: word vocabularies for the generated corpora, WordPiece for real BERT vocabularies
- ``data``: corpora the course generates itself (no downloads): translation pairs, the story world,
  the story folder of notebook 05 (``data.folders``)
- ``tasks``: recipes built on the models: translation (01-02), GPT (03) and BERT (04) pretraining and
  fine-tuning, toy tasks that make one mechanism visible in seconds
- ``diagnostics``: the measurements behind notebook 02 (softmax saturation, Add & Norm, layer gradients)

Training
- ``training``: the one training loop, seeds, devices, ``evaluating(model)``
- ``batching``: ``IGNORE_INDEX``, padding, shuffled epochs, moving batches to a device
- ``checkpoints``: safe saving and resuming; ``logs``: TensorBoard logs read back offline; the real board started and stopped

Looking and practising
- ``viz``: pure plotting functions and the live loss plot
- ``widgets``: the interactive explorers, one module per notebook on one base (``widgets.base``)
- ``exercises``: auto-checked exercises (``check``, ``hint``, ``solution``), one module per notebook
- ``figures``: ``python -m course_lib.figures`` regenerates ``figures/``

``_checks`` holds the input validation every public function shares (run once, at the public boundary).
"""

__version__ = "0.1.0"
