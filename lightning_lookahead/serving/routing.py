"""What a request's ``model`` means: a decision rule over the router's scores, or a candidate asked for by name.

``router`` is the argmax, ``router:λ=<x>`` the penalty rule over the server's own costs, ``router:<name>`` a named
calibration from the run's ``calibrations.json`` (its own rule, λ or τ, and the costs it was fitted with), and a
candidate's name skips routing. Requests whose rules are equal share routing calls (the batcher groups by rule).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_lookahead.costs.request_costs import CandidateCosts
from lightning_lookahead.costs.rules import ARGMAX, DecisionRule
from lightning_lookahead.errors import LookaheadError, closest
from lightning_lookahead.inference.calibrations import Calibration
from lightning_lookahead.serving.errors import ApiError
from lightning_lookahead.serving.schemas import ROUTER_MODEL, is_router_model, parse_router_model

log = logging.getLogger("lightning_lookahead.serving")

#: ``route`` label of a request whose model was not resolved (rejected before, or an unknown/invalid name).
UNROUTED = "unrouted"
UNKNOWN = "unknown"
DIRECT = "direct"
COST_AWARE = "router:lambda"


@dataclass(frozen=True)
class Target:
    """A resolved ``model``: a rule to route with, or the candidate to forward to directly."""

    #: Bounded label for metrics and logs: router, router:lambda, router:<calibration>, direct.
    route: str
    rule: DecisionRule | None = None
    candidate: str | None = None


class ModelCatalog:
    """The model names one server answers (``/v1/models``) and the rule or candidate each stands for."""

    def __init__(
        self,
        candidates: Sequence[str],
        costs: np.ndarray | None,
        calibrations: Mapping[str, Calibration],
        allow_direct: bool = True,
        priced: CandidateCosts | None = None,
    ) -> None:
        self.candidates = list(candidates)
        self.costs = None if costs is None else tuple(float(c) for c in costs)
        if priced is None:  # every candidate has a cost, or none has
            layers = [] if costs is None else [(dict(zip(self.candidates, self.costs or (), strict=True)), "costs")]
            priced = CandidateCosts.layered(self.candidates, layers, default_reason="no costs configured")
        #: Each candidate's cost and where it came from (for the start-up line and the 400's message).
        self.priced = priced
        self.calibrations = dict(calibrations)
        self.allow_direct = allow_direct
        self._rules = {name: cal.decision for name, cal in self.calibrations.items()}

    def ids(self) -> list[str]:
        """Every listable model id: router, router:<calibration>..., then the candidates if they may be asked for."""
        named = [f"{ROUTER_MODEL}:{name}" for name in self.calibrations]
        return [ROUTER_MODEL, *named, *(self.candidates if self.allow_direct else [])]

    def describe(self, model_id: str) -> dict[str, Any] | None:
        """Extra ``/v1/models`` detail of a calibrated setting (rule, λ/τ, target, what it achieved)."""
        name = model_id.partition(":")[2]
        cal = self.calibrations.get(name) if model_id.startswith(ROUTER_MODEL + ":") else None
        if cal is None:
            return None
        rule = cal.decision
        value = {"lam": rule.lam} if rule.rule == "penalty" else {"tau": rule.tau}
        return {"rule": rule.rule, **value, "target": cal.target, "achieved": cal.achieved, "created": cal.created}

    def resolve(self, model: str) -> Target:
        """The target of ``model``, or an ApiError (404 unknown name, 400 malformed or needing costs)."""
        if not is_router_model(model):
            if self.allow_direct and model in self.candidates:
                return Target(DIRECT, candidate=model)
            raise self._not_found(model)
        try:
            parsed = parse_router_model(model)
        except LookaheadError as exc:
            raise ApiError(400, str(exc), code="invalid_model") from None
        if parsed is None:
            return Target(ROUTER_MODEL, ARGMAX)
        if isinstance(parsed, str):
            rule = self._rules.get(parsed)
            if rule is None:
                hint = closest(parsed, self._rules)
                known = ", ".join(f"{ROUTER_MODEL}:{n}" for n in self._rules) or "none"
                did_you_mean = f"; did you mean {hint!r}?" if hint else ""
                message = f"no calibration named {parsed!r}{did_you_mean} (this server has: {known})"
                raise ApiError(404, message, code="model_not_found")
            return Target(f"{ROUTER_MODEL}:{parsed}", rule)
        if self.costs is None:
            raise ApiError(
                400,
                f"model {model!r} needs a cost for every candidate, but {self.priced.missing_reason()} "
                f"{'has' if len(self.priced.missing) == 1 else 'have'} none; use model {ROUTER_MODEL!r} (or a "
                "candidate's name), or give each a `cost` in the backends file or a price in `--prices FILE`",
                code="costs_not_configured",
            )
        return Target(COST_AWARE, DecisionRule("penalty", lam=parsed, costs=self.costs))

    def _not_found(self, model: str) -> ApiError:
        valid = [ROUTER_MODEL, "router:λ=<value>", *self.ids()[1:]]
        return ApiError(404, f"model {model!r} does not exist (valid: {', '.join(valid)})", code="model_not_found")

    def log_costs(self) -> None:
        """Log, once at start-up, the candidates without a cost (one line), and each calibration whose recorded costs
        differ from the server's own costs.

        A candidate without a cost only keeps ``router:λ=...`` from working (400 ``costs_not_configured``):
        ``router``, the calibrations (they carry their own costs) and the candidates' names route as usual. A
        calibration keeps its own costs (its λ or τ was fitted for them); the warning says the target it reached may
        not be what the server's prices would now give.
        """
        missing = self.priced.missing
        if missing:
            log.warning(
                "%d of %d candidates have no cost: %s; model %r, router:<calibration> and the candidates' names route "
                "as usual, router:λ=... answers 400 costs_not_configured (give each a `cost` in the backends file or "
                "a price in --prices FILE)",
                len(missing), len(self.candidates), self.priced.missing_reason(), ROUTER_MODEL,
            )  # fmt: skip
        if self.costs is None:
            return
        for name, cal in self.calibrations.items():
            if not np.allclose(cal.costs, self.costs, rtol=1e-6, atol=1e-12):
                log.warning(
                    "calibration %r was fitted with costs %s (USD per 1,000 requests) but this server's costs are %s; "
                    "router:%s uses the calibration's own costs",
                    name, _fmt(cal.costs), _fmt(self.costs), name,
                )  # fmt: skip


def _fmt(costs: Sequence[float]) -> str:
    return "[" + ", ".join(f"{c:.4g}" for c in costs) + "]"
