"""The closed sets written out in the schema match the code that uses them (validation must not drift from it)."""

from __future__ import annotations

from typing import get_args

from lightning_lookahead.config.schema import FAMILIES, ScoreNorm
from lightning_lookahead.data.families import FAMILY_BENCHMARKS, FAMILY_TRAIN_SETS
from lightning_lookahead.metrics.normalize import NORM_METHODS


def test_families_match_the_data_tables():
    assert set(FAMILIES) == set(FAMILY_BENCHMARKS) == set(FAMILY_TRAIN_SETS)


def test_score_normalisations_match_the_metrics():
    assert get_args(ScoreNorm) == NORM_METHODS


def test_strategies_are_lightnings_and_sharding_strategies_are_torchs():
    from lightning.pytorch.strategies import StrategyRegistry
    from torch.distributed.fsdp import ShardingStrategy as TorchSharding

    from lightning_lookahead.config.schema import ShardingStrategy, Strategy

    assert set(get_args(Strategy)) - {"auto"} <= set(StrategyRegistry.available_strategies())
    assert set(get_args(ShardingStrategy)) <= set(TorchSharding.__members__)
