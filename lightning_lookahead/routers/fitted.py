"""Where fitted references (kNN, clusters, ``domain``) get their training prompts, and the one call scripts use.

The CLI goes through :func:`fit_for_evaluation` (``lookahead evaluate --router knn:100 --fit-family all ...``);
scripts call :func:`fit_and_score`, which fits one router on a split and scores its validation and test items.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.config.compose import compose_data
from lightning_lookahead.config.schema import DataConfig
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.embeddings import DEFAULT_EMBEDDER, CachedEmbedder, Embedder, SentenceEncoder
from lightning_lookahead.routers.base import FittedRouter
from lightning_lookahead.routers.domain import DomainRouter
from lightning_lookahead.routers.embedding_baselines import EmbeddingRouter, default_embedder, parse_embedding_router


def parse_fitted_router(spec: str, embedder: Embedder | None = None) -> FittedRouter:
    """``domain``, ``smoothie[:N0]`` or an embedding router spec (``knn:10``, ...) → an unfitted router."""
    if spec.partition(":")[0] == "smoothie":
        from lightning_lookahead.routers.smoothie import parse_smoothie

        return parse_smoothie(spec, embedder)
    return DomainRouter() if spec == "domain" else parse_embedding_router(spec, embedder)


def fit_data_config(
    data_dir: str | Path,
    candidates: Sequence[str],
    *,
    family: str = "code",
    protocol: str = "paper",
    fold: int | None = None,
    overrides: Sequence[str] = (),
) -> DataConfig:
    """The data section for fitting (``evaluate --fit-family/--fit-protocol/--fold/--fit-set``).

    Schema defaults ← family, protocol, fold ← ``key=value`` overrides, through
    :func:`~lightning_lookahead.config.compose.compose_data` (the experiments' composer), with the same errors.
    """
    if fold is not None and protocol != "kfold":
        raise LookaheadError(f"--fold {fold} needs --fit-protocol kfold (the paper protocol has no folds)")
    settings: dict[str, Any] = {
        "family": family,
        "protocol": protocol,
        "data_dir": str(data_dir),
        "candidates": list(candidates),
    }
    if fold is not None:
        settings["kfold"] = {"fold": fold}
    return compose_data(settings, overrides, overrides_source="--fit-set")


def fit_for_evaluation(
    routers: Sequence[FittedRouter],
    benchmarks: Mapping[str, list[RoutingExample]],
    data: DataConfig,
    *,
    embedder: str | None = None,
) -> dict[str, list[RoutingExample]]:
    """Fit ``routers`` on the training split ``data`` makes (:func:`fit_data_config`) and return the benchmark items
    to evaluate every router on.

    Benchmarks of the fitted family are replaced by the split's test items: under ``kfold`` that is the held-out fold
    only (nothing is scored on prompts a router was fitted on), under ``paper`` the whole benchmark (or its
    ``max_eval_prompts`` subset). Other benchmarks share no prompts with the fit and stay whole.
    """
    from lightning_lookahead.data.splits import make_splits

    splits = make_splits(data, Path(data.data_dir))
    shared = default_embedder(embedder, Path(data.cache_dir) / "embeddings")
    source: dict[str, Any] = {"family": data.family, "protocol": data.protocol}
    if data.protocol == "kfold":
        source.update(fold=data.kfold.fold, k=data.kfold.k)
    for router in routers:
        if isinstance(router, EmbeddingRouter):
            router.embedder = router.embedder or shared
        router.fit_source = dict(source)
        router.fit(splits.train)
    return {name: list(splits.test.get(name, items)) for name, items in benchmarks.items()}


def fit_and_score(
    spec: str,
    splits: Any,
    candidates: Sequence[str],
    cache_dir: str | Path | None = None,
    *,
    embedder: Embedder | str | None = None,
    cache_queries: bool = False,
) -> dict[str, Any]:
    """Fit one ``spec`` router (``domain``, ``knn:K``, ...) on ``splits.train``; score ``splits.val`` and each test.

    Returns ``{"router", "val": (n_val, N), "test": {benchmark: (n, N)}, "fit_seconds", "route_seconds", "n_train",
    "routed_prompts"}``. Training embeddings are cached in ``<cache_dir>/embeddings`` (``cache_dir`` is the data cache,
    ``data.cache_dir``, as in ``lookahead evaluate``; None: ``~/.cache/lightning_lookahead/embeddings``). Routed prompts
    are embedded afresh unless ``cache_queries``, so ``route_seconds`` (embedding + scoring of every val and test
    prompt) is a real routing cost. ``embedder`` is an :class:`Embedder` (share one across calls to load the model
    once), an encoder name or directory, or None for MiniLM.
    """
    router = parse_fitted_router(spec)
    if isinstance(router, EmbeddingRouter):
        encoder = SentenceEncoder(embedder or DEFAULT_EMBEDDER) if not isinstance(embedder, Embedder) else embedder
        router.embedder = CachedEmbedder(encoder, None if cache_dir is None else Path(cache_dir) / "embeddings")
        if not cache_queries:
            router.query_embedder = encoder
    router.fit(splits.train)
    start = time.perf_counter()
    val = router.score_matrix(splits.val, candidates)
    test = {name: router.score_matrix(items, candidates) for name, items in splits.test.items()}
    route_seconds = time.perf_counter() - start
    return {
        "router": router.name,
        "val": val,
        "test": test,
        "fit_seconds": router.fit_seconds,
        "route_seconds": route_seconds,
        "n_train": router.n_train,
        "routed_prompts": len(splits.val) + sum(len(items) for items in splits.test.values()),
    }
