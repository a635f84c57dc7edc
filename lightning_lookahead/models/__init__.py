"""Plain ``nn.Module`` parts and input builders, no Lightning (ARCHITECTURE: models/).

The backbone loaders are exported lazily: importing them pulls in transformers, which the head and the
token-id input builders do not need.
"""

from __future__ import annotations

from typing import Any

from lightning_lookahead.models.head import RouterHead
from lightning_lookahead.models.mlm_inputs import (
    EncodedExample,
    MLMLayout,
    curriculum_rate,
    max_prompt_tokens_for,
    sparse_mlm_loss,
)

_LAZY = {"load_masked_lm", "load_encoder", "model_id_tokens", "resolve_backbone"}

__all__ = [
    "EncodedExample",
    "MLMLayout",
    "RouterHead",
    "curriculum_rate",
    "load_encoder",
    "load_masked_lm",
    "max_prompt_tokens_for",
    "model_id_tokens",
    "resolve_backbone",
    "sparse_mlm_loss",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from lightning_lookahead.models import backbones

        return getattr(backbones, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
