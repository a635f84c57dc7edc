"""Train / validation / test splits of a benchmark family under the ``paper`` or ``kfold`` protocol.

``paper`` trains on the family's training sets (METHOD §4.3) and tests on every item of its benchmarks.
Here only the code family has training labels (§2, §13.2), so ``kfold`` exists for the others: it trains,
validates and tests inside the family's benchmarks, with folds stratified by benchmark so every fold tests
every benchmark. All randomness is seeded from strings, so a split is the same in every process and on
every machine (no dependence on ``PYTHONHASHSEED`` or on global RNG state).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_lookahead.data.benchmarks import (
    FETCH_HINT,
    load_benchmark,
    load_eval_ids,
    load_train_set,
    missing_files,
    split_train_val,
)
from lightning_lookahead.data.config import DataConfig, KFoldConfig
from lightning_lookahead.data.families import FAMILY_BENCHMARKS, FAMILY_TRAIN_SETS
from lightning_lookahead.data.schema import BENCHMARKS, RoutingExample
from lightning_lookahead.errors import LookaheadError, unknown_name

log = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("paper", "kfold")


@dataclass
class RoutingSplits:
    """The prompts that train, validate and test a router.

    ``test`` maps benchmark name to its items, in the family's benchmark order and each benchmark's file
    order, so scores computed from it line up with the benchmark metrics. ``test_capped`` is true when
    ``max_eval_prompts`` cut a test benchmark: such numbers are for smoke runs, not comparable to the paper.
    """

    train: list[RoutingExample]
    val: list[RoutingExample]
    test: dict[str, list[RoutingExample]]
    test_capped: bool = False

    @property
    def test_names(self) -> list[str]:
        """Benchmark names, in the order of :attr:`test`."""
        return list(self.test)

    def summary(self) -> str:
        """One line of sizes for logs."""
        tests = ", ".join(f"{name} {len(items)}" for name, items in self.test.items())
        capped = " (capped: not comparable to the paper)" if self.test_capped else ""
        return f"train {len(self.train)}, val {len(self.val)}, test {tests}{capped}"


def make_splits(cfg: DataConfig, root: Path) -> RoutingSplits:
    """Load the family's data from ``root`` and split it as ``cfg.protocol`` says, then apply the caps.

    Missing files are reported up front, all at once, with what to do instead; nothing is loaded
    before the configuration is known to be valid.
    """
    if cfg.dataset:
        from lightning_lookahead.data.dataset_splits import dataset_splits, load_dataset_file

        _check_caps(cfg)
        train, val, test = dataset_splits(cfg, load_dataset_file(cfg))
        return _apply_caps(RoutingSplits(train=train, val=val, test=test), cfg)
    family = _check_choice("data.family", cfg.family, list(FAMILY_BENCHMARKS))
    protocol = _check_choice("data.protocol", cfg.protocol, list(PROTOCOLS))
    _check_caps(cfg)
    if protocol == "kfold":
        _check_kfold(cfg.kfold)
    root = Path(root)
    if not root.is_dir():
        raise LookaheadError(f"data.data_dir {str(root)!r} is not a directory ({FETCH_HINT})")
    candidates = tuple(cfg.candidates)
    benchmarks = FAMILY_BENCHMARKS[family]

    if protocol == "paper":
        _require_training_files(family, root, candidates)
    _require_benchmark_files(benchmarks, root, candidates)

    if protocol == "paper":
        train, val = _paper_train_val(FAMILY_TRAIN_SETS[family], root, candidates)
        test = {name: load_benchmark(name, root, candidates) for name in benchmarks}
    else:
        pooled = {name: load_benchmark(name, root, candidates) for name in benchmarks}
        train, val, test = _kfold(pooled, cfg.kfold)
    if not train:
        raise LookaheadError(f"family {family!r} with data.protocol={protocol} leaves no training prompts")
    return _apply_caps(RoutingSplits(train=train, val=val, test=test), cfg)


# --------------------------------------------------------------------------- validation


def _check_choice(key: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise unknown_name(key, value, choices)
    return value


def _check_caps(cfg: DataConfig) -> None:
    for key in ("max_train_prompts", "max_eval_prompts"):
        cap = getattr(cfg, key)
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise LookaheadError(f"data.{key} must be a positive integer or null, got {cap!r}")


def _check_kfold(kf: KFoldConfig) -> None:
    if not isinstance(kf.k, int) or kf.k < 2:
        raise LookaheadError(f"data.kfold.k must be an integer >= 2, got {kf.k!r}")
    if not isinstance(kf.fold, int) or not 0 <= kf.fold < kf.k:
        raise LookaheadError(
            f"data.kfold.fold={kf.fold!r} is out of range for data.kfold.k={kf.k} (valid: 0..{kf.k - 1})"
        )
    if not 0.0 <= kf.val_fraction < 1.0:
        raise LookaheadError(f"data.kfold.val_fraction must be in [0, 1), got {kf.val_fraction!r}")


def _require_training_files(family: str, root: Path, candidates: Sequence[str]) -> None:
    """Fail early, naming every absent label file, and point at the protocol that needs none."""
    missing = [f for ds in FAMILY_TRAIN_SETS[family] for f in missing_files(ds, root, candidates)]
    if missing:
        raise LookaheadError(
            f"data.protocol=paper for family {family!r} needs training files that are missing under {root}: "
            f"{', '.join(missing)}. These labels are not in the shipped data (METHOD §2); use data.protocol=kfold "
            f"to train and test inside the family's benchmarks instead."
        )


def _require_benchmark_files(benchmarks: Sequence[str], root: Path, candidates: Sequence[str]) -> None:
    missing = [f for name in benchmarks for f in missing_files(name, root, candidates)]
    if missing:
        raise LookaheadError(f"test benchmark files are missing under {root}: {', '.join(missing)} ({FETCH_HINT})")


# --------------------------------------------------------------------------- protocols


def _paper_train_val(
    train_sets: Sequence[str], root: Path, candidates: Sequence[str]
) -> tuple[list[RoutingExample], list[RoutingExample]]:
    """Concatenate each training set's train and validation parts, in family order.

    Prompts on which all candidates tie are kept: the paper keeps them (they carry no routing signal but
    still train the lookahead objective, and dropping them would change the data the numbers rest on).
    """
    train: list[RoutingExample] = []
    val: list[RoutingExample] = []
    for name in train_sets:
        examples = load_train_set(name, root, candidates)
        eval_ids = load_eval_ids(name, root)
        unknown = set(eval_ids) - {ex.prompt_id for ex in examples}
        if unknown:
            log.warning("%s: %d validation ids are not among its prompts (ignored)", name, len(unknown))
        part_train, part_val = split_train_val(examples, eval_ids)
        train += part_train
        val += part_val
    return train, val


def _fold_of(name: str, n: int, kf: KFoldConfig) -> list[int]:
    """Fold index of each item of one benchmark: a seeded shuffle dealt round-robin over the k folds.

    Dealing per benchmark makes the folds stratified (fold sizes within a benchmark differ by at most one).
    The seed stream is per benchmark and the dealing starts at the benchmark's global position, so a
    benchmark's folds do not depend on which family it is pooled with, while remainders still spread over folds.
    """
    order = list(range(n))
    random.Random(f"kfold:{kf.seed}:{name}").shuffle(order)
    offset = BENCHMARKS.index(name) if name in BENCHMARKS else 0
    folds = [0] * n
    for rank, i in enumerate(order):
        folds[i] = (offset + rank) % kf.k
    return folds


def _val_counts(rest: Mapping[str, int], fraction: float) -> dict[str, int]:
    """Validation items per benchmark: ``fraction`` of the non-test pool, allotted proportionally.

    Largest-remainder rounding keeps the total at ``round(fraction * N)`` (at least one item when
    fraction > 0, and at least one training item left), so tiny pools still get a validation set.
    """
    total = sum(rest.values())
    if fraction <= 0 or total < 2:
        return dict.fromkeys(rest, 0)
    target = min(max(1, round(fraction * total)), total - 1)
    quotas = {name: n * target / total for name, n in rest.items()}
    counts = {name: int(q) for name, q in quotas.items()}
    by_remainder = sorted(rest, key=lambda name: quotas[name] - counts[name], reverse=True)
    for name in by_remainder[: target - sum(counts.values())]:
        counts[name] += 1
    return counts


def _kfold(
    pooled: Mapping[str, list[RoutingExample]], kf: KFoldConfig
) -> tuple[list[RoutingExample], list[RoutingExample], dict[str, list[RoutingExample]]]:
    """Fold ``kf.fold`` is the test set; a stratified, seeded ``val_fraction`` of the rest validates.

    Lists keep file order. Training drops prompts with an empty response, as the paper protocol does;
    validation and test keep every item.
    """
    for name, items in pooled.items():
        if len(items) < kf.k:
            raise LookaheadError(
                f"benchmark {name} has {len(items)} items, fewer than data.kfold.k={kf.k} folds; lower data.kfold.k"
            )
    test: dict[str, list[RoutingExample]] = {}
    rest: dict[str, list[RoutingExample]] = {}
    for name, items in pooled.items():
        folds = _fold_of(name, len(items), kf)
        test[name] = [ex for ex, f in zip(items, folds, strict=True) if f == kf.fold]
        rest[name] = [ex for ex, f in zip(items, folds, strict=True) if f != kf.fold]

    counts = _val_counts({name: len(items) for name, items in rest.items()}, kf.val_fraction)
    train: list[RoutingExample] = []
    val: list[RoutingExample] = []
    for name, items in rest.items():
        order = list(range(len(items)))
        random.Random(f"kfold-val:{kf.seed}:{kf.fold}:{name}").shuffle(order)
        held_out = set(order[: counts[name]])
        val += [ex for i, ex in enumerate(items) if i in held_out]
        train += [ex for i, ex in enumerate(items) if i not in held_out and all(r != "" for r in ex.responses)]
    return train, val, test


# --------------------------------------------------------------------------- caps


def _subset(items: list[RoutingExample], cap: int | None, seed: int, split: str) -> list[RoutingExample]:
    """A seeded subset of at most ``cap`` items, in the original order."""
    if cap is None or len(items) <= cap:
        return items
    keep = set(random.Random(f"cap:{seed}:{split}").sample(range(len(items)), cap))
    return [ex for i, ex in enumerate(items) if i in keep]


def _apply_caps(splits: RoutingSplits, cfg: DataConfig) -> RoutingSplits:
    """Cut splits for quick runs; the eval cap applies to validation and to each test benchmark separately."""
    eval_cap = cfg.max_eval_prompts
    capped = eval_cap is not None and any(len(items) > eval_cap for items in splits.test.values())
    out = RoutingSplits(
        train=_subset(splits.train, cfg.max_train_prompts, cfg.subset_seed, "train"),
        val=_subset(splits.val, eval_cap, cfg.subset_seed, "val"),
        test={name: _subset(items, eval_cap, cfg.subset_seed, f"test:{name}") for name, items in splits.test.items()},
        test_capped=splits.test_capped or capped,
    )
    if capped:
        log.warning("test benchmarks capped at data.max_eval_prompts=%d: not comparable to the paper", eval_cap)
    return out
