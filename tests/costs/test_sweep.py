"""Cost sweep on a fixture whose curve is known by hand.

Two candidates, "cheap" ($1 per 1M output tokens) and "dear" ($10), every response 1,000 tokens and prompts free, so a
prompt costs 1.0 or 10.0 USD per 1,000 prompts. Four GSM8k items, correctness (cheap, dear):
(1, 1), (0, 1), (0, 1), (1, 0). Hence fixed cheap = (cost 1.0, quality 50), fixed dear = (10.0, 75), and the oracle's
argmax (ties → cheap) = (5.5, 100). The AUC range is [1, 10], the target 0.95 · 75 = 71.25.
"""

from __future__ import annotations

import numpy as np
import pytest

from lightning_lookahead.costs.plot import plot_cost_quality
from lightning_lookahead.costs.prices import Price, PriceTable
from lightning_lookahead.costs.report import markdown_report, remember_scores, write_cost_sweep
from lightning_lookahead.costs.sweep import Point, build_problem, pareto_frontier, step_area, sweep
from lightning_lookahead.costs.token_counts import TokenCounter
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.routers.base import FixedRouter, Router

CANDIDATES = ("cheap", "dear")
PRICES = PriceTable({"cheap": Price(0.0, 1.0), "dear": Price(0.0, 10.0)}, "test prices", "test.yaml")
CORRECT = [(1.0, 1.0), (0.0, 1.0), (0.0, 1.0), (1.0, 0.0)]
# A router's top-choice probabilities (cheap, dear) per item.
ROUTER_P = np.array([[0.9, 0.6], [0.3, 0.8], [0.6, 0.7], [0.2, 0.4]])


class Broken(TokenCounter):
    """Fails if any count is asked of the tokenizer: the fixture's counts must come from the data."""

    def _load(self):
        raise AssertionError("tokenizer used although the data has token counts")


class Learned(Router):
    name = "learned"
    score_kind = "probabilities"

    def score_matrix(self, examples, candidates):
        return ROUTER_P


def examples() -> list[RoutingExample]:
    return [
        RoutingExample(
            prompt_id=f"q{i}",
            prompt=f"question {i}",
            responses=("a", "b"),
            scores=scores,
            benchmark="GSM8k",
            extras={"response_tokens": (1000, 1000), "prompt_tokens": 7},
        )
        for i, scores in enumerate(CORRECT)
    ]


@pytest.fixture(scope="module")
def result():
    problem = build_problem({"GSM8k": examples()}, CANDIDATES, PRICES, Broken())
    return sweep([Learned(), FixedRouter("cheap")], problem)


def pairs(points, rule=None):
    return {(round(p.cost, 6), round(p.quality, 6)) for p in points if rule is None or p.rule == rule}


def test_costs_come_from_the_data_counts(result):
    assert result.token_source == "response token counts from the data"
    assert result.curve("fixed:cheap").argmax.cost == pytest.approx(1.0)
    assert result.curve("fixed:dear").argmax.cost == pytest.approx(10.0)


def test_baselines_are_added_and_fixed_models_are_single_points(result):
    names = [c.router for c in result.curves]
    assert names == ["learned", "fixed:cheap", "oracle", "random:0", "fixed:dear"]
    assert pairs(result.curve("fixed:cheap").points) == {(1.0, 50.0)}
    assert pairs(result.curve("fixed:dear").points) == {(10.0, 75.0)}
    assert len(result.curve("random:0").points) == 1
    assert result.best_single == "fixed:dear" and result.target_quality == pytest.approx(71.25)
    assert result.cost_range == pytest.approx((1.0, 10.0))


def test_oracle_curve_by_hand(result):
    oracle = result.curve("oracle")
    assert (oracle.argmax.cost, oracle.argmax.quality) == pytest.approx((5.5, 100.0))
    # λ < 1/9 keeps dear on the two items only dear solves; larger λ routes everything to cheap.
    assert pairs(oracle.points, "penalty") == {(5.5, 100.0), (1.0, 50.0)}
    # τ = 0: every candidate qualifies, so the cheapest; τ > 0: only the best (item 0's tie falls back to cheap).
    assert pairs(oracle.points, "threshold") == {(1.0, 50.0), (5.5, 100.0)}
    assert pairs(oracle.frontier) == {(1.0, 50.0), (5.5, 100.0)}
    assert oracle.area == pytest.approx(50 * 4.5 + 100 * 4.5)
    assert oracle.auc == pytest.approx(1.0)
    assert oracle.cost_to_target == pytest.approx(5.5)


def test_learned_router_curve_by_hand(result):
    learned = result.curve("learned")
    assert (learned.argmax.cost, learned.argmax.quality) == pytest.approx((7.75, 75.0))
    # dear wins item i while λ < (p_dear − p_cheap)/9: item 2 flips first, then item 3, then item 1.
    assert pairs(learned.points, "penalty") == {(7.75, 75.0), (5.5, 50.0), (3.25, 75.0), (1.0, 50.0)}
    assert pairs(learned.points, "threshold") == {(1.0, 50.0), (3.25, 25.0), (5.5, 50.0), (7.75, 75.0)}
    assert pairs(learned.frontier) == {(1.0, 50.0), (3.25, 75.0)}
    assert learned.auc == pytest.approx((50 * 2.25 + 75 * 6.75) / 675)
    assert learned.cost_to_target == pytest.approx(3.25)


def test_single_points_summaries(result):
    cheap, dear = result.curve("fixed:cheap"), result.curve("fixed:dear")
    assert cheap.auc == pytest.approx(450 / 675) and cheap.cost_to_target is None
    assert dear.auc == 0.0 and dear.cost_to_target == pytest.approx(10.0)


def test_frontier_and_step_area_helpers():
    pts = [Point("r", "x", None, c, q) for c, q in [(2.0, 10.0), (1.0, 5.0), (3.0, 9.0), (2.0, 4.0), (4.0, 10.0)]]
    assert [(p.cost, p.quality) for p in pareto_frontier(pts)] == [(1.0, 5.0), (2.0, 10.0)]
    frontier = pareto_frontier(pts)
    assert step_area(frontier, 0.0, 5.0) == pytest.approx(5.0 * 1 + 10.0 * 3)  # nothing affordable below cost 1
    assert step_area(frontier, 1.5, 2.5) == pytest.approx(5.0 * 0.5 + 10.0 * 0.5)


def test_outputs_are_written(result, tmp_path):
    paths = write_cost_sweep(result, tmp_path / "out")
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    text = paths["markdown"].read_text()
    assert "| learned | 7.7500 | 75.00 | 0.917 | 3.2500 |" in text
    assert "| fixed:cheap | 1.0000 | 50.00 | 0.667 | n/a |" in text
    assert "Prices: test prices" in text
    import json

    data = json.loads(paths["json"].read_text())
    oracle = next(c for c in data["curves"] if c["router"] == "oracle")
    assert oracle["auc"] == pytest.approx(1.0) and data["cost_unit"] == "USD per 1,000 prompts"
    assert [oracle["points"][i]["cost"] for i in oracle["frontier"]] == pytest.approx([1.0, 5.5])
    assert markdown_report(result).count("| learned |") == len(result.curve("learned").points) + 1


def test_plot_leaves_pyplot_alone(result, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_cost_quality(result, tmp_path / "p.png")
    assert plt.get_fignums() == before


def test_remembered_routers_score_once_and_keep_their_role():
    calls = []

    class Counting(Learned):
        def score_matrix(self, examples, candidates):
            calls.append(1)
            return ROUTER_P

    (router, fixed) = remember_scores([Counting(), FixedRouter("dear")])
    exs = examples()
    router.score_matrix(exs, CANDIDATES)
    problem = build_problem({"GSM8k": exs}, CANDIDATES, PRICES, Broken())
    result = sweep([router, fixed], problem)
    assert len(calls) == 1 and result.curve("fixed:dear").role == "fixed"
    assert result.curve("learned").score_kind == "probabilities"
