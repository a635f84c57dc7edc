"""Merge settings layer by layer and parse after each, so a mistake is reported against the layer that made it.

Layers are plain (unstructured) OmegaConf containers: OmegaConf merges them and resolves interpolations
(``${name}``, ``${oc.env:...}``), and :func:`~lightning_lookahead.typed.parse_dataclass` checks the merged
result, including ``Literal`` fields and ranges that OmegaConf's structured configs cannot hold. Every failure becomes
one line ``<source>: <key>: <problem>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.typed import parse_dataclass

C = TypeVar("C")


def _located(source: str | None, message: str) -> LookaheadError:
    return LookaheadError(f"{source}: {message}" if source else message)


def _omegaconf_problem(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{key}: {problem}" if key else problem


def merge_layer(cfg: DictConfig, layer: Any, source: str | None) -> DictConfig:
    """``cfg`` with ``layer`` merged over it (nothing is checked yet: :func:`parse_layer` does that)."""
    try:
        return OmegaConf.merge(cfg, layer)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise _located(source, _omegaconf_problem(exc)) from None


def resolved(cfg: DictConfig, source: str | None) -> dict[str, Any]:
    """A plain dict with every interpolation resolved (what the typed parse and the run both see)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise _located(source, _omegaconf_problem(exc)) from None


def parse_layer(cls: type[C], cfg: DictConfig, section: str, source: str | None) -> C:
    """The merged settings as the typed dataclass ``cls``; errors name ``source`` and the key."""
    settings = resolved(cfg, source)
    try:
        return parse_dataclass(cls, settings, section)
    except LookaheadError as exc:
        raise _located(source, str(exc)) from None


def dotlist(items: Sequence[str], source: str, example: str) -> DictConfig:
    """``key=value`` strings as a nested layer; a malformed item names itself and an ``example``."""
    for item in items:
        key, eq, _ = item.partition("=")
        if not eq or not key.strip():
            raise LookaheadError(f"{source} {item!r}: expected key=value, e.g. {example}")
    try:
        return OmegaConf.from_dotlist(list(items))
    except OmegaConfBaseException as exc:
        raise _located(source, _omegaconf_problem(exc)) from None
