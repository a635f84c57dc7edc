"""Paired bootstrap: per-item terms reproduce the benchmark metrics; intervals cover the point difference."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.metrics.benchmarks import score_benchmark
from lightning_lookahead.metrics.bootstrap import item_terms, paired_bootstrap, validation_terms

POOL = ("a", "b")


def _items(bench: str, scores, extras=None) -> list[RoutingExample]:
    return [
        RoutingExample(str(i), "q", ("r1", "r2"), s, bench, (extras or [{}] * len(scores))[i])
        for i, s in enumerate(scores)
    ]


def _metric(bench, items, choices, key):
    return score_benchmark(bench, items, np.asarray(choices), POOL, compute_lc=False)[key]


def test_terms_reproduce_each_benchmark_metric():
    acc = _items("MBPP", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
    num, den, scale = item_terms("MBPP", acc, [0, 0, 1])
    assert scale * num.sum() / den.sum() == pytest.approx(_metric("MBPP", acc, [0, 0, 1], "accuracy"))
    games = [
        {"category": "c", "games": (("A>B", "B>A"), ("B>>A", "A>>B"))},
        {"category": "c", "games": ((None, "A=B"), ("A=B", "A=B"))},
    ]
    ah = _items("ArenaHard", [(0.0, 6.0), (-6.0, 0.0)], games)
    num, den, scale = item_terms("ArenaHard", ah, [1, 0])
    assert scale * num.sum() / den.sum() == pytest.approx(_metric("ArenaHard", ah, [1, 0], "score"))
    mt = _items(
        "MT-Bench",
        [(7.0, 8.0), (5.0, 9.0)],
        [{"category": "x", "turn_scores": ((7, 7), (8, 8))}, {"category": "x", "turn_scores": ((4, 6), (9, 9))}],
    )
    num, den, scale = item_terms("MT-Bench", mt, [0, 1])
    assert num.sum() / den.sum() == pytest.approx(_metric("MT-Bench", mt, [0, 1], "score"))


def test_paired_bootstrap_interval_contains_the_point_and_is_zero_for_identical_routers():
    rng = np.random.default_rng(0)
    a = (rng.integers(0, 2, 200).astype(float), np.ones(200), 100.0)
    b = (rng.integers(0, 2, 200).astype(float), np.ones(200), 100.0)
    point, low, high = paired_bootstrap(a, b, resamples=500)
    assert point == pytest.approx(100 * (a[0].mean() - b[0].mean())) and low <= point <= high
    assert paired_bootstrap(a, a, resamples=100) == (0.0, 0.0, 0.0)


def test_validation_terms_are_min_max_normalised_chosen_scores():
    items = _items("SelfOSS", [(0.2, 0.6), (1.0, 1.0), (0.5, 0.0)])
    num, _, _ = validation_terms(items, np.array([1, 0, 1]))
    assert num.tolist() == [1.0, 0.0, 0.0]
