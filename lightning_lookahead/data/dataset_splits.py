"""Train / validation / test splits of a user's dataset file (``data.dataset``).

Rows that name their ``split`` keep it; the others are split at random with a seed taken from a string, so the
split is the same in every process. Test items are grouped by domain, one test "benchmark" per domain, scored by the
mean raw score of the chosen candidate.
"""

from __future__ import annotations

import random
from pathlib import Path

from lightning_lookahead.config.schema import DataConfig
from lightning_lookahead.data.dataset_file import DatasetFile, read_dataset
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample
from lightning_lookahead.errors import LookaheadError


def dataset_candidates(cfg: DataConfig) -> list[str] | None:
    """The pool ``cfg.candidates`` asks of the dataset: None (every candidate in the file) unless set explicitly."""
    chosen = list(cfg.candidates)
    return None if chosen == list(PAPER_CANDIDATES) else chosen


def load_dataset_file(cfg: DataConfig) -> DatasetFile:
    if not cfg.dataset:
        raise LookaheadError("data.dataset is not set")
    return read_dataset(Path(cfg.dataset), dataset_candidates(cfg))


def dataset_splits(cfg: DataConfig, data: DatasetFile) -> tuple[list, list, dict[str, list[RoutingExample]]]:
    """(train, val, test by domain) of the dataset's usable rows."""
    train, val, test = [], [], []
    rng = random.Random(f"dataset:{cfg.dataset_split_seed}")
    for example, split in zip(data.examples, data.splits, strict=True):
        if split is None:
            draw = rng.random()
            split = "test" if draw < cfg.dataset_test_fraction else "val" if draw < (
                cfg.dataset_test_fraction + cfg.dataset_val_fraction
            ) else "train"  # fmt: skip
        {"train": train, "val": val, "test": test}[split].append(example)
    where = f"data.dataset {cfg.dataset}"
    for name, items in (("train", train), ("val", val), ("test", test)):
        if not items:
            raise LookaheadError(
                f"{where}: no usable {name} rows (set 'split' in the file, or data.dataset_val_fraction / "
                "data.dataset_test_fraction for the rows without one)"
            )
    by_domain: dict[str, list[RoutingExample]] = {}
    for example in test:
        by_domain.setdefault(example.benchmark, []).append(example)
    return train, val, by_domain
