"""Decision rules on small matrices whose choices are worked out by hand."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from lightning_lookahead.costs.rules import ARGMAX, DecisionRule, top_choice_probabilities
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.benchmarks import decide

# 3 prompts × 3 candidates; candidate 0 is cheapest, 2 dearest.
P = np.array([[0.9, 0.6, 0.2], [0.3, 0.8, 0.9], [0.1, 0.2, 0.3]])
COSTS = np.array([1.0, 2.0, 4.0])


def test_argmax_takes_the_first_index_on_ties():
    assert ARGMAX.choose(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])).tolist() == [1, 0]


def test_penalty_at_zero_is_the_argmax_and_large_lambda_is_the_cheapest():
    assert DecisionRule("penalty", lam=0.0).choose(P, COSTS, probabilities=P).tolist() == [0, 2, 2]
    assert DecisionRule("penalty", lam=10.0).choose(P, COSTS, probabilities=P).tolist() == [0, 0, 0]


def test_penalty_switches_where_the_trade_off_says():
    # Row 1: candidate 1 beats 2 once 0.8 - 2λ > 0.9 - 4λ, i.e. λ > 0.05; it beats 0 while 0.8 - 2λ > 0.3 - λ (λ < 0.5).
    assert DecisionRule("penalty", lam=0.049).choose(P, COSTS, probabilities=P)[1] == 2
    assert DecisionRule("penalty", lam=0.051).choose(P, COSTS, probabilities=P)[1] == 1
    assert DecisionRule("penalty", lam=0.51).choose(P, COSTS, probabilities=P)[1] == 0


def test_threshold_picks_the_cheapest_candidate_above_tau_else_the_most_likely():
    assert DecisionRule("threshold", tau=0.5).choose(P, COSTS, probabilities=P).tolist() == [0, 1, 2]
    assert DecisionRule("threshold", tau=0.85).choose(P, COSTS, probabilities=P).tolist() == [0, 2, 2]
    assert DecisionRule("threshold", tau=0.0).choose(P, COSTS, probabilities=P).tolist() == [0, 0, 0]


def test_per_prompt_costs_change_the_cheapest_candidate():
    costs = np.array([[1.0, 2.0, 4.0], [5.0, 2.0, 1.0], [1.0, 2.0, 4.0]])
    assert DecisionRule("threshold", tau=0.25).choose(P, costs, probabilities=P).tolist() == [0, 2, 2]


def test_probabilities_default_to_the_sigmoid_of_the_scores():
    logits = np.log(P / (1 - P))
    assert DecisionRule("threshold", tau=0.5).choose(logits, COSTS).tolist() == [0, 1, 2]


def test_top_choice_probabilities_by_kind():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning for huge logits
        sig = top_choice_probabilities(np.array([[-1000.0, 0.0, 1000.0]]), "logits")
    assert sig.tolist() == [[0.0, 0.5, 1.0]]
    assert top_choice_probabilities(np.array([[-0.5, 0.4, 1.5]]), "probabilities").tolist() == [[0.0, 0.4, 1.0]]
    true = np.array([[2.0, 10.0, 9.0, 8.0], [3.0, 3.0, 3.0, 3.0]])
    # §6 labels: min-max normalised score ≥ 0.8; an all-equal row normalises to zeros.
    assert top_choice_probabilities(true, "true_scores").tolist() == [[0, 1, 1, 0], [0, 0, 0, 0]]
    assert top_choice_probabilities(true, "true_scores", threshold=0.0).tolist() == [[0, 1, 0.875, 0.75], [0, 0, 0, 0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "penalty", "lam": -1.0}, "λ must be ≥ 0"),
        ({"rule": "threshold", "tau": 1.5}, "τ must be in [0, 1]"),
        ({"rule": "cheapest"}, "unknown decision rule 'cheapest'"),
    ],
)
def test_bad_rule_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(LookaheadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DecisionRule(**kwargs)


def test_cost_rules_need_costs_of_the_right_shape():
    with pytest.raises(LookaheadError, match="need candidate costs"):
        DecisionRule("penalty").choose(P, None)
    with pytest.raises(LookaheadError, match=r"costs have shape \(2,\)"):
        DecisionRule("penalty").choose(P, np.ones(2))
    with pytest.raises(LookaheadError, match="unknown score kind"):
        top_choice_probabilities(P, "softmax")  # type: ignore[arg-type]


def test_a_rule_carries_its_costs_and_a_call_may_replace_them():
    rule = DecisionRule("threshold", tau=0.5, costs=(4.0, 2.0, 1.0))  # now candidate 2 is the cheapest
    assert rule.choose(P, probabilities=P).tolist() == [1, 2, 2]
    assert rule.choose(P, COSTS, probabilities=P).tolist() == [0, 1, 2]  # the call's costs win
    assert rule == DecisionRule("threshold", 0, 0.5, [4, 2, 1])  # equal by value: requests batch together
    with pytest.raises(LookaheadError, match="costs must be finite and ≥ 0"):
        DecisionRule("penalty", costs=(1.0, float("nan")))


NAN = float("nan")
#: Rows with NaN scores: a NaN is never chosen over a number (not even over -inf); ties still go to the first index.
WITH_NAN = np.array(
    [
        [NAN, 0.2, 0.7],
        [0.9, NAN, 0.9],
        [NAN, -np.inf, 1.0],
        [NAN, -np.inf, -np.inf],
        [0.1, 0.5, NAN],
    ]
)


def test_the_rules_and_the_metrics_argmax_agree_on_rows_with_nan():
    expected = [2, 0, 2, 1, 1]
    assert decide(WITH_NAN).tolist() == expected  # metrics.benchmarks.decide: evaluation, training reports
    assert ARGMAX.choose(WITH_NAN).tolist() == expected  # costs.rules: route, serve, bulk routing
    # the cost rules' own argmax (λ = 0, and the threshold rule's fallback when no p reaches τ) never picks NaN either
    probs = top_choice_probabilities(WITH_NAN)
    assert DecisionRule("penalty", lam=0.0).choose(WITH_NAN, np.ones(3)).tolist() == decide(probs).tolist()
    assert DecisionRule("threshold", tau=1.0).choose(WITH_NAN, np.ones(3)).tolist() == decide(probs).tolist()
    assert not np.isnan(WITH_NAN[np.arange(len(expected)), expected]).any()


def test_an_all_nan_row_is_an_error_for_both():
    matrix = np.array([[0.1, 0.2], [NAN, NAN]])
    for argmax in (decide, ARGMAX.choose):
        with pytest.raises(
            LookaheadError, match=re.escape("1 row(s) with no score that is a number (all NaN), first at row 1")
        ):
            argmax(matrix)
