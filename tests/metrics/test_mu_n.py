"""The paper's normalised score µn on hand-computed fixtures."""

from __future__ import annotations

import json

import pytest

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.evaluation import evaluate_router, markdown_table, runs_to_json
from lightning_lookahead.metrics.mu_n import References, mu_n, normalized_score, references
from lightning_lookahead.routers.base import FixedRouter, OracleRouter

POOL = ("a", "b", "c")
# accuracies: a 25, b 50, c 25 → random (mean of the single models) 33.33; oracle 75
MATH_SCORES = [(0, 1, 0), (1, 1, 0), (0, 0, 1), (0, 0, 0)]


def _items(benchmark: str, scores: list[tuple[float, ...]]) -> list[RoutingExample]:
    return [RoutingExample(f"{benchmark}-{i}", f"q{i}", ("", "", ""), s, benchmark) for i, s in enumerate(scores)]


def test_mu_n_by_hand():
    items = {"MATH": _items("MATH", MATH_SCORES)}
    refs = references("MATH", items["MATH"], POOL)
    assert refs.random["accuracy"] == pytest.approx(100 / 3) and refs.oracle["accuracy"] == 75.0
    fixed_b = evaluate_router(FixedRouter("b"), items, POOL)
    assert fixed_b["results"]["MATH"]["mu_n"] == pytest.approx(40.0)  # (50 − 33.33) / (75 − 33.33)
    assert fixed_b["results"]["MATH"]["mu_n_metric"] == "accuracy"
    assert evaluate_router(FixedRouter("a"), items, POOL)["results"]["MATH"]["mu_n"] == pytest.approx(-20.0)
    assert evaluate_router(OracleRouter(), items, POOL)["avg_mu_n"] == pytest.approx(100.0)


def test_benchmark_where_oracle_equals_random_has_no_mu_n_and_leaves_the_average():
    items = {
        "MATH": _items("MATH", MATH_SCORES),
        "GSM8k": _items("GSM8k", [(1, 1, 1), (0, 0, 0)]),  # every candidate alike: oracle = random = 50
    }
    cache: dict = {}
    run = evaluate_router(FixedRouter("b"), items, POOL, reference_cache=cache)
    assert run["results"]["GSM8k"]["mu_n"] is None
    assert run["avg_mu_n"] == pytest.approx(40.0)  # the MATH value alone
    assert set(cache) == {"MATH", "GSM8k"}
    assert normalized_score(50.0, 50.0, 50.0) is None
    payload = json.loads(runs_to_json([run]))
    assert payload["avg_mu_n"] == pytest.approx(40.0) and payload["results"]["GSM8k"]["mu_n"] is None
    table = markdown_table([run])
    assert table.splitlines()[0] == "| Router | GSM8k | MATH | Avg µn |"
    assert "| fixed:b | 50.00 | 50.00 / 40.0 | 40.0 |" in table


def test_alpacaeval_uses_lc_when_available_else_raw_win_rate():
    refs = References(
        n=2, random={"lc_win_rate": 30.0, "win_rate": 20.0}, oracle={"lc_win_rate": 60.0, "win_rate": 50.0}
    )
    assert mu_n("AlpacaEval", {"lc_win_rate": 45.0, "win_rate": 35.0}, refs) == (pytest.approx(50.0), "lc_win_rate")
    assert mu_n("AlpacaEval", {"lc_win_rate": None, "win_rate": 35.0}, refs) == (pytest.approx(50.0), "win_rate")
    offline = References(
        n=2, random={"lc_win_rate": None, "win_rate": 20.0}, oracle={"lc_win_rate": None, "win_rate": 50.0}
    )
    assert mu_n("AlpacaEval", {"lc_win_rate": 45.0, "win_rate": 35.0}, offline) == (pytest.approx(50.0), "win_rate")
