"""Recipes built on the models, not models: the data, losses, training runs and measurements of each notebook.

- ``translation``: the translation task of notebooks 01-02 (the GRU translator with attention,
  the Transformer recipe, attention traces and alignment scores).
- ``gpt``: GPT language-model pretraining on the story world and classifier fine-tuning (03).
- ``bert``: BERT MLM + NSP pretraining on pairs of story sentences (04).
- ``toys``: tiny tasks that make one attention mechanism visible in seconds (01).
- ``transfer``: the few-label transfer experiment of 03 and 04 (splits, arms, results).
- ``images``: the ant-or-bee picture task of notebook 05 (InsectCNN, load_split).
"""
