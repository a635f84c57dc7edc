"""``backends.yaml``: where each candidate model is served, and optionally what one request to it costs.

Every candidate of the router needs an OpenAI-compatible backend; a missing one is a one-line error naming the file
and the candidate, so a server never starts that could route to nowhere. API keys are never written in the file: a
backend names the environment variable that holds its key (``api_key_env``), read once at start-up and never logged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import yaml

from lightning_lookahead.errors import DataError, closest

DEFAULT_TIMEOUT_S = 60.0
#: Router costs are expected USD per this many requests (the unit λ is quoted in).
COST_UNIT_REQUESTS = 1000
_BACKEND_KEYS = ("base_url", "model", "api_key_env", "timeout", "cost")
_COST_KEYS = ("usd_per_request", "usd_per_1m_output_tokens", "expected_output_tokens")


@dataclass(frozen=True)
class Backend:
    """One candidate's OpenAI-compatible endpoint."""

    name: str
    base_url: str
    upstream_model: str
    timeout: float = DEFAULT_TIMEOUT_S
    api_key_env: str | None = None
    cost: float | None = None
    #: The key itself, read from ``api_key_env``; excluded from repr so it cannot leak into logs or tracebacks.
    api_key: str | None = field(default=None, repr=False)

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


def load_backends(
    path: str | Path,
    candidates: Sequence[str],
    *,
    default_timeout: float = DEFAULT_TIMEOUT_S,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Backend]:
    """One :class:`Backend` per candidate, in the router's candidate order (the file read and checked here).

    Entries for models that are not candidates are ignored (one file may serve several routers); a missing
    candidate, a malformed entry or an unset ``api_key_env`` variable raise :class:`DataError`. ``cost`` is optional
    per candidate: one without it is priced from the price table, if that names it (``costs/request_costs.py``).
    """
    return backends_from(read_backends(path), path, candidates, default_timeout=default_timeout, environ=environ)


def read_backends(path: str | Path) -> dict[str, Any]:
    """The file's document, its shape checked (``backends:`` mapping, optional ``defaults:``), entries not yet.

    What a server reads once at start-up and hands its workers, so every process routes with the same file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "backends file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML ({exc})".replace("\n", " ")) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("backends"), dict):
        raise DataError(path, "expected a mapping with a `backends:` mapping of candidate name → settings")
    unknown_top = set(raw) - {"backends", "defaults"}
    if unknown_top:
        raise DataError(path, f"unknown top-level key(s) {sorted(unknown_top)} (valid: backends, defaults)")
    if not isinstance(raw.get("defaults") or {}, dict):
        raise DataError(path, "`defaults` must be a mapping", key="defaults")
    return raw


def backends_from(
    document: Mapping[str, Any],
    path: str | Path,
    candidates: Sequence[str],
    *,
    default_timeout: float = DEFAULT_TIMEOUT_S,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Backend]:
    """:func:`load_backends` of a document :func:`read_backends` returned (``path`` names it in errors)."""
    path = Path(path)
    defaults = document.get("defaults") or {}
    entries: dict[str, Any] = document["backends"]
    env = os.environ if environ is None else environ
    backends = {}
    for name in candidates:
        if name not in entries:
            hint = closest(name, [str(k) for k in entries])
            suggestion = f" (did you mean {hint!r}?)" if hint else ""
            raise DataError(path, f"no backend for candidate {name!r}{suggestion}; add it under `backends:`")
        entry = entries[name]
        if not isinstance(entry, dict):
            raise DataError(path, "expected a mapping with at least `base_url`", key=f"backends.{name}")
        backends[name] = _backend(path, name, {**defaults, **entry}, default_timeout, env)
    return backends


def candidate_costs(backends: Mapping[str, Backend], candidates: Sequence[str]) -> np.ndarray | None:
    """The (C,) expected USD per 1,000 requests in candidate order (None unless the file sets every one).

    Per 1,000 requests is the unit of ``lookahead route --lam``, so one λ means the same trade-off in both.
    """
    costs = [backends[name].cost for name in candidates]
    if any(c is None for c in costs):
        return None
    return COST_UNIT_REQUESTS * np.asarray(costs, dtype=np.float64)


def _backend(path: Path, name: str, entry: dict[str, Any], default_timeout: float, env: Mapping[str, str]) -> Backend:
    key = f"backends.{name}"
    for k in entry:
        if k not in _BACKEND_KEYS:
            hint = closest(str(k), _BACKEND_KEYS)
            raise DataError(path, f"unknown setting{f'; did you mean {hint!r}?' if hint else ''}", key=f"{key}.{k}")
    base_url = entry.get("base_url")
    parsed = urlparse(base_url) if isinstance(base_url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DataError(path, "`base_url` must be an http(s) URL such as http://127.0.0.1:8001/v1", key=key)
    upstream = entry.get("model", name)
    if not isinstance(upstream, str) or not upstream:
        raise DataError(path, "`model` must be a non-empty string (the backend's own model name)", key=key)
    timeout = entry.get("timeout", default_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
        raise DataError(path, f"`timeout` must be a positive number of seconds, got {timeout!r}", key=key)
    api_key_env = entry.get("api_key_env")
    api_key = None
    if api_key_env is not None:
        if not isinstance(api_key_env, str) or not api_key_env:
            raise DataError(path, "`api_key_env` must name an environment variable", key=key)
        api_key = env.get(api_key_env)
        if not api_key:
            raise DataError(path, f"environment variable {api_key_env} (its `api_key_env`) is not set", key=key)
    cost = _cost(path, f"{key}.cost", entry.get("cost"))
    return Backend(name, base_url, upstream, float(timeout), api_key_env, cost, api_key)


def _cost(path: Path, key: str, value: Any) -> float | None:
    """Expected USD per request: a number, or ``{usd_per_1m_output_tokens, expected_output_tokens}``."""
    if value is None:
        return None
    if isinstance(value, dict):
        unknown = set(value) - set(_COST_KEYS)
        if unknown:
            raise DataError(path, f"unknown cost field(s) {sorted(unknown)} (valid: {', '.join(_COST_KEYS)})", key=key)
        if "usd_per_request" in value:
            return _cost(path, key, value["usd_per_request"])
        price, tokens = value.get("usd_per_1m_output_tokens"), value.get("expected_output_tokens")
        if price is None or tokens is None:
            expected = "usd_per_request, or usd_per_1m_output_tokens and expected_output_tokens"
            raise DataError(path, f"give {expected}", key=key)
        return _cost(path, key, _number(path, key, price) * _number(path, key, tokens) / 1e6)
    return _number(path, key, value)


def _number(path: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise DataError(path, f"expected a non-negative number, got {value!r}", key=key)
    return float(value)
