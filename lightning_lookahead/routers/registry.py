"""Predictor kinds: ``model.kind`` in a config → the :class:`RouterModule` subclass that trains it.

User predictors join with ``@register_predictor("name")``; ``lookahead validate`` checks a ``model:`` block against
the predictor's own ``Config`` through :func:`validate_model_config`, without loading any weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.routers.base import RouterModule, config_to_dict
from lightning_lookahead.routers.clm import LookaheadCLM
from lightning_lookahead.routers.gt_response import GTResponseRouter
from lightning_lookahead.routers.mlc import MLCRouter
from lightning_lookahead.routers.mlm import LookaheadMLM

P = TypeVar("P", bound=type[RouterModule])

PREDICTORS: dict[str, type[RouterModule]] = {
    "mlm": LookaheadMLM,
    "mlc": MLCRouter,
    "gt_response": GTResponseRouter,
    "clm": LookaheadCLM,
}


def register_predictor(kind: str) -> Callable[[P], P]:
    """Class decorator adding a predictor under ``kind``; its ``Config.kind`` must default to the same name."""

    def decorate(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, RouterModule)):
            raise LookaheadError(f"@register_predictor({kind!r}) needs a RouterModule subclass, got {cls!r}")
        declared = cls.default_kind()
        if declared != kind:
            raise LookaheadError(
                f"{cls.__name__}.Config.kind defaults to {declared!r}; it must be {kind!r} to register under that name"
            )
        existing = PREDICTORS.get(kind)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise LookaheadError(f"predictor kind {kind!r} is already taken by {existing.__name__}")
        PREDICTORS[kind] = cls
        return cls

    return decorate


def predictor_class(kind: str) -> type[RouterModule]:
    """The class registered under ``kind``; an unknown kind names the closest registered one."""
    try:
        return PREDICTORS[kind]
    except KeyError:
        raise unknown_name("predictor kind (model.kind)", str(kind), sorted(PREDICTORS)) from None


def _kind_of(model_cfg: Mapping[str, Any]) -> str:
    if not isinstance(model_cfg, Mapping):
        raise LookaheadError(f"model settings must be a mapping, got {type(model_cfg).__name__}")
    kind = model_cfg.get("kind")
    if not isinstance(kind, str) or not kind:
        raise LookaheadError(f"model.kind is required (one of: {', '.join(sorted(PREDICTORS))})")
    return kind


def validate_model_config(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``model:`` block's keys, types and ranges; return it completed with defaults. Loads nothing."""
    cls = predictor_class(_kind_of(model_cfg))
    return config_to_dict(cls.parse_config(model_cfg))


def build_predictor(
    model_cfg: Mapping[str, Any],
    loss: Mapping[str, Any] | LossConfig | None,
    optim: Mapping[str, Any] | OptimConfig | None,
    candidates: Sequence[str],
) -> RouterModule:
    """Instantiate (and load the backbone of) the predictor named by ``model_cfg["kind"]``."""
    cls = predictor_class(_kind_of(model_cfg))
    return cls(model=model_cfg, loss=loss, optim=optim, candidates=list(candidates))


def predictor_from_config(cfg: Any) -> RouterModule:
    """The predictor of a composed experiment config (``model``, ``loss``, ``optim``, ``data.candidates``)."""
    from omegaconf import OmegaConf

    return build_predictor(
        OmegaConf.to_container(cfg.model, resolve=True),
        OmegaConf.to_container(cfg.loss, resolve=True),
        OmegaConf.to_container(cfg.optim, resolve=True),
        list(cfg.data.candidates),
    )
