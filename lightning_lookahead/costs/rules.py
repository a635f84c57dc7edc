"""Decision rules that turn a router's score matrix (and, optionally, candidate costs) into one choice per prompt.

A :class:`DecisionRule` holds one rule with its settings. Every rule reads the same (prompts × candidates) matrix
every router produces (docs/architecture.md), so cost-awareness is a property of the decision, not of the router:

- ``argmax``: the paper's quality-only rule, ``argmax_j s_j`` (first index on ties; a NaN score is never chosen).
- ``penalty``: ``argmax_j p_j − λ·cost_j``, with ``p`` the probability that candidate j is a top choice. Using
  probabilities rather than raw logits puts every router on the same [0, 1] scale, so one λ means the same trade-off
  for all of them. λ is in probability per cost unit; the cost sweep passes costs in USD per 1,000 prompts, so with
  λ = 1 a candidate that costs $0.01 more per 1,000 prompts must be 0.01 (one point) more likely to be a top choice.
- ``threshold``: the cheapest candidate with ``p_j ≥ τ``; the argmax when none reaches τ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.decision import decide

Rule = Literal["argmax", "penalty", "threshold"]
RULES: tuple[str, ...] = ("argmax", "penalty", "threshold")
#: How a score matrix turns into top-choice probabilities: BCE-trained logits → sigmoid; scores already in [0, 1]
#: (kNN/cluster predictions, one-hot fixed, uniform random) → as they are; true scores (oracle) → the §6 labels.
ScoreKind = Literal["logits", "probabilities", "true_scores"]


def top_choice_probabilities(scores: np.ndarray, kind: ScoreKind = "logits", threshold: float = 0.8) -> np.ndarray:
    """P(candidate j is a top choice) per cell: what the BCE(τ_b = 0.8) routing loss trains the logits to predict.

    For true scores this is the §6 label ``1[s̃_j ≥ threshold]`` of the per-prompt min-max normalised score s̃;
    ``threshold ≤ 0`` gives the soft targets s̃ themselves (as the loss does), which lets the oracle trade quality
    for cost gradually (the cost sweep uses that).
    """
    s = np.asarray(scores, dtype=np.float64)
    if kind == "logits":
        return 0.5 * (1.0 + np.tanh(0.5 * s))  # the sigmoid, without overflow warnings for large |s|
    if kind == "probabilities":
        return np.clip(s, 0.0, 1.0)
    if kind == "true_scores":
        low, high = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        normalised = (s - low) / span
        return normalised if threshold <= 0 else (normalised >= threshold).astype(np.float64)
    raise LookaheadError(f"unknown score kind {kind!r} (valid: logits, probabilities, true_scores)")


def _costs(costs: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if costs is None:
        raise LookaheadError("cost-aware rules need candidate costs (set costs / a price table)")
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim == 1 and c.shape == (shape[1],):
        c = np.broadcast_to(c, shape)
    if c.shape != shape:
        raise LookaheadError(f"costs have shape {c.shape}; expected {shape} or ({shape[1]},)")
    return c


@dataclass(frozen=True)
class DecisionRule:
    """How scores become one choice per prompt: ``rule`` with its λ or τ, over ``costs`` when the rule carries them.

    The one model of a routing setting: the server's ``router:…`` models, a calibration in ``calibrations.json``,
    a bulk run's settings and ``TrainedRouter.route`` all hold one. Frozen and hashable, so requests whose rules are
    equal share routing calls. ``costs`` is the (C,) expected USD per 1,000 prompts in the router's candidate order
    that the rule was set for (a calibration keeps the costs it was fitted with); None when the caller passes costs
    per call (``choose(..., costs=)``, e.g. each prompt's own length × price) or for the argmax.
    """

    rule: Rule = "argmax"
    lam: float = 0.0
    tau: float = 0.5
    costs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise LookaheadError(f"unknown decision rule {self.rule!r} (valid: {', '.join(RULES)})")
        object.__setattr__(self, "lam", float(self.lam))
        object.__setattr__(self, "tau", float(self.tau))
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise LookaheadError(f"λ must be ≥ 0, got {self.lam}")
        if not 0.0 <= self.tau <= 1.0:
            raise LookaheadError(f"τ must be in [0, 1], got {self.tau}")
        if self.costs is not None:
            costs = tuple(float(c) for c in self.costs)
            if not all(math.isfinite(c) and c >= 0 for c in costs):
                raise LookaheadError(f"costs must be finite and ≥ 0, got {list(costs)}")
            object.__setattr__(self, "costs", costs)

    @property
    def needs_costs(self) -> bool:
        return self.rule != "argmax"

    def choose(
        self, scores: np.ndarray, costs: np.ndarray | None = None, *, probabilities: np.ndarray | None = None
    ) -> np.ndarray:
        """Chosen candidate index per prompt (int64, shape (n,)).

        ``costs`` (C,) or (n, C) replaces the rule's own for this call; ``probabilities`` defaults to
        ``sigmoid(scores)``. Every argmax here is :func:`~lightning_lookahead.metrics.decision.decide` (ties to the
        lowest index, NaN never chosen, an all-NaN row an error), so a rule decides as the benchmark metrics do.
        """
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 2:
            raise LookaheadError(f"score matrix must be 2-D (prompts × candidates), got shape {s.shape}")
        if self.rule == "argmax":
            return decide(s)
        p = top_choice_probabilities(s) if probabilities is None else np.asarray(probabilities, dtype=np.float64)
        c = _costs(self.costs if costs is None else costs, s.shape)
        if self.rule == "penalty":
            return decide(p - self.lam * c)
        ok = p >= self.tau  # NaN is never ≥ τ
        cheapest = np.argmin(np.where(ok, c, np.inf), axis=1)
        return np.where(ok.any(axis=1), cheapest, decide(p)).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        """``rule``, ``lam``, ``tau`` (and ``costs`` when the rule carries them): the keys the files have always had."""
        out: dict[str, Any] = {"rule": self.rule, "lam": self.lam, "tau": self.tau}
        if self.costs is not None:
            out["costs"] = list(self.costs)
        return out


#: The paper's quality-only rule.
ARGMAX = DecisionRule()
