"""The tiny learnable problem the training and checkpoint tests share.

y = x @ W_true.T + b_true + a little noise, learnt by an ``nn.Linear(IN, OUT)``: small enough that
every test using it runs in milliseconds, real enough that training visibly lowers the loss.
"""

import torch
from torch import nn

IN, OUT = 4, 2


def make_data(n=256, seed=123):
    """x (n, IN) and y = x @ W.T + b + noise (n, OUT): a learnable regression."""
    g = torch.Generator().manual_seed(seed)
    w_true = torch.randn(OUT, IN, generator=g)
    b_true = torch.randn(OUT, generator=g)
    x = torch.randn(n, IN, generator=g)
    y = x @ w_true.T + b_true + 0.01 * torch.randn(n, OUT, generator=g)
    return x, y


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(IN, OUT)


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def as_batches(x, y, size=32):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]
