"""Query-only multi-label classifier (METHOD §9 "sc"): config, inputs and network."""
