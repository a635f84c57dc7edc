"""The length a featurised prompt is batched by: routers score longest first, and bulk routing must batch a shard
exactly as they do, so the torch router, the bundle router and ``route --file`` share this one definition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _count(value: Any) -> int:
    if isinstance(value, list | tuple):
        return sum(_count(v) for v in value)
    return 1 if isinstance(value, int) and not isinstance(value, bool) else 0


def feature_length(features: Mapping[str, Any] | Sequence[int]) -> int:
    """Token count of a featurised prompt: every integer inside its list-valued features (scores excluded), or the
    length of a bundle's token-id row."""
    if not isinstance(features, Mapping):
        return _count(list(features))
    total = sum(_count(v) for k, v in features.items() if k != "scores" and isinstance(v, list | tuple))
    return total or len(str(features.get("prompt", "")))


def longest_first(features: Sequence[Mapping[str, Any] | Sequence[int]]) -> list[int]:
    """Positions in the order routers batch them: longest first, ties in input order (a stable sort)."""
    lengths = [feature_length(f) for f in features]
    return sorted(range(len(features)), key=lambda i: -lengths[i])
