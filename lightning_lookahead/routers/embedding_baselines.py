"""Embedding baselines of METHOD §9: kNN, hard k-means clusters and soft clusters over frozen prompt embeddings.

Each is fitted on training prompts with per-prompt min-max normalised scores (METHOD §6) and predicts, for a new
prompt, a normalised score vector in [0, 1] — an average of training vectors — which the argmax decision rule (and
the cost-aware rules, as probabilities) read like any other score matrix:

- ``knn:<k>``: the mean vector of the k training prompts with the largest dot product (cosine: embeddings are unit).
- ``hard_cluster:<k>``: k-means (scikit-learn, ``random_state=0``) with k clusters; a prompt gets its cluster's mean.
- ``soft_cluster:<k>``: the same clusters; each cluster's vector weights its members by ``softmax(−‖e_i − μ_c‖)``
  and a prompt gets ``Σ_c softmax_c(−‖e − μ_c‖) · v_c``.

They read only prompts, so unlike the response-aware bound they are deployable; their cost is one sentence embedding
per prompt. :func:`~lightning_lookahead.routers.fitted.fit_and_score` is the function scripts call; the CLI goes through
:func:`~lightning_lookahead.routers.fitted.fit_for_evaluation`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from scipy.special import softmax

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError, closest
from lightning_lookahead.metrics.normalize import normalize_scores
from lightning_lookahead.models.embeddings import DEFAULT_EMBEDDER, CachedEmbedder, Embedder, SentenceEncoder
from lightning_lookahead.routers.base import FittedRouter

#: ``--router`` kinds this module fits; the argument after the colon is k.
EMBEDDING_KINDS: tuple[str, ...] = ("knn", "hard_cluster", "soft_cluster")
#: Query rows scored at once by kNN (bounds the (rows × training prompts) similarity block).
_CHUNK = 1024


def normalized_scores(examples: Sequence[RoutingExample]) -> np.ndarray:
    """Per-prompt min-max normalised scores (all-equal rows become 0), the training targets of METHOD §6."""
    raw = torch.tensor([list(ex.scores) for ex in examples], dtype=torch.float64)
    return normalize_scores(raw, "min-max").numpy()


class EmbeddingRouter(FittedRouter):
    """Common part: embed prompts, keep the normalised training scores, time the fit, check the pool size.

    ``embedder`` embeds training prompts (default: MiniLM through an on-disk cache); ``query_embedder`` embeds the
    prompts to route (default: the same), which lets a timing run bypass the cache for the routed prompts.
    """

    kind: ClassVar[str]
    #: Predicted normalised scores in [0, 1]: cost-aware rules read them as probabilities.
    score_kind: ClassVar[str] = "probabilities"

    def __init__(self, k: int, embedder: Embedder | None = None, query_embedder: Embedder | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise LookaheadError(f"{self.kind}: k must be a positive integer, got {k!r}")
        self.k = k
        self.name = f"{self.kind}:{k}"
        self.embedder = embedder
        self.query_embedder = query_embedder
        super().__init__()
        self.n_candidates = 0

    def _embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if self.embedder is None:
            self.embedder = CachedEmbedder(SentenceEncoder(DEFAULT_EMBEDDER))
        embedder = (self.query_embedder or self.embedder) if query else self.embedder
        return np.asarray(embedder.encode([str(t) for t in texts]), dtype=np.float32)

    def fit(self, examples: Sequence[RoutingExample]) -> EmbeddingRouter:
        """Embed the training prompts and fit; ``fit_seconds`` includes the embedding (or the cache read)."""
        start = time.perf_counter()
        if self.k > len(examples):
            raise LookaheadError(f"--router {self.name}: k = {self.k} exceeds the {len(examples)} training prompts")
        values = normalized_scores(examples)
        self._fit(self._embed([ex.prompt for ex in examples], query=False), values)
        self.n_train, self.n_candidates = values.shape
        self.fit_seconds = time.perf_counter() - start
        return self

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(candidates) != self.n_candidates:
            raise LookaheadError(
                f"router {self.name} was fitted on {self.n_candidates} candidates, asked for {len(candidates)}"
            )
        if not examples:
            return np.zeros((0, self.n_candidates))
        return self._finish(self._predict(self._embed([ex.prompt for ex in examples], query=True)))

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        """Predictions → score matrix: averages of [0, 1] vectors, so the clip only removes rounding."""
        return np.clip(scores, 0.0, 1.0)

    def _fit(self, embeddings: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, embeddings: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KNNRouter(EmbeddingRouter):
    """Mean normalised score vector of the k most similar training prompts (ties: the earlier training prompt)."""

    kind = "knn"

    def _fit(self, embeddings: np.ndarray, values: np.ndarray) -> None:
        self.train_embeddings = embeddings
        self.values = values

    def neighbours(self, embeddings: np.ndarray) -> np.ndarray:
        """Indices (n, k) of each row's k nearest training prompts by dot product, most similar first."""
        out = []
        for start in range(0, len(embeddings), _CHUNK):
            sims = embeddings[start : start + _CHUNK] @ self.train_embeddings.T
            out.append(np.argsort(-sims, axis=1, kind="stable")[:, : self.k])
        return np.concatenate(out)

    def _predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self.values[self.neighbours(embeddings)].mean(axis=1)


class HardClusterRouter(EmbeddingRouter):
    """k-means on the training embeddings; a prompt gets the mean normalised score vector of its cluster."""

    kind = "hard_cluster"

    def _fit(self, embeddings: np.ndarray, values: np.ndarray) -> None:
        from sklearn.cluster import KMeans

        self.kmeans = KMeans(n_clusters=self.k, random_state=0, n_init="auto").fit(embeddings)
        labels = self.kmeans.labels_
        self.cluster_values = np.stack([self._cluster_vector(embeddings, values, labels, c) for c in range(self.k)])

    def _cluster_vector(self, embeddings: np.ndarray, values: np.ndarray, labels: np.ndarray, c: int) -> np.ndarray:
        members = labels == c
        # A cluster is empty only with fewer distinct prompts than k (sklearn warns); it falls back to the global mean.
        return values[members].mean(axis=0) if members.any() else values.mean(axis=0)

    def _predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self.cluster_values[self.kmeans.predict(embeddings)]


class SoftClusterRouter(HardClusterRouter):
    """The hard clusters, softened: members weighted by closeness to their centre, prompts by closeness to centres."""

    kind = "soft_cluster"

    def _cluster_vector(self, embeddings: np.ndarray, values: np.ndarray, labels: np.ndarray, c: int) -> np.ndarray:
        members = labels == c
        if not members.any():
            return values.mean(axis=0)
        distance = np.linalg.norm(embeddings[members] - self.kmeans.cluster_centers_[c], axis=1)
        return softmax(-distance.astype(np.float64)) @ values[members]

    def _predict(self, embeddings: np.ndarray) -> np.ndarray:
        weights = softmax(-self.kmeans.transform(embeddings).astype(np.float64), axis=1)  # (n, k)
        return weights @ self.cluster_values


ROUTER_CLASSES: dict[str, type[EmbeddingRouter]] = {
    cls.kind: cls for cls in (KNNRouter, HardClusterRouter, SoftClusterRouter)
}


def parse_embedding_router(spec: str, embedder: Embedder | None = None) -> EmbeddingRouter:
    """``knn:10`` / ``hard_cluster:8`` / ``soft_cluster:8`` → an unfitted router; one-line errors for bad specs."""
    kind, _, arg = spec.partition(":")
    if kind not in ROUTER_CLASSES:
        hint = closest(kind, ROUTER_CLASSES)
        suggestion = f"; did you mean '{hint}:<k>'?" if hint else ""
        raise LookaheadError(f"unknown embedding router {spec!r}{suggestion}")
    if not arg:
        raise LookaheadError(f"--router {spec!r}: give k after the colon, e.g. {kind}:10")
    if not arg.isdigit() or int(arg) < 1:
        raise LookaheadError(f"--router {spec!r}: k must be a positive integer, got {arg!r}")
    return ROUTER_CLASSES[kind](int(arg), embedder)


def default_embedder(name: str | None = None, cache_dir: str | Path | None = None) -> CachedEmbedder:
    """The sentence encoder ``name`` (default ``minilm``) behind an on-disk cache."""
    return CachedEmbedder(SentenceEncoder(name or DEFAULT_EMBEDDER), cache_dir)
