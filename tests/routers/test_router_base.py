"""RouterModule plumbing that the end-to-end tests only touch indirectly: config parsing and batch transfer."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from omegaconf import OmegaConf

from lightning_lookahead.config.schema import OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.mlm_inputs import EncodedExample
from lightning_lookahead.routers.base import RouterModule, RouterOutput, config_to_dict, parse_dataclass


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
    with pytest.raises(LookaheadError, match=r"missing setting\(s\) x\.name"):
        parse_dataclass(_Settings, {}, "x")
    with pytest.raises(LookaheadError, match=r"x\.tags = 'a' must be a list"):
        parse_dataclass(_Settings, {"name": "n", "tags": "a"}, "x")


def test_config_to_dict_is_yaml_safe() -> None:
    assert config_to_dict(OptimConfig())["betas"] == [0.9, 0.999]
    assert parse_dataclass(OptimConfig, config_to_dict(OptimConfig()), "optim").betas == (0.9, 0.999)


class _Echo(RouterModule):
    host_batch_keys = ("prompt_id", "encoded")

    @dataclass
    class Config:
        kind: str = "echo"

    def featurize(self, example):
        return dict(example)

    def featurize_fingerprint(self):
        return "echo"

    def collate(self, features):
        return {"scores": self.scores_tensor(features), "prompt_id": [f["prompt_id"] for f in features]}

    def forward_batch(self, batch, stage):
        return RouterOutput(logits=batch["scores"])


def test_host_keys_skip_device_transfer() -> None:
    module = _Echo({"kind": "echo"}, candidates=["a", "b"])
    encoded = [EncodedExample((1,), ((2,), (3,)))]
    batch = {"encoded": encoded, "scores": torch.zeros(1, 2), "prompt_id": ["p"], "extra": [torch.ones(1)]}
    moved = module.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    assert moved["encoded"] is encoded and moved["prompt_id"] == ["p"]
    assert torch.equal(moved["extra"][0], torch.ones(1))


def test_scores_must_match_the_pool() -> None:
    module = _Echo({}, candidates=["a", "b"])
    with pytest.raises(LookaheadError, match="needs 2 scores"):
        module.collate([{"prompt_id": "p", "scores": [1.0, 2.0, 3.0]}])
    with pytest.raises(LookaheadError, match="distinct"):
        _Echo({}, candidates=["a", "a"])
