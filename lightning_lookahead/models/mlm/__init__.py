"""Lookahead-MLM (METHOD §8): config, inputs and network."""
