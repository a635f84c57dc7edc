"""Decision rules on small matrices whose choices are worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lightning_lookahead.costs.rules import choose, top_choice_probabilities
from lightning_lookahead.errors import LookaheadError

# 3 prompts × 3 candidates; candidate 0 is cheapest, 2 dearest.
P = np.array([[0.9, 0.6, 0.2], [0.3, 0.8, 0.9], [0.1, 0.2, 0.3]])
COSTS = np.array([1.0, 2.0, 4.0])


def test_argmax_takes_the_first_index_on_ties():
    assert choose(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])).tolist() == [1, 0]


def test_penalty_at_zero_is_the_argmax_and_large_lambda_is_the_cheapest():
    assert choose(P, COSTS, rule="penalty", lam=0.0, probabilities=P).tolist() == [0, 2, 2]
    assert choose(P, COSTS, rule="penalty", lam=10.0, probabilities=P).tolist() == [0, 0, 0]


def test_penalty_switches_where_the_trade_off_says():
    # Row 1: candidate 1 beats 2 once 0.8 - 2λ > 0.9 - 4λ, i.e. λ > 0.05; it beats 0 while 0.8 - 2λ > 0.3 - λ (λ < 0.5).
    assert choose(P, COSTS, rule="penalty", lam=0.049, probabilities=P)[1] == 2
    assert choose(P, COSTS, rule="penalty", lam=0.051, probabilities=P)[1] == 1
    assert choose(P, COSTS, rule="penalty", lam=0.51, probabilities=P)[1] == 0


def test_threshold_picks_the_cheapest_candidate_above_tau_else_the_most_likely():
    assert choose(P, COSTS, rule="threshold", tau=0.5, probabilities=P).tolist() == [0, 1, 2]
    assert choose(P, COSTS, rule="threshold", tau=0.85, probabilities=P).tolist() == [0, 2, 2]
    assert choose(P, COSTS, rule="threshold", tau=0.0, probabilities=P).tolist() == [0, 0, 0]


def test_per_prompt_costs_change_the_cheapest_candidate():
    costs = np.array([[1.0, 2.0, 4.0], [5.0, 2.0, 1.0], [1.0, 2.0, 4.0]])
    assert choose(P, costs, rule="threshold", tau=0.25, probabilities=P).tolist() == [0, 2, 2]


def test_probabilities_default_to_the_sigmoid_of_the_scores():
    logits = np.log(P / (1 - P))
    assert choose(logits, COSTS, rule="threshold", tau=0.5).tolist() == [0, 1, 2]


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
        choose(P, COSTS, probabilities=P, **kwargs)


def test_cost_rules_need_costs_of_the_right_shape():
    with pytest.raises(LookaheadError, match="need candidate costs"):
        choose(P, None, rule="penalty")
    with pytest.raises(LookaheadError, match=r"costs have shape \(2,\)"):
        choose(P, np.ones(2), rule="penalty")
    with pytest.raises(LookaheadError, match="unknown score kind"):
        top_choice_probabilities(P, "softmax")  # type: ignore[arg-type]
