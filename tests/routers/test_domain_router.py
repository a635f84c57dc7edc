"""The ``domain`` reference: each benchmark's prompts go to the candidate best on that domain's training items."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.evaluation import evaluate_router
from lightning_lookahead.routers.domain import DomainRouter
from lightning_lookahead.routers.fitted import fit_and_score
from lightning_lookahead.routers.registry import parse_router

POOL = ("a", "b", "c")


def _items(benchmark: str, scores: list[tuple[float, ...]], start: int = 0) -> list[RoutingExample]:
    return [
        RoutingExample(f"{benchmark}-{start + i}", f"q{i}", ("", "", ""), s, benchmark) for i, s in enumerate(scores)
    ]


def test_each_benchmark_goes_to_its_best_training_candidate():
    # kfold: training items carry their benchmark's name. MATH: c is right most often; GSM8k: a (ties → first).
    train = _items("MATH", [(0, 0, 1), (1, 0, 1), (0, 1, 1)]) + _items("GSM8k", [(1, 1, 0), (1, 0, 0), (0, 0, 0)])
    router = DomainRouter().fit(train)
    assert router.choices(POOL) == {"MATH": "c", "GSM8k": "a"}
    assert router.n_train == 6 and router.fit_seconds is not None
    test = {"MATH": _items("MATH", [(1, 0, 0), (0, 0, 1)], 10), "GSM8k": _items("GSM8k", [(1, 0, 0)], 10)}
    assert router.score_matrix(test["MATH"], POOL).tolist() == [[0, 0, 1], [0, 0, 1]]
    run = evaluate_router(router, test, POOL)
    assert run["results"]["MATH"]["accuracy"] == 50.0 and run["results"]["GSM8k"]["accuracy"] == 100.0


def test_paper_protocol_maps_benchmarks_to_their_training_set():
    train = [RoutingExample("s-0", "q", ("", "", ""), (0.1, 0.9, 0.5), "SelfOSSInstructSC2_filtered2")]
    router = DomainRouter().fit(train)
    items = _items("HumanEval", [(0, 1, 0)]) + _items("MBPP", [(1, 0, 0)])
    assert np.argmax(router.score_matrix(items, POOL), axis=1).tolist() == [1, 1]
    with pytest.raises(LookaheadError, match=r"no training prompts for benchmark 'MATH'.*--fit-family all"):
        router.score_matrix(_items("MATH", [(0, 1, 0)]), POOL)
    lenient = DomainRouter(fallback=True).fit(train)  # a benchmark without training items: the overall best
    assert lenient.score_matrix(_items("MATH", [(0, 1, 0)]), POOL).tolist() == [[0, 1, 0]]


def test_domain_is_a_router_spec_and_scripts_can_fit_it():
    assert isinstance(parse_router("domain", POOL)[0], DomainRouter)
    with pytest.raises(LookaheadError, match="not fitted"):
        DomainRouter().score_matrix(_items("MATH", [(0, 1, 0)]), POOL)

    class Splits:
        train = _items("MATH", [(0, 1, 0), (0, 1, 1)])
        val = _items("MATH", [(1, 1, 0)], 5)
        test = {"MATH": _items("MATH", [(0, 1, 0)], 9)}

    out = fit_and_score("domain", Splits, POOL)
    assert out["val"].tolist() == [[0, 1, 0]] and out["test"]["MATH"].tolist() == [[0, 1, 0]]
