"""Typed settings: a plain mapping (YAML, overrides, checkpoint hparams) → a dataclass, every key and value checked.

Closed sets are ``Literal`` fields; numeric ranges are declared next to the field with :func:`between`::

    dropout: float = field(default=0.0, metadata=between(0, 1, high_open=True))

so one mechanism checks every section (``model``, ``optim``, ``data`` …) and errors read
``<section>.<key>: <what was expected>, got <value>``. Nothing here imports torch or Lightning: ``lookahead validate``
runs on it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

from lightning_lookahead.errors import LookaheadError, closest

C = TypeVar("C")

#: Key of a field's ``metadata`` that holds its :class:`Range`.
RANGE_KEY = "range"
#: Key of a field's ``metadata`` that holds the function parsing it (a section whose type its content decides).
PARSER_KEY = "parser"


@dataclass(frozen=True)
class Range:
    """An interval a number must lie in; ``None`` bounds are open-ended."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        if self.high is None and self.low is not None:
            return f"{'>' if self.low_open else '≥'} {_num(self.low)}"
        if self.low is None and self.high is not None:
            return f"{'<' if self.high_open else '≤'} {_num(self.high)}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def between(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> dict[str, Range]:
    """Field metadata: the value must lie in the interval (``None`` values pass when the type allows null)."""
    return {RANGE_KEY: Range(low, high, low_open, high_open)}


def positive() -> dict[str, Range]:
    """Field metadata: the value must be > 0."""
    return between(0, None, low_open=True)


def at_least(low: float) -> dict[str, Range]:
    """Field metadata: the value must be ≥ ``low``."""
    return between(low, None)


def parsed_by(parser: Callable[[Any], Any]) -> dict[str, Callable[[Any], Any]]:
    """Field metadata: ``parser(value)`` builds the field, e.g. ``model:`` whose dataclass ``model.kind`` chooses."""
    return {PARSER_KEY: parser}


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type hint; ints become floats for float fields (YAML writes ``1`` for 1.0)."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise LookaheadError(f"{where}: must not be null (expected {_type_name(hint)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except LookaheadError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise LookaheadError(f"{where}: {value!r} is not a {_type_name(hint)}")
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices or (isinstance(value, bool) and not any(c is value for c in choices)):
            hint_name = closest(str(value), [str(c) for c in choices])
            suggestion = f"; did you mean {hint_name!r}?" if hint_name else ""
            shown = ", ".join(dict.fromkeys(map(str, choices)))  # 16 and "16" read the same
            raise LookaheadError(f"{where}: {value!r} is not one of {shown}{suggestion}")
        return value
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            raise LookaheadError(f"{where}: {value!r} must be a list")
        return list(value) if origin is not tuple else tuple(value)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise LookaheadError(f"{where}: {value!r} must be a mapping")
        return dict(value)
    if is_dataclass(hint) and isinstance(hint, type):
        if not (isinstance(value, Mapping | hint) or _is_omegaconf_mapping(value)):
            raise LookaheadError(f"{where}: {value!r} must be a mapping of {where.rsplit('.', 1)[-1]} settings")
        return parse_dataclass(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise LookaheadError(f"{where}: {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LookaheadError(f"{where}: {value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LookaheadError(f"{where}: {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise LookaheadError(f"{where}: {value!r} must be a string")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise LookaheadError(f"{where}: {value!r} must be a {hint.__name__}")
    return value


def check_range(value: Any, metadata: Mapping[str, Any], where: str) -> None:
    """Raise when a number lies outside the field's declared :class:`Range` (null and non-numbers pass)."""
    bounds = metadata.get(RANGE_KEY)
    if bounds is None or value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not bounds.contains(value):
        raise LookaheadError(f"{where}: must be {bounds.describe()}, got {value!r}")


def _is_omegaconf_mapping(value: Any) -> bool:
    from omegaconf import DictConfig

    return isinstance(value, DictConfig)


def plain_mapping(value: Any) -> dict[str, Any]:
    """A plain dict from a dict, an OmegaConf DictConfig or a dataclass instance."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):  # before Mapping: a DictConfig is one, but its lists are ListConfigs
        return dict(OmegaConf.to_container(value, resolve=True))  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return dict(value)
    raise LookaheadError(f"expected a mapping of settings, got {type(value).__name__}")


def parse_dataclass(cls: type[C], value: Any, section: str) -> C:
    """Build the dataclass ``cls`` from a mapping (or return an instance as is), checking every key, type and range.

    Errors name the key as ``<section>.<key>`` (just ``<key>`` when ``section`` is empty: the whole experiment) and
    suggest the closest valid key, because these come from YAML files and command-line overrides where typos are the
    usual mistake.
    """
    if isinstance(value, cls):
        return value
    data = plain_mapping(value)
    valid = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    prefix = f"{section}." if section else ""
    for key, item in data.items():
        where = f"{prefix}{key}"
        if key not in valid:
            hint = closest(str(key), valid)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            scope = f"{section} keys" if section else "keys"
            raise LookaheadError(f"{where}: unknown config key{suggestion} (valid {scope}: {', '.join(valid)})")
        parser = valid[key].metadata.get(PARSER_KEY)
        kwargs[key] = parser(item) if parser is not None else coerce(item, hints.get(key, Any), where)
        check_range(item, valid[key].metadata, where)  # the value as written: -1, not -1.0
    missing = [
        name
        for name, f in valid.items()
        if name not in kwargs and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise LookaheadError(f"{', '.join(f'{prefix}{k}' for k in missing)}: missing setting")
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A YAML-safe plain dict (tuples become lists) for checkpoints, exports and run directories."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(asdict(config))
