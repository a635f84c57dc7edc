"""Experiment configuration: structured dataclasses composed with OmegaConf from YAML and overrides."""
