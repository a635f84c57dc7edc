"""Benchmark data: fetching, reading into one schema, and splitting."""
