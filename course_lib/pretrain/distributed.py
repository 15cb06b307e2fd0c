"""Start and stop ``torch.distributed`` for the pretraining command; who am I, how many are we.

Run alone (``python -m course_lib.pretrain ...``) it is one process on :func:`course_lib.training.get_device`
(``COURSE_DEVICE=cpu`` forces the CPU). Started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` for every process it starts), each process joins
one process group: on a machine with CUDA GPUs process ``LOCAL_RANK`` takes ``cuda:LOCAL_RANK`` and
the group talks over NCCL (GPU to GPU); otherwise every process uses the CPU and gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..training import get_device

__all__ = ["Context", "launched_by_torchrun", "env_rank", "env_world_size", "start", "stop", "all_mean"]


@dataclass
class Context:
    """This process's place: ``rank`` in [0, world_size), its device, and whether a group was started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # "gloo" or "nccl" under torchrun, None alone

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, shows the progress bar and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def env_rank() -> int:
    return int(os.environ.get("RANK", 0))


def env_world_size() -> int:
    """The number of processes torchrun started (1 when run alone), read before any group exists."""
    return int(os.environ.get("WORLD_SIZE", 1))


def start() -> Context:
    """Join the process group when started by torchrun; pick this process's device."""
    if not launched_by_torchrun():
        return Context(device=get_device())
    rank, world_size = env_rank(), env_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    forced_cpu = os.environ.get("COURSE_DEVICE", "").strip() == "cpu"
    if torch.cuda.is_available() and not forced_cpu:
        device = torch.device("cuda", local_rank)  # one process per GPU
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Context(rank, world_size, local_rank, device, backend)


def stop(ctx: Context, wait_for_all: bool = True) -> None:
    """Leave the process group (every process, also after an error, so none waits for it).

    After a run that finished, the processes first wait for each other (a barrier): rank 0 is still
    writing files when the others are done, and a process that tears down its gloo connections while
    another one still holds them can be killed by gloo at exit ("terminate called without an active
    exception"). After an error there is no barrier: the others may never arrive.
    """
    if ctx.distributed and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def all_mean(value: torch.Tensor, ctx: Context) -> float:
    """The mean over the processes of a scalar tensor (itself when alone)."""
    value = value.detach().float().reshape(1).clone()
    if ctx.distributed:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= ctx.world_size
    return float(value)
