"""``--router`` specs → routers: one place that knows every score-matrix router by name.

A fitted router's module is imported only when a spec names it, so naming ``oracle`` loads no sentence encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.routers.base import FixedRouter, OracleRouter, RandomRouter, Router

#: The ``--router`` specs, as errors list them.
ROUTER_SPECS = (
    "oracle",
    "random",
    "random:<seed>",
    "fixed:<model>",
    "fixed:all",
    "knn:<k>",
    "hard_cluster:<k>",
    "soft_cluster:<k>",
    "domain",
    "smoothie",
    "smoothie:<n0>",
    "rm:<model>",
)


def parse_router(spec: str, candidates: Sequence[str]) -> list[Router]:
    """Turn a ``--router`` value into routers; ``fixed:all`` expands to one per candidate."""
    kind, _, arg = spec.partition(":")
    if kind == "oracle" and not arg:
        return [OracleRouter()]
    if kind == "random":
        try:
            return [RandomRouter(seed=int(arg) if arg else 0)]
        except ValueError:
            raise LookaheadError(f"--router {spec!r}: the seed after 'random:' must be an integer") from None
    if kind == "fixed":
        if not arg:
            raise LookaheadError(f"--router {spec!r}: name a model, e.g. fixed:{candidates[0]} (or fixed:all)")
        if arg == "all":
            return [FixedRouter(model) for model in candidates]
        if arg not in candidates:
            raise unknown_name("model for --router fixed", arg, candidates)
        return [FixedRouter(arg)]
    if kind == "domain" and not arg:  # fitted on training prompts before use (CLI: --fit-*), like the next ones
        from lightning_lookahead.routers.domain import DomainRouter

        return [DomainRouter()]
    if kind in ("knn", "hard_cluster", "soft_cluster"):
        from lightning_lookahead.routers.embedding_baselines import parse_embedding_router

        return [parse_embedding_router(spec)]
    if kind == "smoothie":
        from lightning_lookahead.routers.smoothie import parse_smoothie

        return [parse_smoothie(spec)]
    if kind == "rm":  # reads the real test responses: an evaluation-only upper bound
        from lightning_lookahead.routers.rm_selection import parse_rm_router

        return [parse_rm_router(spec)]
    raise unknown_name("router", spec, ROUTER_SPECS)
