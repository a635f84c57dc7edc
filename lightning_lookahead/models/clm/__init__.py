"""Lookahead-CLM (METHOD §7): config, inputs and network."""
