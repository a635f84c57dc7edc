"""Routing one shard: the same batches whichever process routes it, so any split of the work writes the same bytes.

A shard is batched the way ``TrainedRouter.route`` batches a list (``data.lengths.longest_first``), and each batch
goes through the router's own ``score_featurized`` and ``decide`` (scores, rule, probabilities and the JSON of a
decision are the router's, torch or bundle), one batch per call so a progress bar can move between batches. For a
log no longer than one shard the lines are byte for byte what ``route`` writes without ``--out``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_lookahead.costs.rules import ARGMAX, DecisionRule
from lightning_lookahead.data.lengths import longest_first
from lightning_lookahead.errors import LookaheadError

if TYPE_CHECKING:
    from lightning_lookahead.bundle.router import BundleRouter
    from lightning_lookahead.inference.router import TrainedRouter

#: Expected cost per prompt for the cost-aware rules: (router, prompts) → None (the rule's own costs, or the
#: argmax), (C,) or (len(prompts), C).
CostsFn = Callable[["TrainedRouter | BundleRouter", Sequence[str]], "np.ndarray | None"]


@dataclass(frozen=True)
class RouteSettings:
    """Everything besides the router and the input that decides a bulk run's output bytes (kept in the manifest)."""

    rule: DecisionRule = ARGMAX
    batch_size: int = 32
    engine: str = "fp32"
    #: Where the costs come from (price table digest, --output-tokens, calibration name...): compared on resume.
    cost_source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise LookaheadError(f"--batch-size must be ≥ 1, got {self.batch_size}")

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``settings`` (unchanged keys, so a run started before resumes): the rule's rule, λ and τ,
        the batching, the engine and the cost source under ``costs``."""
        rule = self.rule
        return {
            "rule": rule.rule,
            "lam": rule.lam,
            "tau": rule.tau,
            "batch_size": self.batch_size,
            "engine": self.engine,
            "costs": dict(self.cost_source),
        }


@dataclass(frozen=True)
class Routing:
    """What one process routes with: its router (loaded once, on its device), the settings and the costs."""

    router: TrainedRouter | BundleRouter
    settings: RouteSettings
    costs: CostsFn

    def shard(self, prompts: Sequence[str], first_index: int, on_batch: Callable[[int], None] = lambda n: None) -> str:
        return route_shard(self.router, prompts, first_index, self.settings, self.costs, on_batch)


def route_shard(
    router: TrainedRouter | BundleRouter,
    prompts: Sequence[str],
    first_index: int,
    settings: RouteSettings,
    costs_fn: CostsFn,
    on_batch: Callable[[int], None] = lambda n: None,
) -> str:
    """The JSON lines of one shard (``prompt_index`` from ``first_index``), in input order, newline-terminated.

    Each prompt is featurised once: the features give the batch order and are what each batch is scored from.
    """
    costs = costs_fn(router, prompts)
    costs = None if costs is None else np.asarray(costs)
    features = router.featurize_prompts(prompts)
    order = longest_first(features)
    decisions: list[Any] = [None] * len(prompts)
    size = settings.batch_size
    for start in range(0, len(order), size):
        index = order[start : start + size]
        batch_costs = costs[index] if costs is not None and costs.ndim == 2 else costs
        scores = router.score_featurized([features[i] for i in index], batch_size=size)
        chosen = router.decide(scores, rule=settings.rule, costs=batch_costs)
        for i, decision in zip(index, chosen, strict=True):
            decisions[i] = decision
        on_batch(len(index))
    lines = (
        json.dumps({"prompt_index": first_index + i, **d.to_json()}, ensure_ascii=False) + "\n"
        for i, d in enumerate(decisions)
    )
    return "".join(lines)
