"""Train / validation / test splits of a user's dataset file (``data.dataset``).

Rows that name their ``split`` keep it. The others are split with a seed taken from a string, so the split is the
same in every process, and in the documented shares: of the n rows without a split, ``round(test_fraction · n)``
go to test and ``round(val_fraction · n)`` to validation, exactly. The split is stratified by domain: each domain
gives its own share (``fraction · n_domain``, rounded by largest remainder so that the totals above still hold), so
a small domain is not left out of the test set by chance. Which rows of a domain go where is a seeded shuffle.

Test items are grouped by domain, one test "benchmark" per domain, scored by the mean raw score of the chosen
candidate.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning_lookahead.data.config import DataConfig
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


def seeded_split(domains: Sequence[str], val_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """``train`` / ``val`` / ``test`` for rows of the given domains: exact totals, stratified, seeded.

    The totals are ``round(test_fraction · n)`` and ``round(val_fraction · n)`` (halves round up); each domain's
    count is its quota ``fraction · n_domain`` rounded down, and the rows still owed go one each to the domains
    with the largest remainders (ties in a seeded order). Validation is allocated after test, from what each
    domain has left.
    """
    n = len(domains)
    rng = random.Random(f"dataset:{seed}")
    groups: dict[str, list[int]] = {}
    for i, domain in enumerate(domains):
        groups.setdefault(domain, []).append(i)
    order = list(groups)
    rng.shuffle(order)  # the seeded tie-break between equal remainders
    sizes = {d: len(groups[d]) for d in order}
    n_test = min(_round_half_up(test_fraction * n), n)
    n_val = min(_round_half_up(val_fraction * n), n - n_test)
    test = _allocate(sizes, test_fraction, n_test, sizes)
    left = {d: sizes[d] - test[d] for d in order}
    val = _allocate(sizes, val_fraction, n_val, left)
    out = ["train"] * n
    for domain in order:
        rows = groups[domain][:]
        rng.shuffle(rows)
        for i in rows[: test[domain]]:
            out[i] = "test"
        for i in rows[test[domain] : test[domain] + val[domain]]:
            out[i] = "val"
    return out


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5 + 1e-9)  # 1e-9: 0.2 · 45 is 9.000000000000002, 0.1 · 25 is 2.5 exactly


def _allocate(sizes: dict[str, int], fraction: float, total: int, room: dict[str, int]) -> dict[str, int]:
    """Largest-remainder rounding of ``fraction · size`` per domain to sum to ``total``, at most ``room`` each."""
    quota = {d: fraction * n for d, n in sizes.items()}
    counts = {d: min(math.floor(q + 1e-9), room[d]) for d, q in quota.items()}
    by_remainder = sorted(sizes, key=lambda d: quota[d] - counts[d], reverse=True)  # stable: seeded order on ties
    owed = total - sum(counts.values())
    while owed > 0:
        progressed = False
        for d in by_remainder:
            if owed and counts[d] < room[d]:
                counts[d] += 1
                owed -= 1
                progressed = True
        if not progressed:  # pragma: no cover - the callers keep total within the room
            break
    return counts


def dataset_splits(cfg: DataConfig, data: DatasetFile) -> tuple[list, list, dict[str, list[RoutingExample]]]:
    """(train, val, test by domain) of the dataset's usable rows."""
    where = f"data.dataset {cfg.dataset}"
    if data.incomplete_rows:
        warnings.warn(
            f"{where}: dropped {data.drop_text()} (a failed collection or scoring; rerun `lookahead data collect` "
            "or `lookahead data score` to fill them in)",
            stacklevel=2,
        )
    unassigned = [i for i, split in enumerate(data.splits) if split is None]
    drawn = seeded_split(
        [data.examples[i].benchmark for i in unassigned],
        cfg.dataset_val_fraction,
        cfg.dataset_test_fraction,
        cfg.dataset_split_seed,
    )
    splits = list(data.splits)
    for i, split in zip(unassigned, drawn, strict=True):
        splits[i] = split
    train, val, test = [], [], []
    for example, split in zip(data.examples, splits, strict=True):
        {"train": train, "val": val, "test": test}[split].append(example)
    for name, items in (("train", train), ("val", val), ("test", test)):
        if not items:
            dropped = f"; dropped {data.drop_text()}" if data.dropped_rows else ""
            raise LookaheadError(
                f"{where}: no usable {name} rows ({len(data.examples)} usable of {data.rows}{dropped}; set 'split' "
                "in the file, or data.dataset_val_fraction / data.dataset_test_fraction for the rows without one)"
            )
    by_domain: dict[str, list[RoutingExample]] = {}
    for example in test:
        by_domain.setdefault(example.benchmark, []).append(example)
    return train, val, by_domain
