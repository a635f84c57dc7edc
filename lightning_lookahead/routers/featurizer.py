"""What a predictor tells the data module: how to turn examples into cached features and batches.

The DataModule caches ``featurize`` outputs with ``datasets`` under a key built from
``featurize_fingerprint()``, so everything that changes the tokens must be in the fingerprint.
"""

from __future__ import annotations

from typing import Any, Protocol


class Featurizer(Protocol):
    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Deterministic features of one example, Arrow-serialisable (ints, floats, strings, lists).

        ``example`` has keys ``prompt_id`` (str), ``prompt`` (str), ``responses`` (list[str]),
        ``scores`` (list[float], raw), ``benchmark`` (str).
        """

    def featurize_fingerprint(self) -> str:
        """A string naming the tokenizer and every setting that changes ``featurize`` output."""

    def collate(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch: must include ``scores`` (FloatTensor (B, N), raw) and ``prompt_id`` (list[str])."""
