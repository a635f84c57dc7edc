"""Response cross-entropy in chunks of positions, so full-vocabulary logits never exist for all of them at once.

At the paper's scale a CLM micro-batch holds ~20k response positions and the vocabulary is 49k: projecting them
together is ~4 GB of fp32 logits, kept again for the backward. Here each chunk's summed NLL runs under
``torch.utils.checkpoint``: the forward keeps only the chunk's input states, and the backward recomputes one
chunk's logits at a time. The result is the same token mean as one ``F.cross_entropy`` over every position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

Projection = Callable[[torch.Tensor], torch.Tensor]


def _chunk_nll(project: Projection, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed NLL of one chunk: fp32 log-softmax, as ``F.cross_entropy(logits.float(), ...)`` over all positions."""
    return F.cross_entropy(project(states).float(), targets, reduction="sum")


def chunked_cross_entropy(project: Projection, states: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
    """Token-mean NLL of ``targets`` (M,) under ``project(states)`` (M, H) → (M, V), ``chunk`` positions at a time.

    One chunk (M ≤ chunk) is computed directly: its logits are as large as any chunk's. Otherwise every chunk is
    checkpointed, so neither pass holds more than one chunk's logits.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be ≥ 1, got {chunk}")
    count = targets.numel()
    if count <= chunk:
        return _chunk_nll(project, states, targets) / count
    total = states.new_zeros((), dtype=torch.float32)
    for start in range(0, count, chunk):
        part = slice(start, start + chunk)
        total = total + checkpoint(_chunk_nll, project, states[part], targets[part], use_reentrant=False)
    return total / count
