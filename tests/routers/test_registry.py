"""Predictor registry and ``model:`` validation: clear errors that name the key and suggest the closest valid one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers import registry
from lightning_lookahead.routers.base import RouterModule, RouterOutput
from lightning_lookahead.routers.mlc import MLCRouter
from lightning_lookahead.routers.mlm import LookaheadMLM
from lightning_lookahead.routers.registry import (
    PREDICTORS,
    build_predictor,
    predictor_class,
    register_predictor,
    validate_model_config,
)


def test_builtin_kinds() -> None:
    assert PREDICTORS["mlm"] is LookaheadMLM and PREDICTORS["mlc"] is MLCRouter
    assert predictor_class("mlc") is MLCRouter


def test_unknown_kind_suggests_closest() -> None:
    with pytest.raises(LookaheadError, match=r"unknown predictor kind \(model\.kind\) 'mlx'; did you mean 'mlm'\?"):
        predictor_class("mlx")
    with pytest.raises(LookaheadError, match="did you mean 'mlc'"):
        validate_model_config({"kind": "mlc2"})
    with pytest.raises(LookaheadError, match=r"model\.kind is required"):
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
        ({"mask_lenght": 4}, r"unknown config key 'model\.mask_lenght'; did you mean 'mask_length'\?"),
        ({"sparse": True}, r"'model\.sparse'; did you mean 'sparse_mlm'\?"),
        ({"mask_type": "rigth"}, r"model\.mask_type = 'rigth' is not allowed; did you mean 'right'\?"),
        ({"position_scheme": "block"}, r"model\.position_scheme .*valid: block_restart, sequential"),
        ({"mask_length": "4"}, r"model\.mask_length = '4' must be an integer"),
        ({"sparse_mlm": 1}, r"model\.sparse_mlm = 1 must be true or false"),
        ({"max_length": 1.5}, r"model\.max_length = 1\.5 is not a int \| None"),
        ({"start_mask_rate": 1.5}, r"model\.start_mask_rate must be in \[0\.0, 1\.0\]"),
        ({"dropout": 1.0}, r"model\.dropout must be in \[0\.0, 1\.0\)"),
        ({"mlm_weight": -1}, r"model\.mlm_weight must be ≥ 0"),
    ],
)
def test_bad_mlm_settings(settings: dict, message: str) -> None:
    with pytest.raises(LookaheadError, match=message):
        validate_model_config({"kind": "mlm", **settings})


def test_shared_sections_are_checked_too() -> None:
    with pytest.raises(LookaheadError, match=r"unknown config key 'loss\.nmae'; did you mean 'name'\?"):
        build_predictor({"kind": "mlc", "backbone": "/nowhere"}, {"nmae": "bce"}, {}, ["a", "b"])
    with pytest.raises(LookaheadError, match="unknown routing loss 'bec'; did you mean 'bce'"):
        build_predictor({"kind": "mlc", "backbone": "/nowhere"}, {"name": "bec"}, {}, ["a", "b"])
    with pytest.raises(LookaheadError, match=r"unknown optim\.scheduler 'cosin'; did you mean 'cosine'"):
        build_predictor({"kind": "mlc", "backbone": "/nowhere"}, {}, {"scheduler": "cosin"}, ["a", "b"])
    with pytest.raises(LookaheadError, match="candidate pool"):
        build_predictor({"kind": "mlc", "backbone": "/nowhere"}, {}, {}, [])


def test_register_checks_kind_and_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PREDICTORS", dict(PREDICTORS))

    class Constant(RouterModule):
        @dataclass
        class Config:
            kind: str = "const"

        def featurize(self, example):
            return dict(example)

        def featurize_fingerprint(self):
            return "const"

        def collate(self, features):
            return {"scores": self.scores_tensor(features), "prompt_id": [f["prompt_id"] for f in features]}

        def forward_batch(self, batch, stage):
            return RouterOutput(logits=torch.zeros_like(batch["scores"]))

    with pytest.raises(LookaheadError, match="defaults to 'const'; it must be 'other'"):
        register_predictor("other")(Constant)
    with pytest.raises(LookaheadError, match="already taken by LookaheadMLM"):
        register_predictor("mlm")(type("Impostor", (Constant,), {"Config": LookaheadMLM.Config}))
    with pytest.raises(LookaheadError, match="needs a RouterModule subclass"):
        register_predictor("const")(dict)  # type: ignore[arg-type]
    assert register_predictor("const")(Constant) is Constant
    module = build_predictor({"kind": "const"}, None, None, ["a", "b"])
    batch = module.collate([{"prompt_id": "p", "scores": [1.0, 0.0]}])
    assert module.predict_scores(batch).shape == (1, 2)
    assert module.aux_loss_weight() == 1.0
