"""lightning_lookahead: train, evaluate and serve Lookahead LLM routers with PyTorch Lightning."""

__version__ = "0.1.0"
