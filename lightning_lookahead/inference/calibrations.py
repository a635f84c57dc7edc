"""Named routing settings a run keeps beside its weights: ``<run_dir>/calibrations.json``.

``lookahead calibrate`` writes one entry per name (a rule, its λ or τ, and the candidate costs it was fitted with);
``serve`` answers ``model: "router:<name>"`` with it and ``route --calibration NAME`` applies it. The costs are kept
because λ and τ only mean something for the costs they were fitted with: both apply the calibration with its own
costs, and ``serve`` warns at start-up when its backends' costs differ from them.
No torch here: the server and the CLI read this before any model loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.data.io import write_atomic
from lightning_lookahead.errors import DataError, LookaheadError

CALIBRATIONS_FILE = "calibrations.json"
FORMAT_VERSION = 1
#: Names that are not valid: ``router:<name>`` must not collide with ``router:λ=...`` / ``router:lambda=...``.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Calibration:
    """One named setting: a penalty or threshold :class:`DecisionRule` with the candidate costs it was fitted with."""

    name: str
    candidates: tuple[str, ...]
    #: The rule, its λ or τ, and (C,) expected USD per 1,000 requests per candidate, in ``candidates`` order.
    decision: DecisionRule
    #: What was asked for, e.g. ``{"cost": 2.5}`` (USD per 1,000) or ``{"share": {"model": "X", "p": 0.2}}``.
    target: dict[str, Any] = field(default_factory=dict)
    #: What the setting reached on the held-out part of the log, with its interval and the log's sizes.
    achieved: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        check_name(self.name)
        rule = self.decision
        if rule.rule not in ("penalty", "threshold"):
            raise LookaheadError(f"calibration {self.name!r}: rule must be penalty or threshold, got {rule.rule!r}")
        if rule.costs is None or len(rule.costs) != len(self.candidates):
            n_costs, n_candidates = len(rule.costs or ()), len(self.candidates)
            raise LookaheadError(f"calibration {self.name!r}: {n_costs} costs for {n_candidates} candidates")

    @property
    def costs(self) -> tuple[float, ...]:
        assert self.decision.costs is not None  # checked when made
        return self.decision.costs

    def to_json(self) -> dict[str, Any]:
        """The file's entry (format 1: ``rule``, ``candidates``, ``costs``, ``lam``, ``tau`` side by side)."""
        rule = self.decision
        out = {"name": self.name, "rule": rule.rule, "candidates": list(self.candidates), "costs": list(self.costs)}
        out |= {"lam": rule.lam, "tau": rule.tau}
        return {**out, "target": self.target, "achieved": self.achieved, "created": self.created}

    @classmethod
    def from_json(cls, name: str, entry: Mapping[str, Any]) -> Calibration:
        """An entry of the file (KeyError: a missing field; TypeError, ValueError or LookaheadError: a bad one)."""
        rule = DecisionRule(
            entry["rule"],
            lam=float(entry.get("lam", 0.0)),
            tau=float(entry.get("tau", 0.5)),
            costs=tuple(float(c) for c in entry["costs"]),
        )
        return cls(
            name=str(name),
            candidates=tuple(str(c) for c in entry["candidates"]),
            decision=rule,
            target=dict(entry.get("target") or {}),
            achieved=dict(entry.get("achieved") or {}),
            created=str(entry.get("created", "")),
        )


def check_name(name: str) -> str:
    """A calibration name usable as ``router:<name>``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise LookaheadError(
            f"calibration name {name!r} must start with a letter and hold only letters, digits, '_', '.' or '-' "
            "(at most 64 characters)"
        )
    return name


def calibrations_path(home: str | Path) -> Path:
    return Path(home) / CALIBRATIONS_FILE


def load_calibrations(home: str | Path | None, candidates: Sequence[str] | None = None) -> dict[str, Calibration]:
    """Every calibration stored in ``home`` (a run directory), by name; ``{}`` when there is no file.

    With ``candidates``, each must be for exactly that pool in that order (else a one-line error naming the file).
    """
    if home is None:
        return {}
    path = calibrations_path(home)
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("calibrations"), dict):
        raise DataError(path, 'expected {"version": 1, "calibrations": {name: {...}}}')
    out = {}
    for name, entry in raw["calibrations"].items():
        if not isinstance(entry, dict):
            raise DataError(path, "expected an object", key=f"calibrations.{name}")
        try:
            cal = Calibration.from_json(str(name), entry)
        except KeyError as exc:
            raise DataError(path, f"missing field {exc.args[0]!r}", key=f"calibrations.{name}") from None
        except (TypeError, ValueError, LookaheadError) as exc:
            raise DataError(path, str(exc), key=f"calibrations.{name}") from None
        if candidates is not None and list(cal.candidates) != list(candidates):
            raise DataError(
                path,
                f"fitted for candidates {list(cal.candidates)}, but the router scores {list(candidates)}",
                key=f"calibrations.{name}",
            )
        out[cal.name] = cal
    return out


def save_calibration(home: str | Path, calibration: Calibration) -> Path:
    """Add or replace ``calibration`` in ``home``'s file, atomically (the other entries are kept)."""
    path = calibrations_path(home)
    existing: Mapping[str, Calibration] = load_calibrations(home) if path.is_file() else {}
    entries = {name: cal.to_json() for name, cal in existing.items()}
    entries[calibration.name] = calibration.to_json()
    for entry in entries.values():
        entry.pop("name", None)
    text = json.dumps({"version": FORMAT_VERSION, "calibrations": entries}, indent=2, allow_nan=False) + "\n"
    write_atomic(path, text)
    return path
