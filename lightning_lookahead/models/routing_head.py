"""The routing head shared by every trained predictor (METHOD §8 ``reward_head`` + ``reward_output``).

One module for all predictors keeps initialisation and dropout identical across MLM, MLC and CLM, so differences
between routers come from their inputs, not from head details.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_lookahead.errors import LookaheadError

#: Std of the hidden projection: the BERT-family ``initializer_range``; the spec only fixes the output layer.
HIDDEN_INIT_STD = 0.02


def _trunc_normal_(weight: torch.Tensor, std: float) -> None:
    """Truncated normal cut at ±2σ (torch's default bounds are absolute ±2, i.e. no cut for small σ)."""
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class RoutingHead(nn.Module):
    """``Linear(h→h) → GELU → LayerNorm → Dropout(p) → Linear(h→num_outputs)``.

    ``num_outputs`` is N for a joint head on one summary vector (MLM's [CLS], MLC) and 1 for per-candidate scalars
    (CLM's model-id position, GT-response router). The output layer uses a truncated normal with std ``h^-0.5`` and
    zero bias, so initial logits have unit scale whatever the hidden size.
    """

    def __init__(
        self, hidden_size: int, num_outputs: int, *, dropout: float = 0.0, layer_norm_eps: float = 1e-5
    ) -> None:
        super().__init__()
        if hidden_size < 1 or num_outputs < 1:
            raise LookaheadError(f"RoutingHead needs hidden_size, num_outputs ≥ 1, got {hidden_size}, {num_outputs}")
        if not 0.0 <= dropout < 1.0:
            raise LookaheadError(f"RoutingHead dropout must be in [0, 1), got {dropout}")
        self.hidden_size = hidden_size
        self.num_outputs = num_outputs
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, num_outputs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deterministic-given-seed init; called again by owners that re-initialise after loading a backbone."""
        _trunc_normal_(self.dense.weight, HIDDEN_INIT_STD)
        nn.init.zeros_(self.dense.bias)
        self.norm.reset_parameters()
        _trunc_normal_(self.output.weight, 1.0 / math.sqrt(self.hidden_size))
        nn.init.zeros_(self.output.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Map ``(..., h)`` summary states to ``(..., num_outputs)`` routing logits."""
        x = self.norm(self.act(self.dense(hidden)))
        return self.output(self.dropout(x))
