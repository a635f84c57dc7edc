"""Benchmark metrics (pure functions of items and choices) and torchmetrics for training."""
