"""One process per device under ``torchrun``; a plain single process otherwise.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we use NCCL on GPUs and gloo on CPUs, which also
covers SLURM or Kubernetes launches of torchrun unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no GPU is visible (set train.device: auto or cpu)")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(array: np.ndarray, info: DistInfo) -> np.ndarray:
    """Sum a numpy array (e.g. a confusion matrix) over all processes."""
    if not info.distributed:
        return array
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).to(info.device)
    dist.all_reduce(t)
    return t.cpu().numpy().round().astype(array.dtype)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
