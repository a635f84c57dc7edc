"""The one scoring path: features → batches of tensors → the network in eval mode → a score matrix.

Training's test stage, ``evaluate --checkpoint``, ``route`` and ``serve`` all call :func:`score_features`, so a
router scores an item the same way wherever it is asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_lookahead.data.inputs import InputBuilder
from lightning_lookahead.data.lengths import longest_first
from lightning_lookahead.errors import LookaheadError


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Every tensor of a batch on ``device`` (non-tensors untouched)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def network_device(network: nn.Module) -> torch.device:
    """Where the network's parameters live (CPU for a parameter-free network)."""
    param = next(network.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.inference_mode()
def batch_logits(network: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """Routing logits (B, N) of one collated batch, float32 on the host; the network must be in eval mode."""
    return network(to_device(batch, network_device(network))).logits.float().cpu()


def score_features(
    network: nn.Module,
    inputs: InputBuilder,
    features: Sequence[Mapping[str, Any]],
    n_candidates: int,
    *,
    batch_size: int = 32,
    sort_by_length: bool = True,
    progress: bool = False,
    desc: str = "routing",
) -> np.ndarray:
    """Scores (n, N) of featurised items in input order, batched by feature length, the network in eval mode.

    Longest first: the slowest batch (and any out-of-memory) shows up at once, and a batch holds similar lengths.
    """
    if batch_size < 1:
        raise LookaheadError(f"batch size must be ≥ 1, got {batch_size}")
    from tqdm.auto import tqdm

    n = len(features)
    out = np.zeros((n, n_candidates), dtype=np.float32)
    if n == 0:
        return out
    order = longest_first(features) if sort_by_length else list(range(n))
    was_training = network.training
    network.eval()
    try:
        with tqdm(total=n, unit="prompt", desc=desc, disable=not progress) as bar:
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                batch = inputs.collate([dict(features[i]) for i in index])
                out[index] = batch_logits(network, batch).numpy()
                bar.update(len(index))
    finally:
        network.train(was_training)
    return out
