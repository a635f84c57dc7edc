"""Benchmark metrics on tiny hand-made RoutingExample lists with hand-computed expectations."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.benchmarks import (
    accuracy_metrics,
    alpaca_eval_metrics,
    arena_hard_metrics,
    check_choices,
    decide,
    mt_bench_metrics,
    routing_summary,
    score_benchmark,
    validation_reward,
)

PAIR = ("m0", "m1")


def example(benchmark: str, scores: tuple[float, ...], pid: str = "p", responses=None, **extras) -> RoutingExample:
    responses = responses or tuple(f"r{j}" for j in range(len(scores)))
    return RoutingExample(pid, "prompt", tuple(responses), tuple(scores), benchmark, dict(extras))


@pytest.fixture(autouse=True)
def _no_alpaca_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the LC path deterministic: behave as if alpaca_eval is not installed."""
    monkeypatch.setitem(sys.modules, "alpaca_eval", None)


# --------------------------------------------------------------------------------------------------- decide / choices


def test_decide_breaks_ties_to_the_first_index() -> None:
    matrix = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]]
    assert decide(matrix).tolist() == [1, 0, 2]
    assert decide(torch.tensor(matrix)).dtype == np.int64


def test_decide_never_chooses_nan_rejects_all_nan_rows_and_bad_shapes() -> None:
    assert decide([[float("nan"), 1.0], [1.0, float("nan")]]).tolist() == [1, 0]
    assert decide(torch.tensor([[float("nan"), -1.0]])).tolist() == [1]
    with pytest.raises(LookaheadError, match="all NaN"):
        decide([[1.0, 2.0], [float("nan"), float("nan")]])
    with pytest.raises(LookaheadError, match="shape"):
        decide([1.0, 2.0])


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ([0, 1], "3 examples but 2 choices"),
        ([0, 1, 2], "out of range"),
        ([0, -1, 1], "out of range"),
        ([0.0, 1.0, 1.0], "integer"),
        ([[0, 1, 1]], "1-D"),
    ],
)
def test_check_choices_errors(choices, message: str) -> None:
    with pytest.raises(LookaheadError, match=message):
        check_choices(choices, 3, 2, "test")


def test_check_choices_accepts_tensors_and_per_example_pools() -> None:
    assert check_choices(torch.tensor([0, 2]), 2, [1, 3], "test").tolist() == [0, 2]
    with pytest.raises(LookaheadError, match="no examples"):
        check_choices([], 0, 2, "test")


# --------------------------------------------------------------------------------------------------- AlpacaEval


def alpaca_examples() -> list[RoutingExample]:
    prefs = [(1.0, 2.0), (1.5, 1.2), (1.8, 1.9), (1.1, 1.5)]
    return [
        example("AlpacaEval", p, f"a{i}", responses=("x" * (i + 1), "y" * 10), instruction=f"i{i}", reference="ref")
        for i, p in enumerate(prefs)
    ]


def test_alpaca_eval_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alpaca_eval", None)  # as on a machine without the optional extra
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics", None)
    out = alpaca_eval_metrics(alpaca_examples(), [1, 0, 1, 1])  # p = 2.0, 1.5, 1.9, 1.5
    assert out["win_rate"] == pytest.approx(72.5)
    assert out["standard_error"] == pytest.approx(100 * math.sqrt(0.2075 / 3) / 2)
    assert (out["n_wins"], out["n_wins_base"], out["n_draws"], out["n_total"]) == (2, 0, 2, 4)
    assert out["discrete_win_rate"] == pytest.approx(75.0)
    assert out["avg_length"] == pytest.approx((10 + 2 + 10 + 10) / 4)
    assert out["lc_win_rate"] is None and out["lc_standard_error"] is None
    assert "not installed" in out["lc_unavailable_reason"]


def test_alpaca_eval_without_lc_and_single_item() -> None:
    out = alpaca_eval_metrics(alpaca_examples()[:1], [0], compute_lc=False)
    assert out["win_rate"] == 0.0 and out["n_wins_base"] == 1 and out["discrete_win_rate"] == 0.0
    assert math.isnan(out["standard_error"])
    assert out["lc_win_rate"] is None and out["lc_unavailable_reason"] == "LC win rate not requested"


def test_alpaca_eval_rejects_preferences_outside_1_2() -> None:
    with pytest.raises(LookaheadError, match=r"outside \[1, 2\]"):
        alpaca_eval_metrics([example("AlpacaEval", (0.5, 1.0), reference="r")], [0])


# --------------------------------------------------------------------------------------------------- Arena-Hard


def arena_examples() -> list[RoutingExample]:
    # Game 1: A = baseline, B = model; game 2 swaps them.
    games = [
        (("A>B", "B>A"), ("B>>A", "A=B")),  # m0: L1 L1 | m1: W3 T1
        ((None, "A>>B"), ("A=B", "B>>A")),  # m0: null (L3) W3 | m1: T1 L3
        (("B>A", "A>B"), ("garbage", None)),  # m0: W1 W1 | m1: dropped, null (L3)
    ]
    return [example("ArenaHard", (0.0, 0.0), f"q{i}", games=g) for i, g in enumerate(games)]


def test_arena_hard_exact_score() -> None:
    out = arena_hard_metrics(arena_examples(), [1, 0, 0])  # W = 3+3+2 = 8, T = 1, L = 3 (null)
    assert (out["wins"], out["ties"], out["losses"], out["n_battles"]) == (8, 1, 3, 12)
    assert out["score"] == pytest.approx(100 * 8.5 / 12)
    assert (out["n_null_verdicts"], out["n_dropped_verdicts"]) == (1, 0)


def test_arena_hard_dropped_and_null_verdicts() -> None:
    out = arena_hard_metrics(arena_examples(), [1, 1, 1])  # W3 T1 | T1 L3 | dropped, L3
    assert (out["wins"], out["ties"], out["losses"]) == (3, 2, 6)
    assert out["score"] == pytest.approx(100 * 4 / 11)
    assert (out["n_null_verdicts"], out["n_dropped_verdicts"]) == (1, 1)


def test_arena_hard_upstream_option_drops_nulls() -> None:
    out = arena_hard_metrics(arena_examples(), [1, 0, 0], drop_null_verdicts=True)
    assert (out["wins"], out["ties"], out["losses"]) == (8, 1, 0)
    assert out["score"] == pytest.approx(100 * 8.5 / 9)


def test_arena_hard_closed_form_equals_the_bradley_terry_fit() -> None:
    """Fit the 2-player BT model as the original does (duplicated battles, tie = one win each) and compare."""
    wins, ties, losses = 8, 1, 3
    router_wins, baseline_wins = 2 * wins + ties, 2 * losses + ties  # after duplication
    k = math.log(10) / 400  # base 10, scale 400
    gap = 0.0  # router rating minus baseline rating; maximise the log-likelihood by Newton's method
    for _ in range(100):
        p = 1 / (1 + math.exp(-k * gap))
        grad = k * (router_wins * (1 - p) - baseline_wins * p)
        hess = -(k**2) * (router_wins + baseline_wins) * p * (1 - p)
        gap -= grad / hess
    predicted = 100 / (1 + 10 ** (-gap / 400))  # predicted win rate of the router vs gpt-4-0314
    assert arena_hard_metrics(arena_examples(), [1, 0, 0])["score"] == pytest.approx(predicted, abs=1e-9)


def test_arena_hard_needs_battles_and_games() -> None:
    only_garbage = [example("ArenaHard", (0.0, 0.0), games=(("x", "y"), ("x", "y")))]
    with pytest.raises(LookaheadError, match="no valid battles"):
        arena_hard_metrics(only_garbage, [0])
    with pytest.raises(LookaheadError, match="games"):
        arena_hard_metrics([example("ArenaHard", (0.0, 0.0), "q9")], [0])


# --------------------------------------------------------------------------------------------------- MT-Bench


def mt_examples() -> list[RoutingExample]:
    rows = [("writing", ((8, 6), (9, -1))), ("math", ((7, 7), (10, 9))), ("writing", ((5, -1), (6, 8)))]
    return [
        example("MT-Bench", tuple((a + b) / 2 for a, b in ts), f"m{i}", category=cat, turn_scores=ts)
        for i, (cat, ts) in enumerate(rows)
    ]


def test_mt_bench_keeps_unparsed_by_default() -> None:
    out = mt_bench_metrics(mt_examples(), [1, 1, 0])  # turn 1: 9, 10, 5; turn 2: -1, 9, -1
    assert out["turn_1"] == pytest.approx(8.0)
    assert out["turn_2"] == pytest.approx(7 / 3)
    assert out["score"] == pytest.approx((8 + 7 / 3) / 2)
    assert out["n_unparsed"] == 2
    assert out["category/writing"] == pytest.approx((7 + -1) / 2)
    assert out["category/math"] == pytest.approx(9.5)


def test_mt_bench_drop_unparsed_follows_fastchat() -> None:
    out = mt_bench_metrics(mt_examples(), [1, 1, 0], drop_unparsed=True)
    assert out["turn_1"] == pytest.approx(8.0)
    assert out["turn_2"] == pytest.approx(9.0)
    assert out["score"] == pytest.approx((9 + 10 + 5 + 9) / 4)  # mean of all kept judgments
    assert out["n_unparsed"] == 2
    assert out["category/writing"] == pytest.approx(7.0)


def test_mt_bench_without_unparsed_both_conventions_agree() -> None:
    keep = mt_bench_metrics(mt_examples(), [0, 1, 1])
    drop = mt_bench_metrics(mt_examples(), [0, 1, 1], drop_unparsed=True)
    assert keep["n_unparsed"] == 0 and keep["score"] == pytest.approx(drop["score"]) == pytest.approx(47 / 6)


def test_mt_bench_requires_turn_scores() -> None:
    with pytest.raises(LookaheadError, match="turn_scores"):
        mt_bench_metrics([example("MT-Bench", (1.0, 2.0))], [0])


# --------------------------------------------------------------------------------------------------- accuracy, routing


def accuracy_examples(benchmark: str = "GSM8k") -> list[RoutingExample]:
    return [example(benchmark, s, f"g{i}") for i, s in enumerate([(1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])]


def test_accuracy() -> None:
    assert accuracy_metrics(accuracy_examples(), [0, 1, 0])["accuracy"] == pytest.approx(200 / 3)


def test_routing_summary_with_ties() -> None:
    out = routing_summary(accuracy_examples(), [0, 1, 1], PAIR)  # oracle (first argmax): 0, 0, 1
    assert out["routing_accuracy"] == pytest.approx(200 / 3)
    assert out["picks"] == {"m0": pytest.approx(1 / 3), "m1": pytest.approx(2 / 3)}
    assert out["n"] == 3
    with pytest.raises(LookaheadError, match="candidate names"):
        routing_summary(accuracy_examples(), [0, 1, 1], ("m0", "m1", "m2"))


@pytest.mark.parametrize(
    ("name", "examples", "choices", "key", "value"),
    [
        ("AlpacaEval", alpaca_examples, [1, 0, 1, 1], "win_rate", 72.5),
        ("ArenaHard", arena_examples, [1, 0, 0], "score", 100 * 8.5 / 12),
        ("MT-Bench", mt_examples, [1, 1, 0], "score", (8 + 7 / 3) / 2),
        ("MATH", lambda: accuracy_examples("MATH"), [0, 1, 0], "accuracy", 200 / 3),
    ],
)
def test_score_benchmark_dispatches_and_merges(name, examples, choices, key, value) -> None:
    out = score_benchmark(name, examples(), choices, PAIR)
    assert out[key] == pytest.approx(value)
    assert {"n", "picks", "routing_accuracy"} <= set(out)
    if name == "AlpacaEval":
        assert out["lc_win_rate"] is None


def test_score_benchmark_options_and_errors() -> None:
    assert score_benchmark("MT-Bench", mt_examples(), [1, 1, 0], PAIR, drop_unparsed=True)["score"] == 8.25
    dropped = score_benchmark("ArenaHard", arena_examples(), [1, 0, 0], PAIR, drop_null_verdicts=True)
    assert dropped["score"] == pytest.approx(100 * 8.5 / 9)
    with pytest.raises(LookaheadError, match="belongs to benchmark 'ArenaHard', not 'Arena-Hard'"):
        score_benchmark("Arena-Hard", arena_examples(), [0, 0, 0], PAIR)
    with pytest.raises(LookaheadError, match="belongs to benchmark 'GSM8k'"):
        score_benchmark("MATH", accuracy_examples(), [0, 0, 0], PAIR)


def test_a_domain_of_your_own_dataset_scores_the_mean_raw_score() -> None:
    items = [RoutingExample(f"q{i}", "p", ("a", "b"), (7.0, 2.0 + i), "support") for i in range(3)]
    assert score_benchmark("support", items, [0, 1, 1], PAIR)["score"] == pytest.approx((7.0 + 3.0 + 4.0) / 3)


# --------------------------------------------------------------------------------------------------- validation


def test_validation_reward_by_hand() -> None:
    scores = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0], [0.0, 10.0, 5.0]])
    out = validation_reward(scores, [1, 2, 2])  # s̃ chosen: 0.5, 0, 0.5; mean max s̃ = 2/3, mean min = 0
    assert out["reward"] == pytest.approx(1 / 3)
    assert out["normalized_reward"] == pytest.approx(0.5)
    assert out["routing_accuracy"] == 0.0 and out["n"] == 3
    oracle = validation_reward(scores, decide(scores))
    assert oracle["normalized_reward"] == pytest.approx(1.0) and oracle["routing_accuracy"] == 100.0


def test_validation_reward_all_ties_reports_zero() -> None:
    out = validation_reward(np.ones((2, 3)), [2, 1])
    assert out == {"reward": 0.0, "normalized_reward": 0.0, "routing_accuracy": 0.0, "n": 2}


def test_validation_reward_validates() -> None:
    with pytest.raises(LookaheadError, match="2 examples but 1 choices"):
        validation_reward(np.ones((2, 3)), [0])
    with pytest.raises(LookaheadError, match="shape"):
        validation_reward(np.ones(3), [0, 0, 0])
