"""The per-candidate cost vector ``serve`` and ``calibrate`` route with, in expected USD per 1,000 requests.

Each candidate's cost comes from the first place that has one: its backend's ``cost`` (backends.yaml), else the price
table (``--prices FILE``, default the shipped one) where it names the candidate, priced by the output price × the
run's mean response length for that candidate, else none. Both commands resolve costs with :func:`resolve_costs`,
so a λ fitted by one means the same trade-off when the other applies it. A router over the user's own models
usually has no entry in the shipped table: its candidates then simply have no cost, which only cost-aware rules
need. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Why a candidate has no cost (``CandidateCosts.reasons``).
NOT_IN_TABLE = "not in the price table"
NO_LENGTH = "no recorded response length"


def price_table_label(prices: str | Path | None) -> str:
    return "the shipped price table" if prices is None else f"the price table {prices}"


@dataclass(frozen=True)
class CandidateCosts:
    """Each candidate's expected USD per 1,000 requests (None: nothing prices it), where it came from, and why not."""

    candidates: tuple[str, ...]
    values: tuple[float | None, ...]
    #: Where each cost came from, e.g. "backends.yaml" or "the shipped price table"; None without a cost.
    sources: tuple[str | None, ...]
    #: Why a candidate has no cost (``NOT_IN_TABLE``, ``NO_LENGTH``, ``NO_BACKEND_COST``); None with a cost.
    reasons: tuple[str | None, ...]

    @classmethod
    def layered(
        cls,
        candidates: Sequence[str],
        layers: Sequence[tuple[Mapping[str, float], str]],
        reasons: Mapping[str, str] | None = None,
        default_reason: str = "no cost",
    ) -> CandidateCosts:
        """Each candidate's cost from the first layer ``(costs, source)`` that has one; ``reasons`` say why not."""
        values: list[float | None] = []
        sources: list[str | None] = []
        why: list[str | None] = []
        for name in candidates:
            found = next(((float(costs[name]), source) for costs, source in layers if name in costs), None)
            values.append(None if found is None else found[0])
            sources.append(None if found is None else found[1])
            why.append(None if found is not None else (reasons or {}).get(name, default_reason))
        return cls(tuple(candidates), tuple(values), tuple(sources), tuple(why))

    @property
    def missing(self) -> list[str]:
        """The candidates without a cost, in candidate order."""
        return [c for c, v in zip(self.candidates, self.values, strict=True) if v is None]

    def vector(self) -> np.ndarray | None:
        """(C,) costs in candidate order, or None unless every candidate has one (cost-aware rules need them all)."""
        if self.missing:
            return None
        return np.asarray(self.values, dtype=np.float64)

    def describe(self) -> str:
        """Where the costs come from, for reports: one source, or each source with its candidates."""
        by_source: dict[str, list[str]] = {}
        for name, source in zip(self.candidates, self.sources, strict=True):
            if source is not None:
                by_source.setdefault(source, []).append(name)
        if len(by_source) == 1 and not self.missing:
            return next(iter(by_source))
        return "; ".join(f"{source} for {', '.join(names)}" for source, names in by_source.items())

    def missing_reason(self) -> str:
        """The candidates without a cost and why, e.g. ``'a', 'b' (not in the shipped price table)``; ``""`` if none."""
        groups: dict[str, list[str]] = {}
        for name, reason in zip(self.candidates, self.reasons, strict=True):
            if reason is not None:
                groups.setdefault(reason, []).append(repr(name))
        return "; ".join(f"{', '.join(names)} ({reason})" for reason, names in groups.items())


def price_table_cost_map(
    candidates: Sequence[str],
    response_tokens: Mapping[str, float] | None,
    prices: str | Path | None = None,
    *,
    output_tokens: float | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """The candidates the price table can price, USD per 1,000 requests, and why each other one cannot.

    A candidate is priced when the table names it and its response length is known (``output_tokens`` for every
    candidate, else the run's recorded mean for it). A broken or missing ``prices`` file is still a one-line error.
    """
    from lightning_lookahead.costs.prices import load_prices

    table = load_prices(prices)
    costs: dict[str, float] = {}
    why_not: dict[str, str] = {}
    for name in candidates:
        if name not in table.prices:
            why_not[name] = NOT_IN_TABLE
            continue
        tokens = output_tokens if output_tokens is not None else (response_tokens or {}).get(name)
        if tokens is None or not math.isfinite(float(tokens)):
            why_not[name] = NO_LENGTH
            continue
        costs[name] = 1000.0 * table.prices[name].output * float(tokens) / 1e6
    return costs, why_not


def resolve_costs(
    candidates: Sequence[str],
    backend_costs: Mapping[str, float | None] | None,
    response_tokens: Mapping[str, float] | None,
    prices: str | Path | None = None,
    *,
    output_tokens: float | None = None,
    backends_label: str = "backends.yaml",
) -> CandidateCosts:
    """Each candidate's cost: its backend's ``cost`` (USD per request, in ``backend_costs``), else the price table's.

    The price table is read only when some candidate has no backend cost.
    """
    from_backend = {c: 1000.0 * float(v) for c in candidates if (v := (backend_costs or {}).get(c)) is not None}
    rest = [c for c in candidates if c not in from_backend]
    table, why_not = (
        price_table_cost_map(rest, response_tokens, prices, output_tokens=output_tokens) if rest else ({}, {})
    )
    label = price_table_label(prices)
    wording = {NOT_IN_TABLE: f"not in {label}", NO_LENGTH: f"in {label}, but the run records no response length"}
    reasons = {name: wording.get(why, why) for name, why in why_not.items()}
    length = "the run's mean response length" if output_tokens is None else f"{output_tokens:g} output tokens"
    layers = [
        (from_backend, f"the `cost` of the backends in {backends_label}"),
        (table, f"output prices of {label} × {length} (output tokens only)"),
    ]
    return CandidateCosts.layered(candidates, layers, reasons)


def price_table_costs(
    candidates: Sequence[str],
    response_tokens: Mapping[str, float] | None,
    prices: str | Path | None = None,
    *,
    output_tokens: float | None = None,
) -> np.ndarray | None:
    """(C,) expected USD per 1,000 requests: the price table's output price × each candidate's response length.

    The length is ``output_tokens`` for every candidate if given, else the run's recorded mean response length per
    candidate (``response_tokens``, from the export); None when neither is available. Only output tokens are priced
    (a server does not tokenise each request for its cost), so differences in input price between candidates are
    ignored; a ``cost`` per backend in backends.yaml replaces this. A candidate missing from the table is an error
    here; :func:`resolve_costs` leaves it without a cost instead.
    """
    if output_tokens is not None:
        tokens = np.full(len(candidates), float(output_tokens))
    elif response_tokens is None or not set(candidates) <= set(response_tokens):
        return None
    else:
        tokens = np.array([response_tokens[c] for c in candidates], dtype=np.float64)
    from lightning_lookahead.costs.prices import load_prices
    from lightning_lookahead.costs.token_counts import usd_per_1000_prompts

    return usd_per_1000_prompts(np.zeros(1), tokens, load_prices(prices), candidates)[0]
