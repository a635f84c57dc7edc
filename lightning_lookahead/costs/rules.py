"""Decision rules that turn a router's score matrix (and, optionally, candidate costs) into one choice per prompt.

Every rule reads the same (prompts × candidates) matrix every router produces (docs/architecture.md), so cost-awareness
is a property of the decision, not of the router:

- ``argmax``: the paper's quality-only rule, ``argmax_j s_j`` (first index on ties).
- ``penalty``: ``argmax_j p_j − λ·cost_j``, with ``p`` the probability that candidate j is a top choice. Using
  probabilities rather than raw logits puts every router on the same [0, 1] scale, so one λ means the same trade-off
  for all of them. λ is in probability per cost unit; the cost sweep passes costs in USD per 1,000 prompts, so with
  λ = 1 a candidate that costs $0.01 more per 1,000 prompts must be 0.01 (one point) more likely to be a top choice.
- ``threshold``: the cheapest candidate with ``p_j ≥ τ``; the argmax when none reaches τ.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from lightning_lookahead.errors import LookaheadError

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


def choose(
    scores: np.ndarray,
    costs: np.ndarray | None = None,
    *,
    rule: Rule = "argmax",
    lam: float = 0.0,
    tau: float = 0.5,
    probabilities: np.ndarray | None = None,
) -> np.ndarray:
    """Chosen candidate index per prompt (int64, shape (n,)).

    ``costs`` is (C,) per candidate or (n, C) per prompt (e.g. real response lengths × price); ``probabilities``
    defaults to ``sigmoid(scores)``. Ties go to the lowest index, as in the paper's numpy argmax.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise LookaheadError(f"score matrix must be 2-D (prompts × candidates), got shape {s.shape}")
    if rule == "argmax":
        return np.argmax(s, axis=1).astype(np.int64)
    p = top_choice_probabilities(s) if probabilities is None else np.asarray(probabilities, dtype=np.float64)
    c = _costs(costs, s.shape)
    if rule == "penalty":
        if lam < 0:
            raise LookaheadError(f"λ must be ≥ 0, got {lam}")
        return np.argmax(p - lam * c, axis=1).astype(np.int64)
    if rule == "threshold":
        if not 0.0 <= tau <= 1.0:
            raise LookaheadError(f"τ must be in [0, 1], got {tau}")
        ok = p >= tau
        masked = np.where(ok, c, np.inf)
        cheapest = np.argmin(masked, axis=1)
        fallback = np.argmax(p, axis=1)
        return np.where(ok.any(axis=1), cheapest, fallback).astype(np.int64)
    raise LookaheadError(f"unknown decision rule {rule!r} (valid: {', '.join(RULES)})")
