"""Length-grouped batching: similar-length prompts share a batch, so padding (and wasted compute) shrinks.

Indices are shuffled with a seeded generator, cut into pools of ``batch_size × pool_batches``, each pool is
sorted by length and cut into batches, and the batches are shuffled again. Each epoch stays random while the
padding inside a batch mostly disappears.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthGroupedBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        pool_batches: int = 50,
        generator: torch.Generator | None = None,
    ):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.pool = batch_size * pool_batches
        self.generator = generator

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=lambda i: self.lengths[i], reverse=True)
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]
