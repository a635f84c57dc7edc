"""Predictor registry and ``model:`` validation: clear errors that name the key, nothing loaded, nothing imported."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from lightning_lookahead.data.inputs import scores_tensor
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models import registry
from lightning_lookahead.models.mlc.config import MLCConfig
from lightning_lookahead.models.mlm.config import MLMConfig
from lightning_lookahead.models.predictor import NetworkOutput, Predictor, PredictorConfig
from lightning_lookahead.models.registry import (
    PREDICTORS,
    build_predictor,
    predictor_spec,
    register_predictor,
    validate_model_config,
)
from lightning_lookahead.typed import at_least


def test_builtin_kinds() -> None:
    assert PREDICTORS["mlm"].config is MLMConfig and predictor_spec("mlc").config is MLCConfig
    assert sorted(PREDICTORS) == ["clm", "gt_response", "mlc", "mlm", "routerdc"]


def test_checking_a_config_imports_neither_lightning_nor_transformers() -> None:
    code = (
        "import sys; from lightning_lookahead.models.registry import validate_model_config as v; "
        "[v({'kind': k}) for k in ('mlm', 'mlc', 'clm', 'gt_response', 'routerdc')]; "
        "print(sorted(m for m in ('lightning', 'transformers', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_kind_suggests_closest() -> None:
    with pytest.raises(LookaheadError, match=r"unknown predictor kind \(model\.kind\) 'mlx'; did you mean 'mlm'\?"):
        predictor_spec("mlx")
    with pytest.raises(LookaheadError, match="did you mean 'mlc'"):
        validate_model_config({"kind": "mlc2"})
    with pytest.raises(LookaheadError, match=r"model\.kind: required"):
        validate_model_config({"backbone": "minilm"})


def test_validation_fills_defaults_without_loading_weights() -> None:
    cfg = validate_model_config({"kind": "mlm", "backbone": "/nowhere/at/all", "dropout": 0, "max_length": None})
    assert cfg["backbone"] == "/nowhere/at/all" and cfg["dropout"] == 0.0 and isinstance(cfg["dropout"], float)
    assert cfg["max_length"] is None
    assert cfg["mask_length"] == 32 and cfg["mlm_weight"] == 0.2 and cfg["position_scheme"] == "block_restart"
    assert validate_model_config({"kind": "mlc"})["pooling"] == "cls"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mask_lenght": 4}, r"model\.mask_lenght: unknown config key; did you mean 'mask_length'\?"),
        ({"sparse": True}, r"model\.sparse: unknown config key; did you mean 'sparse_mlm'\?"),
        ({"mask_type": "rigth"}, r"model\.mask_type: 'rigth' is not one of right, random, left, no; did you mean"),
        ({"position_scheme": "block"}, r"model\.position_scheme: 'block' is not one of block_restart, sequential"),
        ({"mask_length": "4"}, r"model\.mask_length: '4' must be an integer"),
        ({"sparse_mlm": 1}, r"model\.sparse_mlm: 1 must be true or false"),
        ({"max_length": 1.5}, r"model\.max_length: 1\.5 must be an integer"),
        ({"max_length": 1}, r"model\.max_length: must be ≥ 2, got 1"),
        ({"start_mask_rate": 1.5}, r"model\.start_mask_rate: must be in \[0, 1\], got 1\.5"),
        ({"dropout": 1.0}, r"model\.dropout: must be in \[0, 1\), got 1\.0"),
        ({"mlm_weight": -1}, r"model\.mlm_weight: must be ≥ 0, got -1"),
        ({"mlm_max_predictions": 0}, r"model\.mlm_max_predictions: must be ≥ 1, got 0"),
    ],
)
def test_bad_mlm_settings(settings: dict, message: str) -> None:
    with pytest.raises(LookaheadError, match=message):
        validate_model_config({"kind": "mlm", **settings})


def test_pool_is_checked_before_loading() -> None:
    with pytest.raises(LookaheadError, match="non-empty candidate pool"):
        build_predictor({"kind": "mlc", "backbone": "/nowhere"}, [])
    with pytest.raises(LookaheadError, match="distinct"):
        build_predictor({"kind": "mlc", "backbone": "/nowhere"}, ["a", "a"])


@dataclass
class ConstantConfig(PredictorConfig):
    kind: str = "const"
    bias: float = field(default=0.0, metadata=at_least(0))


class _Inputs:
    fingerprint = "const"

    def featurize(self, example):
        return {"scores": example.get("scores") or []}

    def collate(self, features, train=False):
        return {"scores": scores_tensor(features, 2)}


class _Constant(nn.Module):
    def __init__(self, bias: float) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, batch):
        return NetworkOutput(logits=torch.zeros_like(batch["scores"]) + self.bias)


def _build(config: ConstantConfig, candidates: list[str]) -> Predictor:
    return Predictor(config, _Constant(config.bias), _Inputs(), candidates)


def test_register_checks_kind_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PREDICTORS", dict(PREDICTORS))
    with pytest.raises(LookaheadError, match="defaults to 'const'; it must be 'other'"):
        register_predictor("other", config=ConstantConfig, build=_build)
    with pytest.raises(LookaheadError, match="already taken by MLMConfig"):
        register_predictor("mlm", config=type("Impostor", (MLMConfig,), {}), build=_build)
    with pytest.raises(LookaheadError, match="must subclass PredictorConfig"):
        register_predictor("const", config=dict, build=_build)  # type: ignore[arg-type]
    register_predictor("const", config=ConstantConfig, build=_build)
    with pytest.raises(LookaheadError, match=r"model\.bias: must be ≥ 0"):
        validate_model_config({"kind": "const", "bias": -1})
    predictor = build_predictor({"kind": "const", "bias": 0.5}, ["a", "b"])
    batch = predictor.inputs.collate([predictor.inputs.featurize({"scores": [1.0, 0.0]})])
    assert predictor.network(batch).logits.tolist() == [[0.5, 0.5]]
    assert predictor.config.aux_loss_weight() == 1.0 and predictor.tokenizer is None
