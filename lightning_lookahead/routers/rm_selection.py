"""Reward-model selection: an UPPER-BOUND reference, NOT DEPLOYABLE — it reads every candidate's real test response.

``rm:MODEL`` scores each candidate's actual response to a benchmark prompt with a reward model (any one-output
``AutoModelForSequenceClassification``, hub id or local folder) and picks the best, the "Reward-model select" row of
the paper's Table 1. Routing a new prompt this way would mean querying every candidate first, which is what a router
exists to avoid, so it is a :class:`Router` for ``lookahead evaluate`` only: ``score`` / ``route`` of new prompts
refuse, like the ``gt_response`` bound, and ``needs_responses`` tells the serving code the same.

The scoring is :class:`~lightning_lookahead.scorers.reward_model.RewardModelScorer`, the one ``lookahead data score``
uses. Scores are kept in ``<cache_dir>/<key>.npy``, keyed by the model (its files' hash for a local folder) and the
sha256 of every (prompt, response) text, so a second evaluation of the same items reads instead of re-scoring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.array_cache import read_array, write_array
from lightning_lookahead.models.embeddings import hash_dir, texts_sha256
from lightning_lookahead.routers.base import Router
from lightning_lookahead.scorers.base import ScoreItem

#: Where scores go when nobody says otherwise.
DEFAULT_CACHE_DIR = Path("~/.cache/lightning_lookahead/reward_scores")
#: Bump when the way texts are built or scored changes, so old cache files miss.
SCORE_VERSION = 1


class RewardModelRouter(Router):
    """Picks, per prompt, the candidate whose real response the reward model scores highest (not deployable)."""

    #: Raw reward-model outputs, on the model's own scale: rules min-max normalise them per prompt, as true scores.
    score_kind: ClassVar[str] = "true_scores"
    #: Reads the candidates' real responses: cannot route new prompts (serving/app.py checks this).
    needs_responses: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 8,
        device: str = "cpu",
        cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
        scorer: Any = None,
    ) -> None:
        from lightning_lookahead.scorers.reward_model import RewardModelScorer

        self.model = model
        self.name = f"rm:{model} (upper bound, not deployable)"
        self.scorer = scorer or RewardModelScorer(model, batch_size=batch_size, device=device)
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self._model_key: str | None = None

    def score_matrix(self, examples: Sequence[RoutingExample], candidates: Sequence[str]) -> np.ndarray:
        """The reward of every (prompt, real response) pair, shape (len(examples), len(candidates))."""
        for ex in examples:
            if len(ex.responses) != len(candidates) or not any(str(r).strip() for r in ex.responses):
                raise LookaheadError(
                    f"router {self.name}: prompt {ex.prompt_id!r} lacks the candidates' responses; this upper bound "
                    "only scores benchmark items that hold every candidate's real response"
                )
        items = [
            ScoreItem(f"{ex.prompt_id}#{j}", name, ex.prompt, str(ex.responses[j]), domain=ex.benchmark.lower())
            for ex in examples
            for j, name in enumerate(candidates)
        ]
        if not items:
            return np.zeros((len(examples), len(candidates)))
        path = self._cache_path(items)
        cached = self._read(path, len(items))
        if cached is not None:
            return cached.reshape(len(examples), len(candidates))
        results = self.scorer.score(items)
        bad = next((r for r in results if r.value is None), None)
        if bad is not None:
            raise LookaheadError(f"router {self.name}: {bad.error}")
        values = np.asarray([r.value for r in results], dtype=np.float64)
        self._write(path, values)
        return values.reshape(len(examples), len(candidates))

    # --- new prompts: refused ------------------------------------------------------------------------------------
    def score(self, prompts: Sequence[str], **_: Any) -> np.ndarray:
        raise self._refusal()

    def route(self, prompts: Sequence[str], **_: Any) -> list:
        raise self._refusal()

    def _refusal(self) -> LookaheadError:
        return LookaheadError(
            f"router {self.name!r} reads the candidates' real responses; it cannot route new prompts "
            "(use it with `lookahead evaluate --router rm:MODEL` on benchmark items)"
        )

    # --- score cache ---------------------------------------------------------------------------------------------
    def _cache_path(self, items: Sequence[ScoreItem]) -> Path | None:
        if self.cache_dir is None:
            return None
        if self._model_key is None:
            local = Path(self.model)
            content = hash_dir(local) if local.is_dir() else "hub"
            self._model_key = f"reward-v{SCORE_VERSION}|{self.model}|{content}"
        texts = [f"{item.prompt}\0{item.response}" for item in items]
        key = hashlib.sha256(f"{self._model_key}\n{texts_sha256(texts)}".encode()).hexdigest()
        return self.cache_dir / f"{key}.npy"

    @staticmethod
    def _read(path: Path | None, n: int) -> np.ndarray | None:
        return read_array(path, "reward-score", lambda a: a.shape == (n,))

    def _write(self, path: Path | None, values: np.ndarray) -> None:
        write_array(path, values, "reward scores")


def parse_rm_router(spec: str) -> RewardModelRouter:
    """``rm:MODEL`` (hub id or local folder) → the router; the model loads on first scoring."""
    kind, _, model = spec.partition(":")
    if kind != "rm" or not model.strip():
        raise LookaheadError(f"--router {spec!r}: name a reward model, e.g. rm:Skywork/Skywork-Reward-Llama-3.1-8B")
    return RewardModelRouter(model.strip())
