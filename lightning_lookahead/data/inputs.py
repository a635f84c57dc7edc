"""The contract between the data side and a predictor: examples → cached features → padded tensors.

The DataModule caches ``featurize`` outputs with ``datasets`` under a key built from ``fingerprint``, so everything
that changes the tokens must be in it; ``collate`` turns a list of features into a batch of tensors. Nothing here
depends on the training step: the one input that does (the MLM curriculum's masking) is applied by the training
module.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError


class InputBuilder(Protocol):
    """What the DataModule and the serving API ask of a predictor's inputs."""

    #: Names the tokenizer and every setting that changes ``featurize`` output (the feature-cache key).
    fingerprint: str

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Deterministic features of one example, Arrow-serialisable (ints, floats, strings, lists).

        ``example`` has keys ``prompt_id`` (str), ``prompt`` (str), ``responses`` (list[str]),
        ``scores`` (list[float], raw), ``benchmark`` (str).
        """

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        """Padded tensors of a batch, ``scores`` (B, N) included; ``train`` selects the training layout."""


def example_row(ex: RoutingExample) -> dict[str, Any]:
    """The plain, Arrow-friendly view of an example that ``InputBuilder.featurize`` receives."""
    return {
        "prompt_id": ex.prompt_id,
        "prompt": ex.prompt,
        "responses": list(ex.responses),
        "scores": [float(s) for s in ex.scores],
        "benchmark": ex.benchmark,
    }


def prompt_row(prompt: str, index: int = 0) -> dict[str, Any]:
    """A new prompt to route: no responses and no scores yet."""
    return {"prompt_id": f"prompt-{index}", "prompt": prompt, "responses": [], "scores": [], "benchmark": ""}


def scores_tensor(features: list[dict[str, Any]], n_candidates: int) -> torch.Tensor:
    """Stack the raw ``scores`` of features into a float32 (B, N) tensor, checking N against the pool.

    Features without scores (routing new prompts, where nothing is known yet) get NaN rows: fine for inference,
    and any loss or metric on them is visibly NaN rather than silently wrong.
    """
    nan_row = [math.nan] * n_candidates
    scores = torch.tensor([list(f.get("scores") or nan_row) for f in features], dtype=torch.float32)
    if scores.ndim != 2 or scores.shape[1] != n_candidates:
        raise LookaheadError(
            f"every example needs {n_candidates} scores (one per candidate), got shape {tuple(scores.shape)}"
        )
    return scores


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Name plus a short hash of the full tokenizer definition (vocab, merges, added tokens, normaliser).

    A path alone is not enough: the same directory can be re-saved with a different vocabulary, and the feature
    cache must then miss.
    """
    import hashlib
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    return f"{type(tokenizer).__name__}:{getattr(tokenizer, 'name_or_path', '')}:{digest}"
