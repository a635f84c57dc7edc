"""Per-prompt score normalisation (METHOD §6), shared by the training losses and the metrics.

Raw scores live on very different scales (AlpacaEval preferences in [1, 2], Arena-Hard in [−6, 6], reward-model
logits, 0/1 correctness), so labels and the validation reward are computed on per-prompt normalised scores. Keeping
one implementation here guarantees that the loss targets, the torchmetrics and the offline ``validation_reward``
agree exactly.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from lightning_lookahead.errors import LookaheadError, unknown_name

NormMethod = Literal["min-max", "none", "softmax", "standardization"]

#: The accepted method names, in documentation order.
NORM_METHODS: tuple[str, ...] = get_args(NormMethod)


def normalize_scores(scores: torch.Tensor, method: NormMethod = "min-max") -> torch.Tensor:
    """Normalise each prompt's candidate scores along the last dimension (shape ``(..., N)``, usually ``(B, N)``).

    - ``min-max``: ``(s − min) / (max − min)``; the divisor is 1 when all scores are equal, so such a row is all 0.
    - ``none``: a copy of the scores (so callers may modify the result without touching the input).
    - ``softmax``: ``exp(s) / Σ exp(s)``.
    - ``standardization``: ``(s − μ) / σ`` with the population standard deviation (ddof = 0: the N candidates are
      the whole population of the prompt, not a sample); ``σ = 0`` is replaced by 1, so such a row is all 0.

    Integer inputs are promoted to the default float dtype; float inputs keep their dtype.
    """
    if method not in NORM_METHODS:
        raise unknown_name("score normalisation", str(method), NORM_METHODS)
    if not isinstance(scores, torch.Tensor):
        raise LookaheadError(f"normalize_scores expects a torch.Tensor, got {type(scores).__name__}")
    if scores.ndim < 1 or scores.shape[-1] == 0:
        raise LookaheadError(f"normalize_scores expects shape (..., N) with N ≥ 1, got {tuple(scores.shape)}")
    if not torch.is_floating_point(scores):
        scores = scores.to(torch.get_default_dtype())

    if method == "none":
        return scores.clone()
    if method == "softmax":
        return torch.softmax(scores, dim=-1)
    if method == "min-max":
        low = scores.amin(dim=-1, keepdim=True)
        span = scores.amax(dim=-1, keepdim=True) - low
        span = torch.where(span == 0, torch.ones_like(span), span)
        return (scores - low) / span
    # standardization
    mean = scores.mean(dim=-1, keepdim=True)
    std = scores.std(dim=-1, keepdim=True, correction=0)
    std = torch.where(std == 0, torch.ones_like(std), std)
    return (scores - mean) / std
