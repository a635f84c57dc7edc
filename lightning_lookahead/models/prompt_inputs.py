"""Prompt-only inputs with the tokenizer's special tokens, cut from the LEFT (a prompt's question sits at its end).

Shared by the query-only predictors (MLC, RouterDC): ``kind`` names the predictor in the feature-cache key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_lookahead.data.inputs import scores_tensor, tokenizer_fingerprint
from lightning_lookahead.models.encoder import pad_id_of, pad_right

FEATURE_VERSION = 1


@dataclass
class PromptInputs:
    """Tokenisation and collation for a predictor that reads the prompt alone."""

    tokenizer: Any
    max_length: int
    n_candidates: int
    kind: str = "mlc"
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        self.tokenizer.truncation_side = "left"
        if not self.fingerprint:
            self.fingerprint = (
                f"{self.kind}-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|max_length={self.max_length}"
            )

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        ids = self.tokenizer(
            example["prompt"], add_special_tokens=True, truncation=True, max_length=self.max_length, verbose=False
        )["input_ids"]
        return {
            "prompt_id": str(example["prompt_id"]),
            "input_ids": [int(t) for t in ids],
            "scores": [float(s) for s in (example.get("scores") or [])],
        }

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_right([f["input_ids"] for f in features], pad_id_of(self.tokenizer))
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "scores": scores_tensor(features, self.n_candidates),
        }
