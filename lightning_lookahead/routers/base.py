"""What a router is (:class:`Router`, :class:`FittedRouter`) and the routers that need no training: oracle, fixed
model, seeded random.

Like every router they return a score matrix (prompts x candidates); the decision rule and the metrics downstream
never know which router produced it. ``--router`` specs are parsed in :mod:`lightning_lookahead.routers.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError, unknown_name


class Router:
    """Anything that maps benchmark items to a (len(examples), len(candidates)) score matrix.

    ``score_kind`` tells cost-aware decision rules how to read the scores (costs/rules.py): ``logits`` (learned
    routers, sigmoid → probability), ``probabilities`` (already in [0, 1]) or ``true_scores`` (the oracle).
    """

    name: str
    score_kind: ClassVar[str] = "logits"

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


class FittedRouter(Router):
    """A router fitted on training examples before it scores (kNN, clusters, the ``domain`` reference).

    Subclasses set ``n_train`` and ``fit_seconds`` in ``fit``; ``fit_source`` says where the training prompts came
    from (family, protocol, fold) and is reported with the results.
    """

    def __init__(self) -> None:
        self.fit_seconds: float | None = None
        self.n_train = 0
        self.fit_source: dict[str, Any] = {}

    def fit(self, examples: Sequence[RoutingExample]) -> FittedRouter:
        raise NotImplementedError

    def fit_info(self) -> dict[str, Any]:
        """What the results JSON records about the fit."""
        return {**self.fit_source, "n_train": self.n_train, "fit_seconds": self.fit_seconds}

    def fit_summary(self) -> str:
        """One line for logs: ``knn:10: fitted on 3335 training prompts (family code, protocol paper) in 2.1 s``."""
        where = ", ".join(f"{key} {value}" for key, value in self.fit_source.items()) or "given"
        return f"{self.name}: fitted on {self.n_train} training prompts ({where}) in {self.fit_seconds:.1f} s"

    def _check_fitted(self) -> None:
        if self.fit_seconds is None:
            raise LookaheadError(f"router {self.name} is not fitted; call fit(training examples) first")


@dataclass
class StoredScoresRouter(Router):
    """Score matrices computed earlier (a run's ``scores.npz``), looked up by benchmark: studies re-evaluate saved
    runs through the one evaluation path without loading a model."""

    name: str
    scores: dict[str, np.ndarray]

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        return self.scores[examples[0].benchmark]


@dataclass
class OracleRouter(Router):
    """The true test scores: an upper bound that no deployable router reaches."""

    name: str = "oracle"
    score_kind: ClassVar[str] = "true_scores"

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        return np.asarray([ex.scores for ex in examples], dtype=np.float64).reshape(len(examples), len(candidates))


@dataclass
class FixedRouter(Router):
    """Always the same candidate (one-hot scores)."""

    model: str
    name: str = ""
    score_kind: ClassVar[str] = "probabilities"

    def __post_init__(self) -> None:
        self.name = self.name or f"fixed:{self.model}"

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        if self.model not in candidates:
            raise unknown_name("model for fixed router", self.model, candidates)
        matrix = np.zeros((len(examples), len(candidates)))
        matrix[:, list(candidates).index(self.model)] = 1.0
        return matrix


@dataclass
class RandomRouter(Router):
    """Uniform scores from ``RandomState(seed).rand``, restarted per benchmark so results are reproducible."""

    seed: int = 0
    name: str = ""
    score_kind: ClassVar[str] = "probabilities"

    def __post_init__(self) -> None:
        self.name = self.name or f"random:{self.seed}"

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        return np.random.RandomState(self.seed).rand(len(examples), len(candidates))
