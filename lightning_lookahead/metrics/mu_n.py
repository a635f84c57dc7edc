"""The paper's normalised score µn: the share of the random → oracle gap a router closes on a benchmark.

    µn = 100 · (µo − µo_random) / (µo_oracle − µo_random)

with µo the benchmark's headline metric of the routed responses, µo_random the mean of the candidates' single-model
µo on the same items (the uniform expectation, the paper's random row) and µo_oracle the oracle's µo on the same
items. Avg µn is the plain mean over the benchmarks present. Two places where ours cannot equal the paper's numbers
(docs/metrics.md): offline, AlpacaEval's µo is the raw win rate (the paper's is the length-controlled one, used here
whenever it is available), and the MT-Bench oracle computed from the shipped judgments is 9.00 where the paper prints
8.79. Where oracle and random coincide (every candidate scores the same on every item) µn is undefined: ``None``,
and such a benchmark is left out of the average.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.metrics.benchmarks import HEADLINE, decide, score_benchmark

#: Metric keys µn may be computed from, in order of preference (the first one available everywhere is used).
MU_N_KEYS: dict[str, tuple[str, ...]] = {name: (key,) for name, key in HEADLINE.items()} | {
    "AlpacaEval": ("lc_win_rate", "win_rate")
}


def mu_n_keys(benchmark: str) -> tuple[str, ...]:
    """The keys µn may use on ``benchmark``; a domain of a user's dataset uses its ``score``."""
    return MU_N_KEYS.get(benchmark, ("score",))


@dataclass(frozen=True)
class References:
    """µo of random (mean of the single models) and of the oracle on one benchmark's items, per metric key."""

    n: int
    random: Mapping[str, float | None]
    oracle: Mapping[str, float | None]


def _value(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def references(
    benchmark: str, examples: Sequence[RoutingExample], candidates: Sequence[str], **metric_options: Any
) -> References:
    """Score the oracle and every single model on ``examples`` (the items a router is evaluated on)."""
    n = len(examples)
    oracle = score_benchmark(benchmark, examples, decide([e.scores for e in examples]), candidates, **metric_options)
    fixed = [
        score_benchmark(benchmark, examples, np.full(n, j), candidates, **metric_options)
        for j in range(len(candidates))
    ]
    random: dict[str, float | None] = {}
    for key in mu_n_keys(benchmark):
        values = [_value(m, key) for m in fixed]
        random[key] = None if any(v is None for v in values) else float(np.mean(values))  # type: ignore[arg-type]
    return References(n=n, random=random, oracle={key: _value(oracle, key) for key in mu_n_keys(benchmark)})


def normalized_score(value: float, random: float, oracle: float) -> float | None:
    """µn of one µo; None where the oracle does not beat random (nothing to normalise by)."""
    span = oracle - random
    if abs(span) <= 1e-12 * max(1.0, abs(oracle)):
        return None
    return 100.0 * (value - random) / span


def mu_n(benchmark: str, metrics: Mapping[str, Any], refs: References) -> tuple[float | None, str]:
    """(µn, the metric key it was computed from) for one router's metrics on a benchmark."""
    keys = mu_n_keys(benchmark)
    for key in keys:
        value, random, oracle = _value(metrics, key), refs.random.get(key), refs.oracle.get(key)
        if value is not None and random is not None and oracle is not None:
            return normalized_score(value, random, oracle), key
    return None, keys[-1]


def average_mu_n(results: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Mean µn over the benchmarks that have one (None if none has)."""
    values = [r["mu_n"] for r in results.values() if r.get("mu_n") is not None]
    return float(np.mean(values)) if values else None
