"""Response-aware upper bound (METHOD §9 "rm"): config, inputs and network."""
