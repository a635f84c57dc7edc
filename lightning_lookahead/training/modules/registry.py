"""``model.kind`` → the LightningModule that trains it: :class:`PredictorModule` unless the kind registered its own.

The predictor registry (:mod:`lightning_lookahead.models.registry`) knows configs, networks and input builders and
no Lightning; what trains a kind is chosen here, beside the recipe. A predictor with an input that depends on the
training step (the MLM curriculum) or with work to do before the fit (RouterDC's clusters) registers a thin
subclass::

    register_predictor("mine", config=MyConfig, build=build_mine)
    register_module("mine", MyModule)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.predictor import PredictorConfig
from lightning_lookahead.models.registry import build_predictor, parse_model_config, predictor_spec
from lightning_lookahead.training.modules.mlm import MLMModule
from lightning_lookahead.training.modules.predictor import PredictorModule
from lightning_lookahead.training.modules.routerdc import RouterDCModule

#: The kinds that train with a module of their own; every other kind trains with :class:`PredictorModule`.
MODULES: dict[str, type[PredictorModule]] = {"mlm": MLMModule, "routerdc": RouterDCModule}


def register_module(kind: str, module: type[PredictorModule]) -> type[PredictorModule]:
    """Train the registered predictor ``kind`` with ``module`` (a :class:`PredictorModule` subclass)."""
    predictor_spec(kind)  # an unknown kind fails here, naming the closest registered one
    if not (isinstance(module, type) and issubclass(module, PredictorModule)):
        raise LookaheadError(f"register_module({kind!r}): module must subclass PredictorModule, got {module!r}")
    MODULES[kind] = module
    return module


def module_class(kind: str) -> type[PredictorModule]:
    """The LightningModule that trains ``kind``."""
    return MODULES.get(kind, PredictorModule)


def build_module(
    model: PredictorConfig | Mapping[str, Any],
    loss: LossConfig | Mapping[str, Any] | None,
    optim: OptimConfig | Mapping[str, Any] | None,
    candidates: Sequence[str],
) -> PredictorModule:
    """Build the predictor ``model`` names and wrap it in the training module of its kind.

    The recipe passes the composed config's typed sections; plain mappings (a test's, a benchmark's) are parsed
    against the same dataclasses first.
    """
    config = parse_model_config(model)
    predictor = build_predictor(config, candidates)
    return module_class(config.kind)(predictor, loss, optim)
