"""The ``data:`` section of an experiment: which prompts train, validate and test a router, and how they are batched.

It lives with the package that reads it (as each predictor's ``model:`` config lives with its network);
:mod:`lightning_lookahead.config.schema` re-exports it as part of the whole experiment. Ranges are field metadata,
checked by :func:`lightning_lookahead.typed.parse_dataclass`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.typed import at_least, between

#: Benchmark families (``lightning_lookahead.data.families``).
Family = Literal["chat", "math", "code", "all"]
Protocol = Literal["paper", "kfold"]

FAMILIES: tuple[str, ...] = get_args(Family)


@dataclass
class KFoldConfig:
    """Cross-validation inside a family's benchmarks (for families whose training labels are absent)."""

    k: int = field(default=5, metadata=at_least(2))
    fold: int = field(default=0, metadata=at_least(0))  # < k: checked in cross_field
    seed: int = 42
    #: Share of the non-test folds that validates; 0 leaves validation empty (data/splits.py allows it).
    val_fraction: float = field(default=0.1, metadata=between(0, 1, high_open=True))


@dataclass
class DataConfig:
    """Which prompts train, validate and test a router, and how they are batched."""

    family: Family = "code"
    protocol: Protocol = "paper"
    candidates: list[str] = field(default_factory=lambda: list(PAPER_CANDIDATES))
    data_dir: str = "${oc.env:LOOKAHEAD_DATA_DIR,data}"
    cache_dir: str = "${oc.env:LOOKAHEAD_CACHE_DIR,.cache/lookahead}"
    kfold: KFoldConfig = field(default_factory=KFoldConfig)
    #: Prompts per device per micro-batch.
    batch_size: int = field(default=16, metadata=at_least(1))
    #: Prompts per optimiser step over all devices; sets gradient accumulation (a multiple of batch_size).
    global_batch_size: int = field(default=64, metadata=at_least(1))
    eval_batch_size: int = field(default=32, metadata=at_least(1))
    num_workers: int = field(default=0, metadata=at_least(0))
    length_grouped: bool = False  # batch similar-length prompts together (training only; one device)
    #: A cap for quick runs (seeded subset).
    max_train_prompts: int | None = field(default=None, metadata=at_least(1))
    #: Caps validation and each test benchmark; not comparable to the paper.
    max_eval_prompts: int | None = field(default=None, metadata=at_least(1))
    subset_seed: int = 42  # seed of the max_*_prompts subsets
    #: Your own dataset file (JSON lines, Parquet or a datasets folder; docs/data.md) instead of the paper's data:
    #: family, protocol and data_dir are then unused, and the candidates are the file's unless set.
    dataset: str | None = None
    #: Shares of the rows without a 'split' field that go to validation and to test (seeded by dataset_split_seed).
    dataset_val_fraction: float = field(default=0.1, metadata=between(0, 1, high_open=True))
    dataset_test_fraction: float = field(default=0.2, metadata=between(0, 1, high_open=True))
    dataset_split_seed: int = 42
