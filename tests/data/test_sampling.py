"""Length-grouped batches: every index once per epoch, little padding, seeded order."""

from __future__ import annotations

import torch

from lightning_lookahead.data.sampling import LengthGroupedBatchSampler


def test_every_index_once_and_batches_are_length_homogeneous():
    lengths = [int(x) for x in torch.randint(1, 1000, (1000,), generator=torch.Generator().manual_seed(1))]
    sampler = LengthGroupedBatchSampler(lengths, 16, pool_batches=10, generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for b in batches for i in b) == list(range(1000))
    grouped_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    random_batches = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).split(16)
    random_spread = sum(
        max(lengths[i] for i in b.tolist()) - min(lengths[i] for i in b.tolist()) for b in random_batches
    )
    assert grouped_spread < random_spread / 5


def test_order_repeats_for_a_seed_and_changes_with_another():
    lengths = list(range(100))

    def epoch(seed: int) -> list[list[int]]:
        return list(LengthGroupedBatchSampler(lengths, 8, generator=torch.Generator().manual_seed(seed)))

    assert epoch(0) == epoch(0) and epoch(0) != epoch(1)
