"""Tables and JSON from evaluation results (no data files needed)."""

from __future__ import annotations

import json
import math

import pytest

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.evaluation import evaluate_router, markdown_table, parse_benchmarks, runs_to_json
from lightning_lookahead.routers.base import FixedRouter, OracleRouter, RandomRouter
from lightning_lookahead.routers.registry import parse_router

POOL = ("a", "b", "c")


def _math(scores: list[tuple[float, ...]]) -> list[RoutingExample]:
    return [RoutingExample(f"m-{i}", f"q{i}", ("", "", ""), s, "MATH") for i, s in enumerate(scores)]


def test_routers_produce_score_matrices_and_metrics():
    items = {"MATH": _math([(0, 1, 0), (1, 1, 0), (0, 0, 1), (0, 0, 0)])}
    oracle = evaluate_router(OracleRouter(), items, POOL)["results"]["MATH"]
    assert oracle["accuracy"] == 75.0 and oracle["routing_accuracy"] == 100.0
    assert oracle["picks"] == {"a": 0.5, "b": 0.25, "c": 0.25}  # ties go to the first candidate
    fixed = evaluate_router(FixedRouter("b"), items, POOL)["results"]["MATH"]
    assert fixed["accuracy"] == 50.0 and fixed["picks"]["b"] == 1.0
    first = RandomRouter(seed=3).score_matrix(items["MATH"], POOL)
    assert first.shape == (4, 3) and (first == RandomRouter(seed=3).score_matrix(items["MATH"], POOL)).all()


def test_table_without_all_benchmarks_has_no_average():
    run = evaluate_router(OracleRouter(), {"MATH": _math([(0, 1, 0)])}, POOL)
    table = markdown_table([run])
    assert table.splitlines()[0] == "| Router | MATH | Avg µn |"  # no µo average without all 7 benchmarks
    assert "| oracle | 100.00 / 100.0 | 100.0 |" in table


def test_json_replaces_non_finite_values_by_null():
    payload = json.loads(runs_to_json([{"router": "x", "results": {"AlpacaEval": {"standard_error": math.nan}}}]))
    assert payload == {"router": "x", "results": {"AlpacaEval": {"standard_error": None}}}


def test_parse_router_and_benchmarks():
    assert [r.name for r in parse_router("fixed:all", POOL)] == ["fixed:a", "fixed:b", "fixed:c"]
    assert parse_router("random", POOL)[0].name == "random:0"
    assert parse_benchmarks("all")[0] == "AlpacaEval" and parse_benchmarks("MBPP, GSM8k") == ["MBPP", "GSM8k"]
    with pytest.raises(LookaheadError, match="unknown router 'fixd'; did you mean 'fixed:"):
        parse_router("fixd", POOL)
    with pytest.raises(LookaheadError, match="name a model"):
        parse_router("fixed", POOL)
    with pytest.raises(LookaheadError, match="empty"):
        parse_benchmarks(" , ")
