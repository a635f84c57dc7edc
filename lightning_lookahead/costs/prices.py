"""Candidate prices: the shipped per-model table (``prices.yaml``, source stated inside) or a user's YAML file.

Prices are USD per 1M tokens, separately for input (prompt) and output (response) tokens, because serverless
providers bill them separately and responses dominate the cost of chat workloads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lightning_lookahead.errors import DataError, LookaheadError, closest

#: The price table that ships with the package.
DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")
_PRICE_KEYS = ("input", "output")
_DOC_KEYS = ("parameters_b", "tier", "note")


@dataclass(frozen=True)
class Price:
    """USD per 1M input (prompt) and output (response) tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class PriceTable:
    """Per-model prices plus where they came from (shown in every report that uses them)."""

    prices: Mapping[str, Price]
    source: str
    path: str
    recorded: str | None = None
    notes: Mapping[str, str] = field(default_factory=dict)

    def price(self, model: str) -> Price:
        """The price of one model; an unknown model is a one-line error naming the file and the model."""
        if model not in self.prices:
            hint = closest(model, self.prices)
            suggestion = f" (did you mean {hint!r}?)" if hint else ""
            raise LookaheadError(
                f"{self.path}: no price for model {model!r}{suggestion}; add it under 'models:' or pass --prices FILE"
            )
        return self.prices[model]

    def arrays(self, candidates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input, output) USD per 1M tokens as two (C,) arrays in candidate order."""
        rows = [self.price(m) for m in candidates]
        return np.array([p.input for p in rows]), np.array([p.output for p in rows])


def _number(value: Any, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise DataError(path, f"expected a non-negative number (USD per 1M tokens), got {value!r}", key=key)
    return float(value)


def load_prices(path: str | Path | None = None) -> PriceTable:
    """Read a price YAML (default: the shipped table); every problem is a located one-line error."""
    path = Path(path) if path is not None else DEFAULT_PRICES
    if not path.is_file():
        raise LookaheadError(f"price file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise DataError(path, f"invalid YAML ({getattr(exc, 'problem', exc)})", line=line) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data["models"]:
        raise DataError(path, "expected a mapping with a non-empty 'models:' mapping of model name → {input, output}")
    prices: dict[str, Price] = {}
    notes: dict[str, str] = {}
    for model, entry in data["models"].items():
        where = f"models.{model}"
        if not isinstance(entry, dict):
            raise DataError(path, "expected a mapping with 'input' and 'output' (USD per 1M tokens)", key=where)
        for key in entry:
            if key not in _PRICE_KEYS + _DOC_KEYS:
                hint = closest(str(key), _PRICE_KEYS + _DOC_KEYS)
                raise DataError(path, f"unknown key {key!r}" + (f"; did you mean {hint!r}?" if hint else ""), key=where)
        missing = [k for k in _PRICE_KEYS if k not in entry]
        if missing:
            raise DataError(path, f"missing {' and '.join(missing)} (USD per 1M tokens)", key=where)
        prices[str(model)] = Price(*(_number(entry[k], path, f"{where}.{k}") for k in _PRICE_KEYS))
        if "note" in entry:
            notes[str(model)] = str(entry["note"])
    source = str(data.get("source") or f"user price table {path}").strip()
    recorded = data.get("recorded")
    return PriceTable(prices, source, str(path), str(recorded) if recorded is not None else None, notes)
