"""Fit λ (penalty rule) or τ (threshold rule) so routing meets a target mean cost or a candidate's share of prompts.

Pure numpy over a score matrix the router already produced; every decision goes through ``DecisionRule.choose``
so a fitted value means exactly what ``route``/``serve`` will do with it.

Why bisection is enough for a cost target: with one cost per candidate, the penalty rule's chosen cost per prompt
cannot rise as λ grows (if the choice at λ₂ > λ₁ were dearer than the one at λ₁, adding the two argmax inequalities
gives (λ₂ − λ₁)(c₂ − c₁) ≤ 0, a contradiction), and the threshold rule's cannot fall as τ grows (the set
{j : p_j ≥ τ} shrinks, so its cheapest member can only get dearer, and when it empties the fallback is the argmax,
the set's last member). So the mean cost is monotone in the knob, and so is the share of the most expensive candidate
(and of the cheapest); the share of any other candidate need not be, so a share target for it is met by a scan.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from lightning_lookahead.costs.rules import ARGMAX, DecisionRule, top_choice_probabilities
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.bootstrap import paired_bootstrap

Rule = Literal["penalty", "threshold"]
#: met: the target is met (cost ≤ target, or the closest share a scan found); already_met: the quality-only end
#: (λ = 0, or τ = 1) meets it; unreachable: no value of the knob reaches it (the closest one is returned).
Status = Literal["met", "already_met", "unreachable"]
#: Fewest prompts each part of the split may hold: fewer make neither the fit nor the interval mean anything.
MIN_PART = 10
#: Settings a share scan evaluates before refining each crossing by bisection.
SCAN_POINTS = 257
_MAX_ITER = 200
_RTOL = 1e-12


@dataclass(frozen=True)
class Fit:
    """The fitted knob (``value``: λ or τ), what it reaches on the fitting prompts, and a one-line account of it."""

    rule: Rule
    value: float
    fitted: float
    status: Status
    message: str
    #: For share targets: whether the share is monotone in the knob (target model is the dearest or cheapest).
    monotone: bool = True

    @property
    def lam(self) -> float:
        return self.value if self.rule == "penalty" else 0.0

    @property
    def tau(self) -> float:
        return self.value if self.rule == "threshold" else 0.5

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Interval:
    """A held-out estimate and its bootstrap 95% percentile interval."""

    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


class _Problem:
    """A score matrix and one cost per candidate, with the top-choice probabilities computed once."""

    def __init__(self, scores: np.ndarray, costs: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        if self.scores.ndim != 2 or self.scores.shape[0] == 0:
            raise LookaheadError(f"need a non-empty (prompts × candidates) score matrix, got shape {self.scores.shape}")
        self.costs = np.asarray(costs, dtype=np.float64)
        if self.costs.shape != (self.scores.shape[1],):
            raise LookaheadError(f"need one cost per candidate ({self.scores.shape[1]}), got shape {self.costs.shape}")
        if not np.all(np.isfinite(self.costs)) or np.any(self.costs < 0):
            raise LookaheadError("candidate costs must be finite and ≥ 0")
        self.probabilities = top_choice_probabilities(self.scores)

    def decide(self, rule: Rule, value: float) -> np.ndarray:
        return knob_rule(rule, value).choose(self.scores, self.costs, probabilities=self.probabilities)

    def mean_cost(self, rule: Rule, value: float) -> float:
        return float(self.costs[self.decide(rule, value)].mean())

    def share(self, rule: Rule, value: float, model: int) -> float:
        return float((self.decide(rule, value) == model).mean())

    def knob_range(self, rule: Rule) -> tuple[float, float]:
        """[lo, hi] of the knob: τ ∈ [0, 1]; λ from 0 to where every prompt goes to a cheapest candidate."""
        if rule == "threshold":
            return 0.0, 1.0
        gaps = self.costs - self.costs.min()
        positive = gaps[gaps > 0]
        # p differences are at most 1, so λ·(c_j − c_min) > 1 for every dearer j leaves only the cheapest.
        return 0.0, (2.0 / float(positive.min())) if positive.size else 0.0

    def ends(self, rule: Rule) -> tuple[float, float]:
        """(quality end, cheap end): λ = 0 is the argmax decision; for the threshold rule it is τ = 1."""
        lo, hi = self.knob_range(rule)
        return (lo, hi) if rule == "penalty" else (hi, lo)


def knob_rule(rule: Rule, value: float, costs: tuple[float, ...] | None = None) -> DecisionRule:
    """The decision rule of a fitted knob: λ of the penalty rule or τ of the threshold rule."""
    if rule == "penalty":
        return DecisionRule("penalty", lam=value, costs=costs)
    if rule == "threshold":
        return DecisionRule("threshold", tau=value, costs=costs)
    raise LookaheadError(f"calibration fits the penalty or threshold rule, not {rule!r}")


def _names(candidates: list[str] | None, n: int) -> list[str]:
    return list(candidates) if candidates is not None else [f"candidate {j}" for j in range(n)]


def _knob(rule: Rule, value: float) -> str:
    return f"λ = {value:.6g}" if rule == "penalty" else f"τ = {value:.6g}"


def _converged(a: float, b: float) -> bool:
    return abs(a - b) <= _RTOL * max(abs(a), abs(b)) or (a + b) / 2 in (a, b)


def mean_cost(scores: np.ndarray, costs: np.ndarray, rule: Rule, value: float) -> float:
    """Mean chosen cost over the prompts when routing with ``rule`` at λ or τ = ``value``."""
    return _Problem(scores, costs).mean_cost(rule, value)


def share(scores: np.ndarray, costs: np.ndarray, rule: Rule, value: float, model: int) -> float:
    """Share of the prompts routed to candidate ``model`` with ``rule`` at λ or τ = ``value``."""
    return _Problem(scores, costs).share(rule, value, model)


def fit_cost(
    scores: np.ndarray,
    costs: np.ndarray,
    target: float,
    *,
    rule: Rule = "penalty",
    candidates: list[str] | None = None,
) -> Fit:
    """The setting nearest the quality-only end whose mean cost is ≤ ``target`` (same unit as ``costs``).

    Penalty: the smallest such λ (bisection converges to the breakpoint from above, so the prompt on the boundary
    goes to the cheaper candidate); threshold: the largest such τ.
    """
    if not (math.isfinite(target) and target >= 0):
        raise LookaheadError(f"the target cost must be a finite number ≥ 0, got {target}")
    prob = _Problem(scores, costs)
    quality, cheap = prob.ends(rule)
    at_quality, at_cheap = prob.mean_cost(rule, quality), prob.mean_cost(rule, cheap)
    if at_quality <= target:
        end = "λ = 0, quality only" if rule == "penalty" else "τ = 1, the argmax decision"
        message = f"the argmax decision already costs {at_quality:.5g} ≤ the target {target:.5g}, so {end}"
        return Fit(rule, quality, at_quality, "already_met", message)
    if at_cheap > target:
        names = _names(candidates, len(prob.costs))
        cheapest = ", ".join(names[j] for j in np.flatnonzero(prob.costs == prob.costs.min()))
        message = f"the target {target:.5g} is below the cheapest possible {at_cheap:.5g} (every prompt to {cheapest})"
        return Fit(rule, cheap, at_cheap, "unreachable", message)
    good, bad = cheap, quality  # invariant: mean_cost(good) ≤ target < mean_cost(bad)
    for _ in range(_MAX_ITER):
        if _converged(good, bad):
            break
        mid = 0.5 * (good + bad)
        if prob.mean_cost(rule, mid) <= target:
            good = mid
        else:
            bad = mid
    fitted = prob.mean_cost(rule, good)
    message = f"{_knob(rule, good)} costs {fitted:.5g} ≤ the target {target:.5g} (argmax: {at_quality:.5g})"
    return Fit(rule, good, fitted, "met", message)


def share_is_monotone(costs: np.ndarray, model: int) -> bool:
    """True when ``model`` is strictly the dearest or strictly the cheapest candidate: only then is its share
    monotone in λ (and τ) for every score matrix."""
    c = np.asarray(costs, dtype=np.float64)
    others = np.delete(c, model)
    return bool(others.size == 0 or c[model] > others.max() or c[model] < others.min())


def _scan_grid(prob: _Problem, rule: Rule) -> np.ndarray:
    lo, hi = prob.knob_range(rule)
    if hi <= lo:
        return np.array([lo])
    if rule == "threshold":
        return np.linspace(lo, hi, SCAN_POINTS)
    # λ breakpoints (p_a − p_b)/(c_a − c_b) span many orders of magnitude: a geometric grid, plus λ = 0.
    return np.concatenate([[0.0], np.geomspace(hi * 1e-9, hi, SCAN_POINTS - 1)])


def fit_share(
    scores: np.ndarray,
    costs: np.ndarray,
    model: int,
    target: float,
    *,
    rule: Rule = "penalty",
    candidates: list[str] | None = None,
) -> Fit:
    """The setting whose share of prompts routed to candidate ``model`` is closest to ``target`` (ties: nearest the
    quality-only end). A scan of :data:`SCAN_POINTS` settings, each crossing of the target refined by bisection:
    exact for a monotone share (see :func:`share_is_monotone`), the best of the scan otherwise."""
    if not 0.0 <= target <= 1.0:
        raise LookaheadError(f"the target share must be in [0, 1], got {target}")
    prob = _Problem(scores, costs)
    if not 0 <= model < len(prob.costs):
        raise LookaheadError(f"candidate index {model} is out of range for {len(prob.costs)} candidates")
    name = _names(candidates, len(prob.costs))[model]
    grid = _scan_grid(prob, rule)
    scanned = [prob.share(rule, float(x), model) for x in grid]
    evaluated = list(zip(grid.tolist(), scanned, strict=True))
    for (x0, s0), (x1, s1) in pairwise(evaluated[: len(grid)]):
        if (s0 - target) * (s1 - target) < 0:  # a crossing inside (x0, x1): bisect to the step where it happens
            a, b, sa = x0, x1, s0
            for _ in range(_MAX_ITER):
                if _converged(a, b):
                    break
                mid = 0.5 * (a + b)
                s_mid = prob.share(rule, mid, model)
                evaluated.append((mid, s_mid))
                if (s_mid - target) * (sa - target) > 0:
                    a, sa = mid, s_mid
                else:
                    b = mid
    sign = 1.0 if rule == "penalty" else -1.0  # quality end first on ties: small λ, large τ
    value, fitted = min(evaluated, key=lambda e: (abs(e[1] - target), sign * e[0]))
    low, high = min(s for _, s in evaluated), max(s for _, s in evaluated)
    monotone = share_is_monotone(prob.costs, model)
    knob = "λ" if rule == "penalty" else "τ"
    if not low <= target <= high:
        status: Status = "unreachable"
        message = (
            f"{name} gets between {low:.1%} and {high:.1%} of the fitting prompts over all {knob}, so {target:.1%} "
            f"is not reachable; the closest is {_knob(rule, value)} ({fitted:.1%})"
        )
    else:
        status = "met"
        message = f"{_knob(rule, value)} routes {fitted:.1%} of the fitting prompts to {name} (target {target:.1%})"
    if not monotone:
        message += (
            f"; the share is monotone in {knob} only for the most (or least) expensive candidate and {name} is "
            f"neither, so this is the best of a scan of {len(evaluated)} settings, not necessarily the closest possible"
        )
    return Fit(rule, value, fitted, status, message, monotone)


def split(n: int, holdout: float, seed: int, *, min_part: int = MIN_PART) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fitting, held-out) prompt indices, each sorted; ``holdout`` is the held-out fraction."""
    if not 0.0 < holdout < 1.0:
        raise LookaheadError(f"--holdout must be a fraction strictly between 0 and 1, got {holdout}")
    n_hold = round(holdout * n)
    n_fit = n - n_hold
    if min(n_fit, n_hold) < min_part:
        raise LookaheadError(
            f"{n} prompts are too few to split with --holdout {holdout}: {n_fit} to fit and {n_hold} held out, "
            f"and each part needs at least {min_part} (log more prompts or change --holdout)"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


def mean_interval(values: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> Interval:
    """The mean of ``values`` with its bootstrap 95% interval (the project's paired bootstrap against zero)."""
    v = np.asarray(values, dtype=np.float64)
    ones = np.ones_like(v)
    point, low, high = paired_bootstrap((v, ones, 1.0), (np.zeros_like(v), ones, 1.0), resamples=resamples, seed=seed)
    return Interval(point, low, high)


def heldout_report(
    scores: np.ndarray,
    costs: np.ndarray,
    fit: Fit,
    candidates: list[str],
    *,
    model: int | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """What ``fit`` reaches on prompts it was not fitted on: mean cost (and the target model's share) with bootstrap
    95% intervals, each candidate's share, and the argmax decision's cost and shares for reference."""
    prob = _Problem(scores, costs)
    chosen = prob.decide(fit.rule, fit.value)
    argmax = ARGMAX.choose(prob.scores)
    cost, argmax_cost = prob.costs[chosen], prob.costs[argmax]
    ones = np.ones_like(cost)
    saving = paired_bootstrap((argmax_cost, ones, 1.0), (cost, ones, 1.0), resamples=resamples, seed=seed)
    report: dict[str, Any] = {
        "n": len(chosen),
        "mean_cost": mean_interval(cost, resamples=resamples, seed=seed).to_json(),
        "argmax_cost": mean_interval(argmax_cost, resamples=resamples, seed=seed).to_json(),
        "saving_vs_argmax": Interval(*saving).to_json(),
        "shares": {name: float((chosen == j).mean()) for j, name in enumerate(candidates)},
        "argmax_shares": {name: float((argmax == j).mean()) for j, name in enumerate(candidates)},
    }
    if model is not None:
        hit = (chosen == model).astype(np.float64)
        report["share"] = {"model": candidates[model], **mean_interval(hit, resamples=resamples, seed=seed).to_json()}
    return report
