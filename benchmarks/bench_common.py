"""Shared set-up of the per-step benchmarks: the experiment's predictor and featurised training prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.datamodule import example_dict
from lightning_lookahead.data.splits import RoutingSplits, make_splits
from lightning_lookahead.routers.base import RouterModule
from lightning_lookahead.routers.registry import predictor_from_config


def predictor_and_features(
    experiment: str, overrides: list[str], n_batches: int
) -> tuple[Any, RouterModule, RoutingSplits, list[dict[str, Any]]]:
    """(config, predictor seeded with 0, splits, features of the first ``n_batches`` batches of training prompts)."""
    cfg = compose(experiment, overrides)
    torch.manual_seed(0)
    module = predictor_from_config(cfg)
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    features = [
        module.featurize(example_dict(ex)) | example_dict(ex) for ex in splits.train[: n_batches * cfg.data.batch_size]
    ]
    return cfg, module, splits, features
