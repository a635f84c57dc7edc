"""Fitting λ and τ to a target cost or share, on synthetic logs whose right answer is worked out by hand.

Two candidates, A (cost 10, index 0) and B (cost 0): the penalty rule picks A iff p_A − 10λ ≥ p_B, so prompt i goes to
A exactly while λ ≤ λ_i = (p_A − p_B)/10. The mean cost at λ is 10·#{i : λ_i ≥ λ}/n, and the smallest λ meeting a
target T is just above the (k+1)-th largest λ_i, with k = ⌊nT/10⌋. The threshold rule picks B iff p_B ≥ τ, else A
when p_A > p_B; so the largest τ meeting T is the (k+1)-th smallest p_B among the prompts where p_A > p_B.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_lookahead.costs.calibrate import (
    fit_cost,
    fit_share,
    heldout_report,
    mean_cost,
    mean_interval,
    share,
    share_is_monotone,
    split,
)
from lightning_lookahead.costs.rules import top_choice_probabilities
from lightning_lookahead.errors import LookaheadError

N = 40
COSTS = np.array([10.0, 0.0])
NAMES = ["A", "B"]


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def log() -> tuple[np.ndarray, np.ndarray]:
    """(scores, probabilities) of N prompts × (A, B); the probabilities as the rules read them back."""
    rng = np.random.default_rng(7)
    scores = _logit(rng.uniform(0.05, 0.95, size=(N, 2)))
    return scores, top_choice_probabilities(scores)


def _breakpoints(p: np.ndarray) -> np.ndarray:
    """λ_i for the prompts that A wins at λ = 0, largest first."""
    gap = p[:, 0] - p[:, 1]
    return np.sort(gap[gap >= 0] / 10.0)[::-1]


@pytest.mark.parametrize("target", [0.5, 2.5, 4.0])
def test_fit_cost_finds_the_lambda_worked_out_by_hand(log, target):
    scores, p = log
    lam_i = _breakpoints(p)
    k = math.floor(N * target / 10)
    assert k < len(lam_i)  # the target is below the argmax cost, so a λ > 0 is needed
    fit = fit_cost(scores, COSTS, target, candidates=NAMES)
    assert fit.status == "met" and fit.rule == "penalty"
    assert fit.lam == pytest.approx(lam_i[k], rel=1e-9) and fit.lam > lam_i[k]
    assert fit.fitted == pytest.approx(10 * k / N) and fit.fitted <= target
    # The smallest such λ: a little less and the (k+1)-th prompt goes back to A, over the target.
    assert mean_cost(scores, COSTS, "penalty", lam_i[k] * (1 - 1e-6)) > target


@pytest.mark.parametrize("target", [1.0, 3.0])
def test_fit_cost_with_the_threshold_rule_finds_tau_worked_out_by_hand(log, target):
    scores, p = log
    a_wins = p[:, 0] > p[:, 1]
    q = np.sort(p[a_wins, 1])
    k = math.floor(N * target / 10)
    fit = fit_cost(scores, COSTS, target, rule="threshold", candidates=NAMES)
    assert fit.status == "met" and fit.rule == "threshold" and fit.lam == 0.0
    assert fit.tau == pytest.approx(q[k], abs=1e-9) and fit.tau <= q[k]
    assert fit.fitted == pytest.approx(10 * k / N) and fit.fitted <= target
    assert mean_cost(scores, COSTS, "threshold", q[k] + 1e-6) > target  # the largest such τ


def test_mean_cost_and_the_dearest_share_are_monotone_in_the_knob():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(200, 5)) * 2
    costs = rng.uniform(0.0, 5.0, size=5)
    dearest, cheapest = int(np.argmax(costs)), int(np.argmin(costs))
    lams = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 60)])
    taus = np.linspace(0.0, 1.0, 61)
    by_lam = [mean_cost(scores, costs, "penalty", x) for x in lams]
    by_tau = [mean_cost(scores, costs, "threshold", x) for x in taus]
    assert np.all(np.diff(by_lam) <= 1e-12) and by_lam[0] > by_lam[-1]
    assert np.all(np.diff(by_tau) >= -1e-12) and by_tau[0] < by_tau[-1]
    assert by_lam[-1] == pytest.approx(costs.min()) and by_tau[0] == pytest.approx(costs.min())
    assert np.all(np.diff([share(scores, costs, "penalty", x, dearest) for x in lams]) <= 0)
    assert np.all(np.diff([share(scores, costs, "penalty", x, cheapest) for x in lams]) >= 0)
    assert np.all(np.diff([share(scores, costs, "threshold", x, dearest) for x in taus]) >= 0)


def test_a_target_below_the_cheapest_is_unreachable_and_one_above_argmax_is_already_met(log):
    scores, p = log
    costs = np.array([10.0, 2.0])
    low = fit_cost(scores, costs, 1.0, candidates=NAMES)
    assert low.status == "unreachable" and low.fitted == pytest.approx(2.0)
    assert "below the cheapest possible 2" in low.message and "every prompt to B" in low.message
    argmax_cost = float(costs[np.argmax(p, axis=1)].mean())
    for rule, end in (("penalty", 0.0), ("threshold", 1.0)):
        high = fit_cost(scores, costs, argmax_cost + 0.01, rule=rule, candidates=NAMES)
        assert high.status == "already_met" and high.value == end
        assert high.fitted == pytest.approx(argmax_cost) and "already costs" in high.message
    with pytest.raises(LookaheadError, match="finite number ≥ 0"):
        fit_cost(scores, costs, -1.0)


def test_share_target_for_the_dearest_candidate(log):
    scores, p = log
    lam_i = _breakpoints(p)
    fit = fit_share(scores, COSTS, 0, 0.3, candidates=NAMES)
    # 30% of 40 prompts is 12: λ in (λ_13, λ_12] routes exactly those 12 to A.
    assert fit.status == "met" and fit.monotone and fit.fitted == pytest.approx(0.3)
    assert lam_i[12] < fit.lam <= lam_i[11]
    assert share(scores, COSTS, "penalty", fit.lam, 0) == pytest.approx(0.3)
    most = len(lam_i) / N  # A's argmax share: no λ routes more to it
    over = fit_share(scores, COSTS, 0, min(1.0, most + 0.2), candidates=NAMES)
    assert over.status == "unreachable" and over.lam == 0.0 and over.fitted == pytest.approx(most)
    assert "not reachable" in over.message
    tau_fit = fit_share(scores, COSTS, 0, 0.3, rule="threshold", candidates=NAMES)
    assert tau_fit.status == "met" and share(scores, COSTS, "threshold", tau_fit.tau, 0) == pytest.approx(0.3)


def test_share_of_a_middle_candidate_is_not_monotone_and_says_so():
    # p = (0.9, 0.8, 0.1), costs (10, 5, 0): A while λ < 0.02, B while 0.02 < λ < 0.14, C after; B's share 0 → 1 → 0.
    scores = _logit(np.array([[0.9, 0.8, 0.1]]))
    costs = np.array([10.0, 5.0, 0.0])
    assert not share_is_monotone(costs, 1) and share_is_monotone(costs, 0) and share_is_monotone(costs, 2)
    fit = fit_share(scores, costs, 1, 1.0, candidates=["A", "B", "C"])
    assert fit.status == "met" and fit.fitted == 1.0 and 0.02 < fit.lam < 0.14
    assert not fit.monotone and "only for the most (or least) expensive candidate" in fit.message
    with pytest.raises(LookaheadError, match=r"in \[0, 1\]"):
        fit_share(scores, costs, 1, 1.5)


def test_split_is_seeded_disjoint_and_refuses_small_logs():
    fit_a, held_a = split(100, 0.2, seed=0)
    fit_b, held_b = split(100, 0.2, seed=0)
    assert len(held_a) == 20 and len(fit_a) == 80
    assert np.array_equal(fit_a, fit_b) and np.array_equal(held_a, held_b)
    assert sorted([*fit_a, *held_a]) == list(range(100))
    assert not np.array_equal(held_a, split(100, 0.2, seed=1)[1])
    with pytest.raises(LookaheadError, match="too few to split"):
        split(30, 0.2, seed=0)
    with pytest.raises(LookaheadError, match="strictly between 0 and 1"):
        split(100, 1.0, seed=0)


def test_heldout_report_intervals_shares_and_the_argmax_reference(log):
    scores, p = log
    fit = fit_cost(scores, COSTS, 2.5, candidates=NAMES)
    report = heldout_report(scores, COSTS, fit, NAMES, model=0, resamples=500)
    chosen_a = p[:, 0] - fit.lam * 10 >= p[:, 1]
    assert report["n"] == N and report["mean_cost"]["value"] == pytest.approx(10 * chosen_a.mean())
    assert report["shares"] == pytest.approx({"A": chosen_a.mean(), "B": 1 - chosen_a.mean()})
    assert report["argmax_cost"]["value"] == pytest.approx(float(COSTS[np.argmax(p, axis=1)].mean()))
    assert report["share"]["model"] == "A" and report["share"]["value"] == pytest.approx(chosen_a.mean())
    saving = report["argmax_cost"]["value"] - report["mean_cost"]["value"]
    assert report["saving_vs_argmax"]["value"] == pytest.approx(saving)
    for key in ("mean_cost", "argmax_cost", "saving_vs_argmax", "share"):
        interval = report[key]
        assert interval["low"] <= interval["value"] <= interval["high"]
    assert report["mean_cost"]["low"] < report["mean_cost"]["high"]  # the log varies, so does the resampled mean


def test_mean_interval_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = mean_interval(rng.normal(size=50)), mean_interval(rng.normal(size=5000))
    assert small.high - small.low > 5 * (large.high - large.low)
    assert large.low < 0.0 < large.high
