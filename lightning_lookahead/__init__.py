"""lightning_lookahead: train, evaluate and serve Lookahead LLM routers with PyTorch Lightning."""

from lightning_lookahead.version import __version__

__all__ = ["__version__"]
