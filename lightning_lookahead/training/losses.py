"""Routing losses on logits ``z`` (B, N) and raw scores (B, N) (METHOD §6).

Every loss first normalises each prompt's scores with the configured method, so the same raw scores give the same
targets here, in the torchmetrics and in the offline evaluation (they all use :func:`normalize_scores`).
Losses are computed in float32 so that fp16 autocast cannot underflow the targets or the log-softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F

from lightning_lookahead.config.schema import LossConfig
from lightning_lookahead.errors import LookaheadError, unknown_name

RoutingLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Canonical loss names, in documentation order.
LOSS_NAMES: tuple[str, ...] = ("bce", "ce", "mse", "forward_kl", "reverse_kl", "routerdc")

#: Normalised scores this close below the BCE cut are labelled positive (float rounding, not a real difference).
CUT_TOLERANCE = 1e-6
#: Options every loss accepts (config passes them all; a loss ignores those it does not use).
_DEFAULTS: dict[str, Any] = {
    "threshold": 0.8,
    "temperature": 0.1,
    "score_norm": "min-max",
    "top_k": 3,
    "bottom_k": 3,
}


def _normalize(scores: torch.Tensor, method: str) -> torch.Tensor:
    # Imported here so this module stays importable while the metrics package is being built in parallel.
    from lightning_lookahead.metrics.normalize import NormMethod, normalize_scores

    # float64 on the CPU, so the BCE cut (with its tolerance) sees the scores at full precision; the (B, N) scores
    # are tiny, and MPS has no float64.
    return normalize_scores(scores.detach().cpu().double(), cast(NormMethod, method))


def bce_targets(normalized: torch.Tensor, threshold: float) -> torch.Tensor:
    """Multi-label targets ``y_j = 1[s̃_j ≥ τ·max_k s̃_k]``; soft targets ``s̃`` when ``τ ≤ 0``.

    A score within :data:`CUT_TOLERANCE` below the cut counts as on it: raw scores 4/9 and 5/9 normalise to exactly
    0.8 in real arithmetic but to 0.79999… in floating point (float32 and float64 alike), which flipped 20 of 21,675
    SelfOSS label cells. The cut is ``min(τ·max, max)``, which equals the spec's ``τ·max`` whenever ``max ≥ 0``
    (min-max, softmax and standardisation always give that); it only differs for ``score_norm="none"`` with a
    negative best score, where ``τ·max`` would exceed the max and leave the best candidate negative. All-equal rows
    get all ones (METHOD §13.7).
    """
    if threshold <= 0:
        return normalized
    best = normalized.amax(dim=-1, keepdim=True)
    cut = torch.minimum(threshold * best, best)
    return (normalized >= cut - CUT_TOLERANCE).to(normalized.dtype)


def _check_shapes(logits: torch.Tensor, scores: torch.Tensor) -> None:
    if logits.ndim != 2 or logits.shape != scores.shape:
        raise LookaheadError(
            f"routing loss expects logits and scores of the same shape (B, N), got {tuple(logits.shape)} and "
            f"{tuple(scores.shape)}"
        )


def configured_loss(cfg: LossConfig) -> RoutingLoss:
    """The ``loss:`` section's routing loss: the one place its options are unpacked (module and recipe alike)."""
    return routing_loss(
        cfg.name,
        threshold=cfg.threshold,
        temperature=cfg.temperature,
        score_norm=cfg.score_norm,
        top_k=cfg.top_k,
        bottom_k=cfg.bottom_k,
    )


def routing_loss(name: str, **opts: Any) -> RoutingLoss:
    """Build ``loss(logits, raw_scores) -> scalar`` for ``name`` ∈ :data:`LOSS_NAMES`.

    Options (all losses accept all of them, so one config block serves every loss):
    ``threshold`` τ for ``bce`` (default 0.8; ``τ ≤ 0`` → soft targets), ``temperature`` T for the KL losses
    (default 0.1), ``score_norm`` ∈ {min-max, none, softmax, standardization} (default min-max), ``top_k`` K+ and
    ``bottom_k`` K− for ``routerdc`` (default 3 and 3, :func:`routerdc_loss`).
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
    top_k, bottom_k = cfg["top_k"], cfg["bottom_k"]
    for key, value in (("top_k", top_k), ("bottom_k", bottom_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LookaheadError(f"routerdc {key} must be an integer ≥ 1, got {value!r}")

    key = name.lower().replace("-", "").replace("_", "")
    canonical = {n.replace("_", ""): n for n in LOSS_NAMES}.get(key)
    if canonical is None:
        raise unknown_name("routing loss", name, LOSS_NAMES)

    def targets(logits: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 logits and the float64 normalised scores, still on the CPU (labels are cut there)."""
        _check_shapes(logits, scores)
        return logits.float(), _normalize(scores, norm)

    def prepared(logits: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, s = targets(logits, scores)
        return z, s.to(z.device, z.dtype)

    def bce(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = targets(logits, scores)
        return F.binary_cross_entropy_with_logits(z, bce_targets(s, threshold).to(z.device, z.dtype))

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

    def routerdc(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        z, s = targets(logits, scores)
        return routerdc_loss(z, s, top_k, bottom_k)

    losses: dict[str, RoutingLoss] = {
        "bce": bce,
        "ce": ce,
        "mse": mse,
        "forward_kl": forward_kl,
        "reverse_kl": reverse_kl,
        "routerdc": routerdc,
    }
    return losses[canonical]


def routerdc_pairs(normalized: torch.Tensor, top_k: int, bottom_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RouterDC's positives ``(B, K+)`` (indices) and, per positive, its negatives ``(B, K+, N)`` (a mask).

    Positives are the ``top_k`` best candidates, negatives the ``bottom_k`` worst; ties are broken by candidate
    index (the first wins, like the decision rule) through stable sorts. A bottom candidate is a negative of a
    positive only if it scores strictly lower: tied candidates never push each other apart, a candidate in both
    sets (K+ + K− > N, e.g. 3 + 3 of 5) is never its own negative, and the worst candidate, picked as a positive
    when K+ reaches it, has no negatives. This generalises the authors' 0/1 rule (positives must have score > 0,
    negatives ≤ 0.5) to graded scores, and gives the same pairs on 0/1 scores.
    """
    n = normalized.shape[-1]
    best_first = torch.sort(normalized, dim=-1, descending=True, stable=True).indices[:, : min(top_k, n)]
    worst_first = torch.sort(normalized, dim=-1, stable=True).indices[:, : min(bottom_k, n)]
    bottom = torch.zeros_like(normalized, dtype=torch.bool).scatter_(1, worst_first, True)
    positive_scores = normalized.gather(1, best_first)  # (B, K+)
    worse = normalized.unsqueeze(1) < positive_scores.unsqueeze(-1)  # (B, K+, N)
    return best_first, worse & bottom.unsqueeze(1)


def routerdc_loss(logits: torch.Tensor, normalized: torch.Tensor, top_k: int, bottom_k: int) -> torch.Tensor:
    """RouterDC's sample–LLM contrastive loss, summed over positives and averaged over prompts.

    ``L = (1/B) Σ_i Σ_{p ∈ P_i} −log( e^{z_p} / (e^{z_p} + Σ_{n ∈ N_i(p)} e^{z_n}) )`` with ``z`` the router's
    logits (cosine similarity / τ for the RouterDC network) and the pairs of :func:`routerdc_pairs`. A positive
    without negatives contributes exactly 0, so an all-equal row costs nothing.
    """
    z = logits.float()
    best_first, negatives = (t.to(z.device) for t in routerdc_pairs(normalized, top_k, bottom_k))  # cut on the CPU
    z_pos = z.gather(1, best_first)  # (B, K+)
    z_neg = z.unsqueeze(1).expand(-1, best_first.shape[1], -1).masked_fill(~negatives, float("-inf"))
    denominator = torch.logsumexp(torch.cat([z_pos.unsqueeze(-1), z_neg], dim=-1), dim=-1)
    return (denominator - z_pos).sum() / z.shape[0]


def label_prior_logits(loss: RoutingLoss, train_scores: torch.Tensor, *, max_iter: int = 200) -> torch.Tensor:
    """The best constant logits (one per candidate, the same for every prompt) under ``loss`` on training scores.

    This is the per-candidate label prior: what a router that ignores its input can reach (for BCE,
    ``logit(p_j)`` with ``p_j`` candidate j's positive rate). A trained router has learned something from the
    prompts only where its held-out routing loss falls below the prior's.
    """
    scores = torch.as_tensor(train_scores, dtype=torch.float64)
    z = torch.zeros(scores.shape[-1], dtype=torch.float32, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss(z.expand(scores.shape[0], -1), scores)
        value.backward()
        return value

    opt.step(closure)
    return z.detach()


def routing_loss_vs_prior(
    loss: RoutingLoss, logits: torch.Tensor, scores: torch.Tensor, train_scores: torch.Tensor
) -> dict[str, float]:
    """Held-out routing loss of ``logits`` beside that of the label prior fitted on ``train_scores``."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    logits = torch.as_tensor(logits, dtype=torch.float32)
    prior = label_prior_logits(loss, train_scores).expand(scores.shape[0], -1)
    with torch.no_grad():
        return {"routing_loss": float(loss(logits, scores)), "label_prior_loss": float(loss(prior, scores))}
