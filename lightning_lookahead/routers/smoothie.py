"""SMOOTHIE (Guha et al., NeurIPS 2024): label-free routing from the agreement of the candidates' responses.

SMOOTHIE models each candidate's response embedding as the true (unknown) answer's embedding plus candidate-specific
Gaussian noise, ``x_j = y + ε_j`` with ``ε_j ~ N(0, δ_j I)`` (δ_j = θ_j⁻¹). Independent noise gives
``E‖x_j − x_k‖² = δ_j + δ_k`` (up to the dimension factor), so with at least three candidates every triple (j, k, l)
identifies ``δ_j = (d_jk + d_jl − d_kl) / 2``; the estimate averages it over all pairs (k, l) not containing j. The
candidate with the least noise is the best one. No score label is read.

As in the Lookahead paper's adaptation (n0 = 1000), the expected distances for a new prompt are averaged over its
n0 nearest *training* prompts (frozen prompt embeddings, dot product) and the candidates' training responses to them.
The triplet estimate is linear in the distances, so averaging per-training-prompt estimates over the neighbours is
the same as estimating from the averaged distances; that is what is precomputed in ``fit``. Routing a prompt needs
only its embedding (the test responses are never read), so unlike the reward-model bound it is deployable.

Scores are ``−δ_j``: larger is better and the order equals θ_j's wherever δ_j > 0 (a noisy estimate can fall to
or below 0, where ``1/δ`` would flip the order). Their scale is arbitrary, so ``score_kind`` is ``true_scores``:
cost-aware rules min-max normalise them per prompt (costs/rules.py), as for any per-prompt quality score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import combinations
from typing import ClassVar

import numpy as np

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.embeddings import Embedder
from lightning_lookahead.routers.embedding_baselines import KNNRouter

#: n0 of the Lookahead paper's SMOOTHIE baseline (PAPER.md, hyper-parameters).
DEFAULT_N0 = 1000


def pairwise_sq_distances(embeddings: np.ndarray) -> np.ndarray:
    """(n, N, d) response embeddings → (n, N, N) squared Euclidean distances between candidates, per prompt."""
    x = np.asarray(embeddings, dtype=np.float64)
    sq = np.einsum("nid,nid->ni", x, x)
    d = sq[:, :, None] + sq[:, None, :] - 2.0 * np.einsum("nid,njd->nij", x, x)
    return np.maximum(d, 0.0)


def triplet_noise(distances: np.ndarray) -> np.ndarray:
    """(..., N, N) (mean) squared distances → (..., N) noise estimates δ_j, averaged over every pair (k, l) ∌ j."""
    d = np.asarray(distances, dtype=np.float64)
    n = d.shape[-1]
    if n < 3:
        raise LookaheadError(f"smoothie needs at least 3 candidates (triplets), got {n}")
    out = np.zeros(d.shape[:-1])
    for j in range(n):
        pairs = [(k, m) for k, m in combinations(range(n), 2) if j not in (k, m)]
        est = [(d[..., j, k] + d[..., j, m] - d[..., k, m]) / 2.0 for k, m in pairs]
        out[..., j] = np.mean(est, axis=0)
    return out


class SmoothieRouter(KNNRouter):
    """``smoothie[:N0]``: −δ_j, the triplet noise estimate averaged over the n0 nearest training prompts.

    It reuses the kNN router's prompt embedding and neighbour search (so ``lookahead evaluate`` and ``fit_and_score``
    give it the shared embedding cache like any embedding router); ``fit`` also embeds every training response.
    """

    kind = "smoothie"
    #: Arbitrary-scale per-prompt quality (−δ), not logits or probabilities: rules min-max normalise it per prompt.
    score_kind: ClassVar[str] = "true_scores"

    def __init__(self, n0: int = DEFAULT_N0, embedder: Embedder | None = None) -> None:
        super().__init__(n0, embedder)
        self.name = f"{self.kind}:{n0}"

    @property
    def n0(self) -> int:
        return self.k

    def fit(self, examples: Sequence[RoutingExample]) -> SmoothieRouter:
        """Embed training prompts and responses; keep each training prompt's δ estimate. Scores are never read."""
        start = time.perf_counter()
        if self.k > len(examples):
            raise LookaheadError(f"--router {self.name}: n0 = {self.k} exceeds the {len(examples)} training prompts")
        sizes = {len(ex.responses) for ex in examples}
        if len(sizes) != 1:
            raise LookaheadError(f"--router {self.name}: training prompts have different numbers of responses {sizes}")
        n_candidates = sizes.pop()
        if n_candidates < 3:
            raise LookaheadError(f"--router {self.name}: needs at least 3 candidates (triplets), got {n_candidates}")
        self.train_embeddings = self._embed([ex.prompt for ex in examples], query=False)
        flat = self._embed([r for ex in examples for r in ex.responses], query=False)
        responses = flat.reshape(len(examples), n_candidates, -1)
        self.values = -triplet_noise(pairwise_sq_distances(responses))  # (n_train, N): per-prompt −δ
        self.n_train, self.n_candidates = len(examples), n_candidates
        self.fit_seconds = time.perf_counter() - start
        return self

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        """−δ per candidate from each prompt's n0 nearest training prompts, unclipped (the prompt's responses are
        not read: ``score_matrix`` embeds only the prompt)."""
        return scores


def parse_smoothie(spec: str, embedder: Embedder | None = None) -> SmoothieRouter:
    """``smoothie`` (n0 = 1000) or ``smoothie:N0`` → an unfitted router; one-line errors for bad specs."""
    kind, sep, arg = spec.partition(":")
    if kind != "smoothie":
        raise LookaheadError(f"not a smoothie router spec: {spec!r}")
    if not sep:
        return SmoothieRouter(DEFAULT_N0, embedder)
    if not arg.isdigit() or int(arg) < 1:
        raise LookaheadError(f"--router {spec!r}: n0 must be a positive integer, got {arg!r}")
    return SmoothieRouter(int(arg), embedder)
