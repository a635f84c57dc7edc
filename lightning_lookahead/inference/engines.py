"""Routing forward paths (engines): wrap a predictor's network so it computes its routing logits faster.

Placeholder for issue 13 (being built): only ``fp32`` exists yet.
"""

from __future__ import annotations

from torch import nn

from lightning_lookahead.errors import unknown_name
from lightning_lookahead.inference.engine_names import ENGINES


def apply_engine(network: nn.Module, engine: str) -> nn.Module:
    """``network`` (eval mode) behind ``engine``: a module with the same call (batch → ``NetworkOutput``)."""
    if engine not in ENGINES:
        raise unknown_name("engine", engine, ENGINES)
    if engine == "fp32":
        return network
    raise NotImplementedError(engine)
