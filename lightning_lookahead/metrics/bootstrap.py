"""Paired bootstrap intervals for the difference between two routers on the same benchmark items.

Every benchmark metric here is a ratio of per-item sums, ``scale · Σ num_i / Σ den_i`` (accuracy, win rate and
MT-Bench have ``den_i = 1``; Arena-Hard's Bradley–Terry closed form counts battles), so resampling items and
recomputing the ratio for both routers on the same resample gives a paired interval cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lightning_lookahead.data.schema import BENCHMARKS, RoutingExample


def item_terms(
    benchmark: str, examples: Sequence[RoutingExample], choices: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-item numerators and denominators and the scale such that metric = scale · Σnum / Σden."""
    # Here, not at the top: the benchmark metrics import torch, the intervals below need only numpy (calibrate).
    from lightning_lookahead.metrics.benchmarks import arena_hard_metrics, mt_bench_metrics

    n = len(examples)
    if benchmark == "ArenaHard":
        num, den = np.zeros(n), np.zeros(n)
        for i, (ex, c) in enumerate(zip(examples, choices, strict=True)):
            m = arena_hard_metrics([ex], [int(c)])
            num[i], den[i] = m["wins"] + m["ties"] / 2, m["n_battles"]
        return num, den, 100.0
    if benchmark == "MT-Bench":
        num = np.array([mt_bench_metrics([ex], [int(c)])["score"] for ex, c in zip(examples, choices, strict=True)])
        return num, np.ones(n), 10.0
    chosen = np.array([ex.scores[int(c)] for ex, c in zip(examples, choices, strict=True)], dtype=np.float64)
    if benchmark == "AlpacaEval":
        return chosen - 1.0, np.ones(n), 100.0
    if benchmark not in BENCHMARKS:  # a domain of a user's dataset: the mean raw score, on the file's scale
        return chosen, np.ones(n), 1.0
    return chosen, np.ones(n), 100.0


def validation_terms(
    examples: Sequence[RoutingExample], choices: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-prompt min-max normalised score of the chosen candidate (the validation reward's terms)."""
    raw = np.asarray([ex.scores for ex in examples], dtype=np.float64)
    span = raw.max(axis=1) - raw.min(axis=1)
    norm = (raw - raw.min(axis=1, keepdims=True)) / np.where(span > 0, span, 1.0)[:, None]
    return norm[np.arange(len(examples)), np.asarray(choices)], np.ones(len(examples)), 1.0


def bootstrap_differences(
    a: tuple[np.ndarray, np.ndarray, float],
    b: tuple[np.ndarray, np.ndarray, float],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """The metric difference a − b and its values over ``resamples`` paired item resamples."""
    (na, da, scale), (nb, db, _) = a, b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(na), size=(resamples, len(na)))
    ratio_a = na[idx].sum(1) / np.maximum(da[idx].sum(1), 1e-12)
    ratio_b = nb[idx].sum(1) / np.maximum(db[idx].sum(1), 1e-12)
    point = scale * (na.sum() / max(da.sum(), 1e-12) - nb.sum() / max(db.sum(), 1e-12))
    return float(point), scale * (ratio_a - ratio_b)


def paired_bootstrap(
    a: tuple[np.ndarray, np.ndarray, float],
    b: tuple[np.ndarray, np.ndarray, float],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(difference a − b, 2.5th, 97.5th percentile) of the metric difference over item resamples."""
    point, diffs = bootstrap_differences(a, b, resamples=resamples, seed=seed)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return point, float(low), float(high)
