"""Cost–quality curves: sweep a decision rule's knob (λ or τ) over a router's score matrices and measure each setting.

Quality is the mean over the benchmarks of each benchmark's headline metric (AlpacaEval raw win rate, Arena-Hard score,
MT-Bench ×10, accuracy / pass@1), i.e. the "Avg" column of `lookahead evaluate`; cost is the mean over the benchmarks
of the mean realised cost per prompt, in USD per 1,000 prompts, so both axes weight every benchmark equally.

Speed: every benchmark metric is ``scale · Σ num_i / Σ den_i`` over per-item terms (metrics/bootstrap.py), so the
terms are computed once per candidate and any choice vector is scored by indexing them, with no metric call per point.

Rules see the *expected* cost (prompt length and each candidate's mean response length: what is known before
generating), points are placed at the *realised* cost (each chosen response's own length).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

import numpy as np

from lightning_lookahead.costs.prices import PriceTable
from lightning_lookahead.costs.rules import ARGMAX, DecisionRule, ScoreKind, top_choice_probabilities
from lightning_lookahead.costs.token_counts import TokenCounter, cost_matrix, expected_cost_matrix
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.bootstrap import item_terms
from lightning_lookahead.routers.base import FixedRouter, OracleRouter, RandomRouter, Router

COST_UNIT = "USD per 1,000 prompts"
#: Share of the best single model's quality whose cheapest cost is reported.
TARGET_SHARE = 0.95
#: Settings of λ and of τ tried per router (quantiles of where decisions change, plus the extremes).
GRID_SIZE = 48
Role = Literal["router", "oracle", "fixed", "random"]


@dataclass(frozen=True)
class BenchmarkTerms:
    """One benchmark's per-(item, candidate) metric terms and costs."""

    num: np.ndarray
    den: np.ndarray
    scale: float
    cost: np.ndarray
    expected_cost: np.ndarray

    def quality(self, choices: np.ndarray) -> float:
        rows = np.arange(len(choices))
        return float(self.scale * self.num[rows, choices].sum() / max(self.den[rows, choices].sum(), 1e-12))

    def mean_cost(self, choices: np.ndarray) -> float:
        return float(self.cost[np.arange(len(choices)), choices].mean())


@dataclass(frozen=True)
class CostProblem:
    """Everything a sweep needs besides the routers: benchmarks, candidates, per-item terms and costs."""

    examples: Mapping[str, Sequence[RoutingExample]]
    candidates: tuple[str, ...]
    terms: Mapping[str, BenchmarkTerms]
    price_source: str
    token_source: str

    def measure(self, choices: Mapping[str, np.ndarray]) -> tuple[float, float, dict[str, float]]:
        """(mean cost, mean quality, quality per benchmark) of one choice vector per benchmark."""
        per_bench = {b: t.quality(choices[b]) for b, t in self.terms.items()}
        cost = float(np.mean([t.mean_cost(choices[b]) for b, t in self.terms.items()]))
        return cost, float(np.mean(list(per_bench.values()))), per_bench


def build_problem(
    benchmarks: Mapping[str, Sequence[RoutingExample]],
    candidates: Sequence[str],
    prices: PriceTable,
    counter: TokenCounter | None = None,
) -> CostProblem:
    """Per-candidate metric terms and cost matrices for every benchmark (the slow part: token counting, cached)."""
    if not benchmarks:
        raise LookaheadError("cost sweep: no benchmarks to sweep")
    prices.arrays(candidates)  # fail early, naming the price file and the first unpriced candidate
    counter = counter or TokenCounter()
    terms: dict[str, BenchmarkTerms] = {}
    sources = set()
    for name, examples in benchmarks.items():
        n = len(examples)
        per_candidate = [item_terms(name, examples, np.full(n, j)) for j in range(len(candidates))]
        counts = counter.counts(examples)
        sources.add(counts.source)
        terms[name] = BenchmarkTerms(
            num=np.stack([t[0] for t in per_candidate], axis=1),
            den=np.stack([t[1] for t in per_candidate], axis=1),
            scale=per_candidate[0][2],
            cost=cost_matrix(counts, prices, candidates),
            expected_cost=expected_cost_matrix(counts, prices, candidates),
        )
    token_source = sources.pop() if len(sources) == 1 else "; ".join(sorted(sources))
    return CostProblem(dict(benchmarks), tuple(candidates), terms, prices.source, token_source)


# --------------------------------------------------------------------------------------------------- points


@dataclass(frozen=True)
class Point:
    """One setting of one rule for one router: where it lands on the cost–quality plane."""

    router: str
    rule: str
    param: float | None
    cost: float
    quality: float
    per_benchmark: dict[str, float] = field(default_factory=dict)


@dataclass
class Curve:
    """A router's points, its Pareto frontier and the summary figures computed from that frontier."""

    router: str
    role: Role
    score_kind: str
    points: list[Point]
    frontier: list[Point] = field(default_factory=list)
    area: float | None = None
    auc: float | None = None
    cost_to_target: float | None = None

    @property
    def argmax(self) -> Point:
        """The paper's quality-only decision (for fixed routers: the model itself)."""
        return next(p for p in self.points if p.rule == "argmax")


@dataclass
class SweepResult:
    """All curves plus the reference values the summary figures use."""

    curves: list[Curve]
    candidates: tuple[str, ...]
    benchmarks: tuple[str, ...]
    cost_range: tuple[float, float]
    best_single: str
    best_single_quality: float
    target_quality: float
    price_source: str
    token_source: str
    seconds: float

    def curve(self, router: str) -> Curve:
        return next(c for c in self.curves if c.router == router)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        for c, curve in zip(payload["curves"], self.curves, strict=True):
            c["frontier"] = [self._index(curve, p) for p in curve.frontier]
        payload["cost_unit"] = COST_UNIT
        payload["target_share"] = TARGET_SHARE
        return payload

    @staticmethod
    def _index(curve: Curve, point: Point) -> int:
        """Frontier points are stored as indices into ``points`` to keep the JSON small."""
        return next(i for i, p in enumerate(curve.points) if p is point)


def probabilities(scores: np.ndarray, kind: str) -> np.ndarray:
    """Top-choice probabilities for the rules; true scores use the soft min-max targets so the oracle's τ and λ
    trade quality for cost gradually rather than in one step."""
    threshold = 0.0 if kind == "true_scores" else 0.8
    return top_choice_probabilities(scores, cast(ScoreKind, kind), threshold=threshold)


def lambda_grid(probs: Mapping[str, np.ndarray], costs: Mapping[str, np.ndarray], size: int = GRID_SIZE) -> np.ndarray:
    """λ values where penalty decisions change, thinned to ``size`` quantiles, plus 0 and past the largest.

    For candidates j cheaper and less likely than k, ``p_j − λc_j > p_k − λc_k`` once λ > (p_k − p_j)/(c_k − c_j).
    """
    found = []
    for b, p in probs.items():
        c = costs[b]
        dp = p[:, None, :] - p[:, :, None]  # p_k − p_j
        dc = c[:, None, :] - c[:, :, None]  # c_k − c_j
        mask = (dc > 0) & (dp > 0)
        found.append(dp[mask] / dc[mask])
    pooled = np.concatenate(found) if found else np.zeros(0)
    if pooled.size == 0:
        return np.zeros(1)
    grid = np.quantile(pooled, np.linspace(0.0, 1.0, size))
    return np.unique(np.concatenate([[0.0], grid * (1 + 1e-9), [pooled.max() * 2.0]]))


def tau_grid(probs: Mapping[str, np.ndarray], size: int = GRID_SIZE) -> np.ndarray:
    """τ values spread over the probabilities that occur, plus 0 and 1."""
    pooled = np.concatenate([p.ravel() for p in probs.values()])
    return np.unique(np.concatenate([[0.0, 1.0], np.quantile(pooled, np.linspace(0.0, 1.0, size))]))


def route_points(
    name: str, matrices: Mapping[str, np.ndarray], kind: str, problem: CostProblem, *, curve: bool, grid: int
) -> list[Point]:
    """The argmax point, and when ``curve`` the penalty-rule points over λ and the threshold-rule points over τ."""

    def point(rule: str, param: float | None, choices: Mapping[str, np.ndarray]) -> Point:
        cost, quality, per_bench = problem.measure(choices)
        return Point(name, rule, param, cost, quality, per_bench)

    points = [point("argmax", None, {b: ARGMAX.choose(m) for b, m in matrices.items()})]
    if not curve:
        return points
    probs = {b: probabilities(m, kind) for b, m in matrices.items()}
    expected = {b: problem.terms[b].expected_cost for b in matrices}
    for lam in lambda_grid(probs, expected, grid):
        choices = {
            b: DecisionRule("penalty", lam=lam).choose(m, expected[b], probabilities=probs[b])
            for b, m in matrices.items()
        }
        points.append(point("penalty", float(lam), choices))
    for tau in tau_grid(probs, grid):
        choices = {
            b: DecisionRule("threshold", tau=tau).choose(m, expected[b], probabilities=probs[b])
            for b, m in matrices.items()
        }
        points.append(point("threshold", float(tau), choices))
    return points


# --------------------------------------------------------------------------------------------------- summaries


def pareto_frontier(points: Sequence[Point]) -> list[Point]:
    """Points no other point beats on both axes, by increasing cost (and so increasing quality).

    Qualities within 1e-9 count as equal, so the same decisions summed in another order do not look like a gain.
    """
    frontier: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.quality)):
        if not frontier or p.quality > frontier[-1].quality + 1e-9:
            frontier.append(p)
    return frontier


def step_area(frontier: Sequence[Point], low: float, high: float) -> float:
    """∫ from low to high of the best quality affordable at budget x (a step function; 0 below the cheapest point).

    A step rather than a trapezoid: between two settings nothing is claimed beyond the cheaper one.
    """
    area = 0.0
    for k, p in enumerate(frontier):
        start = max(p.cost, low)
        end = min(frontier[k + 1].cost if k + 1 < len(frontier) else np.inf, high)
        if end > start:
            area += p.quality * (end - start)
    return area


def cost_to_reach(points: Sequence[Point], target: float) -> float | None:
    """The cheapest point with quality ≥ target; None when no setting reaches it."""
    costs = [p.cost for p in points if p.quality >= target - 1e-9]
    return min(costs) if costs else None


def _role(router: Router) -> Role:
    router = getattr(router, "wrapped", router)
    if isinstance(router, OracleRouter):
        return "oracle"
    if isinstance(router, FixedRouter):
        return "fixed"
    if isinstance(router, RandomRouter):
        return "random"
    return "router"


def sweep(routers: Sequence[Router], problem: CostProblem, *, grid: int = GRID_SIZE) -> SweepResult:
    """Curves for every router, with oracle, random:0 and every fixed model added when not given.

    Fixed and random routers are single points (their scores carry no per-prompt preference to trade against
    cost); every other router gets argmax, penalty and threshold points. AUC = step area of a router's frontier
    over [cheapest, dearest] fixed model, divided by the oracle's area on the same range.
    """
    start = time.perf_counter()
    given = {r.name for r in routers}
    extra: list[Router] = [OracleRouter(), RandomRouter(0)] + [FixedRouter(m) for m in problem.candidates]
    all_routers = list(routers) + [r for r in extra if r.name not in given]
    curves = []
    for router in all_routers:
        matrices = {}
        for b, examples in problem.examples.items():
            matrix = np.asarray(router.score_matrix(examples, problem.candidates), dtype=np.float64)
            if matrix.shape != (len(examples), len(problem.candidates)):
                raise LookaheadError(
                    f"router {router.name} returned scores of shape {matrix.shape} for {b}, "
                    f"expected {(len(examples), len(problem.candidates))}"
                )
            matrices[b] = matrix
        role = _role(router)
        kind = getattr(router, "score_kind", "logits")
        points = route_points(router.name, matrices, kind, problem, curve=role in ("router", "oracle"), grid=grid)
        curves.append(Curve(router.name, role, kind, points))

    fixed = {c.router: c.argmax for c in curves if c.role == "fixed" and c.router.startswith("fixed:")}
    singles = {f"fixed:{m}": fixed[f"fixed:{m}"] for m in problem.candidates if f"fixed:{m}" in fixed}
    best = max(singles.values(), key=lambda p: p.quality)
    low, high = min(p.cost for p in singles.values()), max(p.cost for p in singles.values())
    target = TARGET_SHARE * best.quality
    oracle = next(c for c in curves if c.router == "oracle")
    for c in curves:
        c.frontier = pareto_frontier(c.points)
        c.area = step_area(c.frontier, low, high) if high > low else None
        c.cost_to_target = cost_to_reach(c.points, target)
    oracle_area = oracle.area
    for c in curves:
        c.auc = c.area / oracle_area if c.area is not None and oracle_area else None
    return SweepResult(
        curves=curves,
        candidates=problem.candidates,
        benchmarks=tuple(problem.examples),
        cost_range=(low, high),
        best_single=best.router,
        best_single_quality=best.quality,
        target_quality=target,
        price_source=problem.price_source,
        token_source=problem.token_source,
        seconds=time.perf_counter() - start,
    )
