"""Pretrain the course's GPT or BERT on your own text, from the command line.

    python -m course_lib.pretrain gpt --text input.txt --out runs/gpt --steps 2000
    torchrun --standalone --nproc_per_node=2 -m course_lib.pretrain gpt --text input.txt --out runs/gpt

Modules, one job each: ``cli`` (arguments and one-line errors), ``data`` (text -> tokens ->
global batches, tokenizers), ``distributed`` (process group, rank, device), ``loop`` (the
training loop, logs and checkpoints). Run alone it trains in one process on
:func:`course_lib.training.get_device`; under ``torchrun`` each process trains on its shard of every
global batch and ``DistributedDataParallel`` averages the gradients (gloo on CPUs, NCCL on GPUs).
"""

from .cli import main

__all__ = ["main"]
