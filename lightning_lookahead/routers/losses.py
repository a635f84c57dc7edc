"""Routing losses on logits ``z`` (B, N) and raw scores (B, N) (METHOD §6).

Every loss first normalises each prompt's scores with the configured method, so the same raw scores give the same
targets here, in the torchmetrics and in the offline evaluation (they all use :func:`normalize_scores`).
Losses are computed in float32 so that fp16 autocast cannot underflow the targets or the log-softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from lightning_lookahead.errors import LookaheadError, unknown_name

RoutingLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Canonical loss names, in documentation order.
LOSS_NAMES: tuple[str, ...] = ("bce", "ce", "mse", "forward_kl", "reverse_kl")

#: Options every loss accepts (config passes them all; a loss ignores those it does not use).
_DEFAULTS: dict[str, Any] = {"threshold": 0.8, "temperature": 0.1, "score_norm": "min-max"}


def _normalize(scores: torch.Tensor, method: str) -> torch.Tensor:
    # Imported here so this module stays importable while the metrics package is being built in parallel.
    from lightning_lookahead.metrics.normalize import normalize_scores

    return normalize_scores(scores.detach().float(), method)  # type: ignore[arg-type]


def bce_targets(normalized: torch.Tensor, threshold: float) -> torch.Tensor:
    """Multi-label targets ``y_j = 1[s̃_j ≥ τ·max_k s̃_k]``; soft targets ``s̃`` when ``τ ≤ 0``.

    The cut is ``min(τ·max, max)``, which equals the spec's ``τ·max`` whenever ``max ≥ 0`` (min-max, softmax and
    standardisation always give that); it only differs for ``score_norm="none"`` with a negative best score, where
    ``τ·max`` would exceed the max and leave the best candidate negative. All-equal rows get all ones (METHOD §13.7).
    """
    if threshold <= 0:
        return normalized
    best = normalized.amax(dim=-1, keepdim=True)
    cut = torch.minimum(threshold * best, best)
    return (normalized >= cut).to(normalized.dtype)


def _check_shapes(logits: torch.Tensor, scores: torch.Tensor) -> None:
    if logits.ndim != 2 or logits.shape != scores.shape:
        raise LookaheadError(
            f"routing loss expects logits and scores of the same shape (B, N), got {tuple(logits.shape)} and "
            f"{tuple(scores.shape)}"
        )


def routing_loss(name: str, **opts: Any) -> RoutingLoss:
    """Build ``loss(logits, raw_scores) -> scalar`` for ``name`` ∈ :data:`LOSS_NAMES`.

    Options (all losses accept all of them, so one config block serves every loss):
    ``threshold`` τ for ``bce`` (default 0.8; ``τ ≤ 0`` → soft targets), ``temperature`` T for the KL losses
    (default 0.1), ``score_norm`` ∈ {min-max, none, softmax, standardization} (default min-max).
    Names are matched case-insensitively with ``-``/``_`` ignored, so ``ForwardKL`` and ``forward-kl`` both work.
    """
    unknown = sorted(set(opts) - set(_DEFAULTS))
    if unknown:
        raise LookaheadError(f"unknown routing-loss option(s) {unknown}; valid: {sorted(_DEFAULTS)}")
    cfg = {**_DEFAULTS, **opts}
    threshold = float(cfg["threshold"])
    temperature = float(cfg["temperature"])
    norm = str(cfg["score_norm"])
    if threshold > 1:
        raise LookaheadError(f"bce threshold must be ≤ 1 (≤ 0 for soft targets), got {threshold}")
    if temperature <= 0:
        raise LookaheadError(f"KL temperature must be > 0, got {temperature}")

    key = name.lower().replace("-", "").replace("_", "")
    canonical = {n.replace("_", ""): n for n in LOSS_NAMES}.get(key)
    if canonical is None:
        raise unknown_name("routing loss", name, LOSS_NAMES)

    def prepared(logits: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_shapes(logits, scores)
        return logits.float(), _normalize(scores.to(logits.device), norm)

    def bce(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = prepared(logits, scores)
        return F.binary_cross_entropy_with_logits(z, bce_targets(s, threshold))

    def ce(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = prepared(logits, scores)
        return F.cross_entropy(z, s.argmax(dim=-1))  # torch.argmax returns the first maximum on ties

    def mse(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = prepared(logits, scores)
        return F.mse_loss(z, s)

    def forward_kl(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = prepared(logits, scores)
        log_p = F.log_softmax(s / temperature, dim=-1)
        log_q = F.log_softmax(z, dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum() / z.shape[0]

    def reverse_kl(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = prepared(logits, scores)
        log_p = F.log_softmax(s / temperature, dim=-1)
        log_q = F.log_softmax(z, dim=-1)
        return (log_q.exp() * (log_q - log_p)).sum() / z.shape[0]

    losses: dict[str, RoutingLoss] = {
        "bce": bce,
        "ce": ce,
        "mse": mse,
        "forward_kl": forward_kl,
        "reverse_kl": reverse_kl,
    }
    return losses[canonical]
