"""Serving trained routers: load a run's export (or checkpoint) without unpickling code, and route new prompts."""

from lightning_lookahead.inference.export import export_router, load_checkpoint_file, load_export
from lightning_lookahead.inference.router import RouteDecision, TrainedRouter

__all__ = ["RouteDecision", "TrainedRouter", "export_router", "load_checkpoint_file", "load_export"]
