"""Predictor kinds: ``model.kind`` → its config dataclass and its build function (network + input builder).

Built-in builders are named by import path and imported on first use, so checking a config (``lookahead
validate``) imports no torch-heavy code. Nothing here knows Lightning: the LightningModule that trains a kind is
chosen beside the recipe (:mod:`lightning_lookahead.training.modules.registry`). A user predictor joins with::

    register_predictor("toy", config=ToyConfig, build=build_toy)   # trains with PredictorModule
    register_module("mine", MyModule)                                # only if an input depends on the training step
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.models.clm.config import CLMConfig
from lightning_lookahead.models.gt_response.config import GTResponseConfig
from lightning_lookahead.models.mlc.config import MLCConfig
from lightning_lookahead.models.mlm.config import MLMConfig
from lightning_lookahead.models.predictor import Predictor, PredictorConfig
from lightning_lookahead.models.routerdc.config import RouterDCConfig
from lightning_lookahead.typed import config_to_dict, parse_dataclass


def _load(target: Any) -> Any:
    """``"package.module:attr"`` → the attribute; anything else is returned as is."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class PredictorSpec:
    """One registered kind: its settings and how to build its network and input builder."""

    kind: str
    config: type[PredictorConfig]
    build: Callable[..., Predictor] | str

    def build_predictor(self, config: PredictorConfig, candidates: Sequence[str]) -> Predictor:
        return _load(self.build)(config, list(candidates))


PREDICTORS: dict[str, PredictorSpec] = {
    "mlm": PredictorSpec("mlm", MLMConfig, "lightning_lookahead.models.mlm.network:build_mlm"),
    "mlc": PredictorSpec("mlc", MLCConfig, "lightning_lookahead.models.mlc.network:build_mlc"),
    "gt_response": PredictorSpec(
        "gt_response", GTResponseConfig, "lightning_lookahead.models.gt_response.network:build_gt_response"
    ),
    "clm": PredictorSpec("clm", CLMConfig, "lightning_lookahead.models.clm.network:build_clm"),
    "routerdc": PredictorSpec("routerdc", RouterDCConfig, "lightning_lookahead.models.routerdc.network:build_routerdc"),
}


def _declared_kind(config: type) -> str | None:
    for f in fields(config):
        if f.name == "kind" and f.default is not MISSING:
            return str(f.default)
    return None


def register_predictor(
    kind: str,
    *,
    config: type[PredictorConfig],
    build: Callable[..., Predictor] | str,
) -> PredictorSpec:
    """Add a predictor under ``kind``; its config's ``kind`` must default to the same name."""
    if not (isinstance(config, type) and issubclass(config, PredictorConfig)):
        raise LookaheadError(f"register_predictor({kind!r}): config must subclass PredictorConfig, got {config!r}")
    declared = _declared_kind(config)
    if declared != kind:
        raise LookaheadError(
            f"{config.__name__}.kind defaults to {declared!r}; it must be {kind!r} to register under that name"
        )
    existing = PREDICTORS.get(kind)
    if existing is not None and existing.config.__qualname__ != config.__qualname__:
        raise LookaheadError(f"predictor kind {kind!r} is already taken by {existing.config.__name__}")
    spec = PredictorSpec(kind, config, build)
    PREDICTORS[kind] = spec
    return spec


def predictor_spec(kind: str) -> PredictorSpec:
    """The spec registered under ``kind``; an unknown kind names the closest registered one."""
    try:
        return PREDICTORS[kind]
    except KeyError:
        raise unknown_name("predictor kind (model.kind)", str(kind), sorted(PREDICTORS)) from None


def _kind_of(model_cfg: Mapping[str, Any]) -> str:
    if not isinstance(model_cfg, Mapping):
        raise LookaheadError(f"model: settings must be a mapping, got {type(model_cfg).__name__}")
    kind = model_cfg.get("kind")
    if not isinstance(kind, str) or not kind:
        raise LookaheadError(f"model.kind: required (one of: {', '.join(sorted(PREDICTORS))})")
    return kind


def parse_model_config(model_cfg: Mapping[str, Any] | PredictorConfig) -> PredictorConfig:
    """The typed ``model:`` settings of their kind: keys, types and ranges checked; nothing loaded."""
    if isinstance(model_cfg, PredictorConfig):
        return model_cfg
    spec = predictor_spec(_kind_of(model_cfg))
    return parse_dataclass(spec.config, model_cfg, "model")


def validate_model_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``model:`` block and return it completed with defaults, as a plain dict."""
    return config_to_dict(parse_model_config(model_cfg))


def build_predictor(model_cfg: Mapping[str, Any] | PredictorConfig, candidates: Sequence[str]) -> Predictor:
    """Build (and load the backbone of) the predictor a ``model:`` block names, for the candidate pool."""
    config = parse_model_config(model_cfg)
    names = [str(c) for c in candidates]
    if not names:
        raise LookaheadError("data.candidates: a predictor needs a non-empty candidate pool")
    if len(set(names)) != len(names):
        raise LookaheadError(f"data.candidates: names must be distinct, got {names}")
    return predictor_spec(config.kind).build_predictor(config, names)
