"""Experiment configuration: typed dataclasses, YAML layers merged with OmegaConf, checked in full at compose time."""
