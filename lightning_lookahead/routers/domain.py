"""The ``domain`` reference: each benchmark's prompts go to the candidate best on that domain's training items.

It reads the benchmark label of each prompt, which no deployable router sees, so it is a *reference*, not a router:
a learned router that does not beat it has only learned to tell the domains apart (PAPER.md: on the paper's own
numbers such a rule scores about 38 Avg µn). A benchmark's training items are the training prompts of the same
benchmark under ``kfold`` and the family's training set under ``paper`` (chat → UltraFeedback, math → OpenMath,
code → Self-OSS). "Best" is the highest mean per-prompt min-max normalised score, the quantity the trained routers'
labels and validation reward are built from (for 0/1 scores it ranks candidates exactly as accuracy does).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from lightning_lookahead.data.families import FAMILY_BENCHMARKS, FAMILY_TRAIN_SETS
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.base import FittedRouter

#: Single-domain families: which training set stands for each benchmark under the paper protocol.
_TRAIN_SET_OF: dict[str, str] = {
    bench: FAMILY_TRAIN_SETS[family][0] for family in ("chat", "math", "code") for bench in FAMILY_BENCHMARKS[family]
}


def domain_of(benchmark: str, training_benchmarks: set[str]) -> str:
    """The training items' ``benchmark`` label that stands for ``benchmark``: itself (kfold) or its training set."""
    if benchmark in training_benchmarks:
        return benchmark
    return _TRAIN_SET_OF.get(benchmark, benchmark)


class DomainRouter(FittedRouter):
    """One-hot scores for the best candidate of each prompt's domain (a reference that knows the benchmark)."""

    name = "domain"
    score_kind = "probabilities"

    def __init__(self, *, fallback: bool = False) -> None:
        """``fallback``: a benchmark without training items gets the best candidate over all training prompts
        (a training run's reference on a small subset); otherwise scoring it is an error (the CLI)."""
        super().__init__()
        self.fallback = fallback
        self.best: dict[str, int] = {}
        self.means: dict[str, list[float]] = {}
        self.best_overall = 0

    def fit(self, examples: Sequence[RoutingExample]) -> DomainRouter:
        from lightning_lookahead.routers.embedding_baselines import normalized_scores

        start = time.perf_counter()
        if not examples:
            raise LookaheadError("--router domain: no training prompts to fit on")
        by_domain: dict[str, list[RoutingExample]] = {}
        for ex in examples:
            by_domain.setdefault(ex.benchmark, []).append(ex)
        for domain, items in by_domain.items():
            means = normalized_scores(items).mean(axis=0)
            self.means[domain] = [float(m) for m in means]
            self.best[domain] = int(np.argmax(means))  # ties: the first candidate, as everywhere
        self.best_overall = int(np.argmax(normalized_scores(examples).mean(axis=0)))
        self.n_train = len(examples)
        self.fit_seconds = time.perf_counter() - start
        return self

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        matrix = np.zeros((len(examples), len(candidates)))
        known = set(self.best)
        for i, ex in enumerate(examples):
            domain = domain_of(ex.benchmark, known)
            if domain not in self.best and self.fallback:
                matrix[i, self.best_overall] = 1.0
                continue
            if domain not in self.best:
                raise LookaheadError(
                    f"--router domain: no training prompts for benchmark {ex.benchmark!r} (fitted on "
                    f"{', '.join(sorted(known))}); fit on a family that covers it, e.g. --fit-family all"
                )
            matrix[i, self.best[domain]] = 1.0
        return matrix

    def choices(self, candidates: Sequence[str]) -> dict[str, str]:
        """Which candidate each training domain sends its prompts to (for reports)."""
        return {domain: candidates[j] for domain, j in self.best.items()}
