"""Training batch orders: length grouping, the plain shuffle's exact order, and a resume that skips what was trained."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_lookahead.data.sampling import ResumableBatchSampler, length_grouped_batches, shuffled_batches
from lightning_lookahead.errors import LookaheadError


def test_every_index_once_and_batches_are_length_homogeneous():
    lengths = [int(x) for x in torch.randint(1, 1000, (1000,), generator=torch.Generator().manual_seed(1))]
    batches = length_grouped_batches(lengths, 16, pool_batches=10)(torch.Generator().manual_seed(0))
    assert len(batches) == 63
    assert sorted(i for b in batches for i in b) == list(range(1000))
    grouped_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    random_batches = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).split(16)
    random_spread = sum(
        max(lengths[i] for i in b.tolist()) - min(lengths[i] for i in b.tolist()) for b in random_batches
    )
    assert grouped_spread < random_spread / 5


def test_order_repeats_for_a_seed_and_changes_with_the_seed_and_the_epoch():
    def epochs(seed: int) -> list[list[list[int]]]:
        sampler = ResumableBatchSampler(length_grouped_batches(list(range(100)), 8), 13, seed)
        return [list(sampler), list(sampler)]

    assert epochs(0) == epochs(0) and epochs(0) != epochs(1)
    assert epochs(0)[0] != epochs(0)[1]


def test_shuffled_batches_are_the_plain_shuffled_dataloaders_epoch_by_epoch():
    plain = DataLoader(range(23), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(7))
    sampler = ResumableBatchSampler(shuffled_batches(23, 4), 6, 7)
    for _ in range(3):
        assert list(sampler) == [batch.tolist() for batch in plain]


def test_a_resume_replays_the_epoch_and_skips_the_trained_batches():
    whole = ResumableBatchSampler(shuffled_batches(23, 4), 6, 7)
    epochs = [list(whole) for _ in range(3)]
    resumed = ResumableBatchSampler(shuffled_batches(23, 4), 6, 7)
    resumed.resume_at(1, 4)
    assert len(resumed) == 6  # Lightning counts the skipped batches as trained
    assert list(resumed) == epochs[1][4:] and list(resumed) == epochs[2]
    resumed.resume_at(1, 6)  # a checkpoint written at the end of epoch 1
    assert list(resumed) == epochs[2]


def test_a_checkpoint_from_other_data_is_refused(tmp_path):
    from lightning_lookahead.data.sampling import ResumableLoader

    loader = ResumableLoader(range(23), ResumableBatchSampler(shuffled_batches(23, 4), 6, 7), lambda: (0, 2))
    state = loader.state_dict()
    assert state == {"seed": 7, "epoch": 0, "batches": 2, "batches_per_epoch": 6}
    other = ResumableLoader(range(30), ResumableBatchSampler(shuffled_batches(30, 4), 8, 7), lambda: (0, 0))
    with pytest.raises(LookaheadError, match="had 6 training batches, this run has 8"):
        other.load_state_dict(state)
