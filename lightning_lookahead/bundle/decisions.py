"""One prompt's routing decision, shared by the torch router and the bundle (no torch here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_lookahead.costs.rules import ARGMAX, DecisionRule, top_choice_probabilities
from lightning_lookahead.errors import LookaheadError


@dataclass(frozen=True)
class RouteDecision:
    """One prompt's routing decision with every candidate's raw score and top-choice probability."""

    model: str
    index: int
    scores: dict[str, float]
    probabilities: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "index": self.index,
            "scores": dict(self.scores),
            "probabilities": dict(self.probabilities),
        }


def finite(value: Any) -> float:
    """``value`` as a float, refusing NaN and infinities (a corrupt model's symptom)."""
    x = float(value)
    if not math.isfinite(x):
        raise LookaheadError(f"the router produced a non-finite score ({x}); the weights may be corrupt")
    return x


def decide(
    candidates: Sequence[str], scores: np.ndarray, *, rule: DecisionRule = ARGMAX, costs: np.ndarray | None = None
) -> list[RouteDecision]:
    """Scores (n, C) → one :class:`RouteDecision` per row by ``rule`` (``costs``: (C,) or (n, C), replacing the
    rule's own)."""
    given = rule.costs if costs is None else costs
    if given is not None and np.asarray(given).shape[-1:] != (len(candidates),):
        raise LookaheadError(
            f"costs must have one entry per candidate ({len(candidates)}), got shape {np.asarray(given).shape}"
        )
    chosen = rule.choose(scores, costs)
    probs = top_choice_probabilities(scores)
    return [
        RouteDecision(
            model=candidates[int(j)],
            index=int(j),
            scores={c: finite(s) for c, s in zip(candidates, row, strict=True)},
            probabilities={c: finite(p) for c, p in zip(candidates, prob, strict=True)},
        )
        for j, row, prob in zip(chosen, scores, probs, strict=True)
    ]
