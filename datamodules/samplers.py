"""A shuffling sampler whose order is a pure function of (seed, epoch).

Lightning calls `set_epoch` on samplers every epoch (and DistributedSamplerWrapper forwards it),
so a run resumed from an end-of-epoch checkpoint sees exactly the batches an uninterrupted run
would have seen. A plain `shuffle=True` draws from the global RNG and does not resume exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    def __init__(self, length: int, seed: int = 0) -> None:
        self.length = length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self) -> int:
        return self.length
