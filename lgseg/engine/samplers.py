"""Evaluation sharding: each process takes every world_size-th scene, none twice (no padding)."""

from __future__ import annotations

from torch.utils.data import Sampler


class ShardSampler(Sampler[int]):
    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
