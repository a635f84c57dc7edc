"""Serving trained routers: load a run's export (or checkpoint) without unpickling code, and route new prompts.

The names below are imported on first use, so light modules of this package (``engine_names``, ``calibration``)
can be read by the command-line parser without importing torch.
"""

from __future__ import annotations

from lightning_lookahead.lazy import lazy_exports

_EXPORTS = {
    "RouteDecision": "lightning_lookahead.inference.router",
    "TrainedRouter": "lightning_lookahead.inference.router",
    "export_router": "lightning_lookahead.inference.export",
    "load_checkpoint_file": "lightning_lookahead.inference.export",
    "load_export": "lightning_lookahead.inference.export",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
