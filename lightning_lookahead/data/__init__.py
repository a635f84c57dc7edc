"""Benchmark data: fetching, reading into one schema (files → RoutingExamples), the ``data:`` config, splitting, the
DataModule that collates tensors, and the append-only journals of ``data collect`` / ``data score``."""
