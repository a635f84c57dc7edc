"""Calibrating on a prompt log: the target, the costs ``serve`` would route with, the fit and its held-out report.

``lookahead calibrate`` scores the log and hands the score matrix here; :func:`calibrate_scores` fits λ or τ on one
part of the split (``costs/calibrate.py``) and reports what it reaches on both parts, and :func:`format_report` is
the table the command prints. No torch and no files: the command loads the router and saves the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightning_lookahead.costs import calibrate
from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.errors import LookaheadError

COST_UNIT = "USD per 1,000 requests"


@dataclass(frozen=True)
class Target:
    """``--target-cost`` (``cost``) or ``--target-share MODEL=P`` (``model``, ``share``)."""

    cost: float | None = None
    model: str | None = None
    share: float | None = None

    def to_json(self) -> dict[str, Any]:
        if self.cost is not None:
            return {"cost": self.cost, "unit": COST_UNIT}
        return {"share": {"model": self.model, "p": self.share}}


def parse_target(target_cost: str | None, target_share: str | None) -> Target:
    """The target of ``--target-cost USD_PER_1000`` or ``--target-share MODEL=P`` (exactly one of them)."""
    if (target_cost is None) == (target_share is None):
        raise LookaheadError("give exactly one of --target-cost USD_PER_1000 and --target-share MODEL=P")
    if target_cost is not None:
        cost = _number(target_cost)
        if not (math.isfinite(cost) and cost >= 0):
            raise LookaheadError(
                f"--target-cost {target_cost!r}: expected a number ≥ 0 ({COST_UNIT}, the unit of route --lam)"
            )
        return Target(cost=cost)
    model, sep, value = str(target_share).rpartition("=")
    p = _number(value)
    if not sep or not model.strip() or not math.isfinite(p):
        raise LookaheadError(f"--target-share {target_share!r}: expected MODEL=P, e.g. Yi-1.5-34B-Chat=0.2")
    if not 0.0 <= p <= 1.0:
        raise LookaheadError(f"--target-share {target_share!r}: the share P must be in [0, 1], got {p}")
    return Target(model=model.strip(), share=p)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


class _KeysNotRead(Mapping[str, str]):
    """An environment in which every ``api_key_env`` is set: calibrating reads only the backends' costs."""

    def __getitem__(self, key: str) -> str:
        return "not-read-by-calibrate"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def serve_costs(
    candidates: Sequence[str],
    response_tokens: Mapping[str, float] | None,
    backends: Path | None,
    prices: Path | None,
    output_tokens: int | None,
) -> tuple[np.ndarray, str]:
    """The (C,) cost vector ``serve`` would route with, and where it came from (for the report).

    As ``serve`` resolves them: each backend's ``cost`` (``--backends FILE``), else the price table (``--prices FILE``,
    default the shipped one) where it names the candidate. Calibrating needs a cost for every candidate.
    """
    from lightning_lookahead.backends import load_backends
    from lightning_lookahead.costs.request_costs import resolve_costs

    backend_costs: dict[str, float | None] = {}
    if backends is not None:
        loaded = load_backends(backends, candidates, environ=_KeysNotRead())
        backend_costs = {name: backend.cost for name, backend in loaded.items()}
        if output_tokens is not None and all(c is not None for c in backend_costs.values()):
            raise LookaheadError(
                f"--output-tokens prices from the price table, but {backends} sets a `cost` for every backend"
            )
    costs = resolve_costs(
        list(candidates),
        backend_costs,
        response_tokens,
        prices,
        output_tokens=output_tokens,
        backends_label=str(backends or "backends.yaml"),
    )
    if costs.missing:
        lengths = "" if output_tokens is not None else ", or --output-tokens N where only a length is missing"
        where = "a `cost` on each backend in --backends FILE" if backends is None else f"a `cost` in {backends}"
        raise LookaheadError(
            f"no cost for {costs.missing_reason()}: calibrating needs a cost for every candidate; give {where}, "
            f"or --prices FILE naming them (models: {{NAME: {{input: USD, output: USD}}}} per 1M tokens){lengths}"
        )
    vector = costs.vector()
    assert vector is not None
    return vector, costs.describe()


def check_reachable(target: Target, costs: np.ndarray, candidates: Sequence[str]) -> None:
    """A cost target below the cheapest candidate cannot be met: said before any prompt is scored."""
    if target.cost is not None and target.cost < float(np.min(costs)):
        cheapest = candidates[int(np.argmin(costs))]
        raise LookaheadError(
            f"--target-cost {target.cost:g} ({COST_UNIT}) cannot be met: even routing every prompt to {cheapest} "
            f"costs {float(np.min(costs)):.5g}"
        )


@dataclass(frozen=True)
class Calibrated:
    """A fitted setting: the fit, its decision rule (with the costs), what it achieved (kept in the calibration)
    and the full report (``--json``; the calibration's own entry is added by whoever saves it)."""

    fit: calibrate.Fit
    rule: DecisionRule
    achieved: dict[str, Any]
    report: dict[str, Any]


@dataclass(frozen=True)
class LogSplit:
    """The prompt log and its seeded split into a fitting part and a held-out part (indices into the log)."""

    log: str
    fitting: np.ndarray
    heldout: np.ndarray
    holdout: float
    seed: int

    def to_json(self) -> dict[str, Any]:
        sizes = {"n_fit": len(self.fitting), "n_heldout": len(self.heldout)}
        return {"log": self.log, **sizes, "holdout": self.holdout, "seed": self.seed}


def calibrate_scores(
    scores: np.ndarray,
    costs: np.ndarray,
    costs_from: str,
    target: Target,
    rule: calibrate.Rule,
    candidates: Sequence[str],
    parts: LogSplit,
    engine: str,
) -> Calibrated:
    """Fit ``rule``'s knob to ``target`` on the fitting part of the log's scores, and report on both parts."""
    seed = parts.seed
    names = list(candidates)
    model = None if target.model is None else names.index(target.model)
    fit_scores, held_scores = scores[parts.fitting], scores[parts.heldout]
    if target.cost is not None:
        fit = calibrate.fit_cost(fit_scores, costs, target.cost, rule=rule, candidates=names)
        if fit.status == "unreachable":
            raise LookaheadError(f"--target-cost {target.cost:g} ({COST_UNIT}) cannot be met: {fit.message}")
    else:
        assert model is not None and target.share is not None
        fit = calibrate.fit_share(fit_scores, costs, model, target.share, rule=rule, candidates=names)
    vector = tuple(float(c) for c in np.asarray(costs))
    heldout = calibrate.heldout_report(held_scores, costs, fit, names, model=model, seed=seed)
    split = {**parts.to_json(), "engine": engine}
    achieved = {**split, "status": fit.status, "message": fit.message, "costs_from": costs_from, "heldout": heldout}
    report = {
        "fit": fit.to_json(),
        "split": split,
        "costs": {"unit": COST_UNIT, "from": costs_from, "per_candidate": dict(zip(names, vector, strict=True))},
        "fitting": calibrate.heldout_report(fit_scores, costs, fit, names, model=model, seed=seed),
        "heldout": heldout,
    }
    return Calibrated(fit, calibrate.knob_rule(fit.rule, fit.value, vector), achieved, report)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _money(x: float) -> str:
    return f"{x:.4f}"


def _interval(d: Mapping[str, float], fmt) -> str:
    return f"{fmt(d['value'])} [{fmt(d['low'])}, {fmt(d['high'])}]"


def format_report(report: Mapping[str, Any], target: Target) -> str:
    """The shares per candidate (argmax, fitting, held-out) and the mean cost with its held-out interval."""
    fit, held, costs = report["fitting"], report["heldout"], report["costs"]
    candidates = list(costs["per_candidate"])
    width = max(len(c) for c in [*candidates, "mean cost (USD per 1,000)"]) + 2
    lines = [
        "share of the prompts routed to each candidate: the argmax decision (held-out) and the calibrated setting",
        f"{'candidate':<{width}}{'cost/1k':>10}{'argmax':>9}{'fitting':>9}{'held-out':>10}",
    ]
    for name in candidates:
        row = [_money(costs["per_candidate"][name]), _pct(held["argmax_shares"][name])]
        row += [_pct(fit["shares"][name]), _pct(held["shares"][name])]
        lines.append(f"{name:<{width}}{row[0]:>10}{row[1]:>9}{row[2]:>9}{row[3]:>10}")
    lines += ["", f"{'':<{width}}{'fitting':>10}   held-out [95% interval]"]
    label = "mean cost (USD per 1,000)"
    lines.append(f"{label:<{width}}{_money(fit['mean_cost']['value']):>10}   {_interval(held['mean_cost'], _money)}")
    label = "argmax cost"
    argmax = _interval(held["argmax_cost"], _money)
    lines.append(f"{label:<{width}}{_money(fit['argmax_cost']['value']):>10}   {argmax}")
    if target.model is not None:
        label = f"share of {target.model}"
        lines.append(f"{label:<{width}}{_pct(fit['share']['value']):>10}   {_interval(held['share'], _pct)}")
    return "\n".join(lines)
