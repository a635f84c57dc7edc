"""Routing metrics for training and validation as torchmetrics, so they accumulate over batches and sync over DDP.

Each metric's ``update(logits, raw_scores)`` takes the router's logits (B, N) and the raw candidate scores (B, N) of
the same prompts; the decision is ``argmax`` of the logits with ties to the first index, exactly as
:func:`lightning_lookahead.metrics.benchmarks.decide`. All states are sums (``dist_reduce_fx="sum"``), so the synced
value over ranks equals the value on the concatenated data, and compute equals
:func:`lightning_lookahead.metrics.benchmarks.validation_reward` on the same prompts.

The reward and its normalised form are two metrics with identical states (rather than one dict-valued metric) so each
can be passed straight to ``LightningModule.log``; in a ``MetricCollection`` with compute groups they share one state.
States are float32/int64 sums, not float64, so the metrics also run on accelerators without float64 (e.g. MPS).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.normalize import normalize_scores


def _check_pair(logits: torch.Tensor, raw_scores: torch.Tensor | None, name: str) -> None:
    """Reject shapes that would silently broadcast."""
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise LookaheadError(f"{name}: logits must have shape (batch, candidates), got {tuple(logits.shape)}")
    if raw_scores is not None and raw_scores.shape != logits.shape:
        raise LookaheadError(
            f"{name}: raw_scores shape {tuple(raw_scores.shape)} does not match logits shape {tuple(logits.shape)}"
        )


def _choose(logits: torch.Tensor) -> torch.Tensor:
    """Chosen candidate per prompt; ``torch.argmax`` returns the first maximal index, matching numpy's tie rule."""
    return torch.argmax(logits.detach(), dim=-1)


class RoutingReward(Metric):
    """Mean per-prompt min-max-normalised score of the chosen candidate (``reward``, in [0, 1]; higher is better).

    This is the checkpoint-selection metric ``eval_reward`` of METHOD §10.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    reward_sum: torch.Tensor
    min_sum: torch.Tensor
    max_sum: torch.Tensor
    count: torch.Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("reward_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("min_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("max_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, raw_scores: torch.Tensor) -> None:
        """Add one batch of prompts."""
        _check_pair(logits, raw_scores, type(self).__name__)
        normed = normalize_scores(raw_scores.detach().float(), "min-max")
        chosen = _choose(logits)
        self.reward_sum += normed.gather(1, chosen.unsqueeze(1)).sum()
        self.min_sum += normed.amin(dim=1).sum()
        self.max_sum += normed.amax(dim=1).sum()
        self.count += logits.shape[0]

    def compute(self) -> torch.Tensor:
        """``mean_i s̃_{i,c}``."""
        return self.reward_sum / self.count


class NormalizedRoutingReward(RoutingReward):
    """Reward rescaled so that always picking the worst candidate is 0 and the oracle is 1.

    ``(reward − mean min s̃) / (mean max s̃ − mean min s̃)``; 0.0 when every prompt's candidates tie (zero
    denominator: no router can do better than any other, and NaN would break checkpoint selection).
    """

    def compute(self) -> torch.Tensor:
        """The normalised reward."""
        reward = self.reward_sum / self.count
        low = self.min_sum / self.count
        span = self.max_sum / self.count - low
        safe_span = torch.where(span > 0, span, torch.ones_like(span))
        return torch.where(span > 0, (reward - low) / safe_span, torch.zeros_like(span))


class RoutingAccuracy(Metric):
    """Share of prompts (in %, 0–100) where the chosen candidate is the first argmax of the raw scores."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    correct: torch.Tensor
    total: torch.Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, raw_scores: torch.Tensor) -> None:
        """Add one batch of prompts."""
        _check_pair(logits, raw_scores, type(self).__name__)
        best = torch.argmax(raw_scores.detach(), dim=-1)
        self.correct += (_choose(logits) == best).sum()
        self.total += logits.shape[0]

    def compute(self) -> torch.Tensor:
        """Percentage of oracle picks."""
        return 100.0 * self.correct.float() / self.total.float()


class PickShares(Metric):
    """How often each candidate is chosen, as shares in [0, 1] over the pool order; compute returns shape (N,).

    Logged per candidate to spot a router that collapses onto one model.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False
    counts: torch.Tensor
    total: torch.Tensor

    def __init__(self, candidates: Sequence[str] | int, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(candidates, int):
            candidates = tuple(f"candidate_{j}" for j in range(candidates))
        self.candidates: tuple[str, ...] = tuple(candidates)
        if not self.candidates:
            raise LookaheadError("PickShares needs at least one candidate")
        n = len(self.candidates)
        self.add_state("counts", default=torch.zeros(n, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, raw_scores: torch.Tensor | None = None) -> None:
        """Add one batch; ``raw_scores`` is accepted (and ignored) so a MetricCollection can feed every metric alike."""
        _check_pair(logits, raw_scores, type(self).__name__)
        if logits.shape[1] != len(self.candidates):
            raise LookaheadError(
                f"PickShares: logits have {logits.shape[1]} candidates, expected {len(self.candidates)}"
            )
        self.counts += torch.bincount(_choose(logits), minlength=len(self.candidates))
        self.total += logits.shape[0]

    def compute(self) -> torch.Tensor:
        """Share of picks per candidate, in pool order."""
        return self.counts.float() / self.total.float()

    def as_dict(self, shares: torch.Tensor | None = None) -> dict[str, float]:
        """``{candidate: share}``, for logging with names (computes when ``shares`` is not given)."""
        values = self.compute() if shares is None else shares
        return {name: float(v) for name, v in zip(self.candidates, values.tolist(), strict=True)}
