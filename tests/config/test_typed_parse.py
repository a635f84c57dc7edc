"""``parse_dataclass``: the one mechanism every settings section goes through (dicts, DictConfigs, instances)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf

from lightning_lookahead.config.schema import OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.typed import config_to_dict, parse_dataclass


@dataclass
class _Settings:
    name: str
    size: int = 2
    ratio: float = 0.5
    tags: list[str] = field(default_factory=list)


def test_parse_dataclass_accepts_dicts_dictconfigs_and_instances() -> None:
    assert parse_dataclass(_Settings, {"name": "a", "ratio": 1}, "x") == _Settings("a", 2, 1.0)
    assert parse_dataclass(_Settings, OmegaConf.create({"name": "b", "tags": ["t"]}), "x") == _Settings("b", tags=["t"])
    same = _Settings("c")
    assert parse_dataclass(_Settings, same, "x") is same
    with pytest.raises(LookaheadError, match=r"x\.name: missing setting"):
        parse_dataclass(_Settings, {}, "x")
    with pytest.raises(LookaheadError, match=r"x\.tags: 'a' must be a list"):
        parse_dataclass(_Settings, {"name": "n", "tags": "a"}, "x")


def test_config_to_dict_is_yaml_safe() -> None:
    assert config_to_dict(OptimConfig())["betas"] == [0.9, 0.999]
    assert parse_dataclass(OptimConfig, config_to_dict(OptimConfig()), "optim").betas == (0.9, 0.999)
