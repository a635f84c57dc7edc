"""Shared set-up of the per-step benchmarks: the experiment's training module and featurised training prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.inputs import example_row
from lightning_lookahead.data.splits import RoutingSplits, make_splits
from lightning_lookahead.training.modules.predictor import PredictorModule
from lightning_lookahead.training.modules.registry import build_module


def predictor_and_features(
    experiment: str, overrides: list[str], n_batches: int
) -> tuple[Any, PredictorModule, RoutingSplits, list[dict[str, Any]]]:
    """(config, training module seeded with 0, splits, features of the first ``n_batches`` batches of prompts)."""
    cfg = compose(experiment, overrides)
    torch.manual_seed(0)
    module = build_module(cfg.model, cfg.loss, cfg.optim, list(cfg.data.candidates))
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    rows = [example_row(ex) for ex in splits.train[: n_batches * cfg.data.batch_size]]
    return cfg, module, splits, [module.inputs.featurize(row) | row for row in rows]
