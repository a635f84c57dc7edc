"""Lookahead-MLM inputs: tokenise a prompt and its candidates' responses, collate them into the layout's tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_lookahead.data.inputs import scores_tensor, tokenizer_fingerprint
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.mlm.layout import MLMLayout

#: Bump when ``featurize`` output changes for the same settings, so stale feature caches miss.
FEATURE_VERSION = 1


@dataclass
class MLMInputs:
    """Tokenisation and collation for Lookahead-MLM; kept apart from the network so it pickles cheaply."""

    tokenizer: Any
    layout: MLMLayout
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = (
                f"mlm-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|"
                f"n={self.layout.n_candidates}|response_tokens={self.layout.mask_length}"
            )

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Prompt ids whole (the layout cuts them from the left per batch), responses cut to ``mask_length``.

        Missing responses (routing a new prompt) become empty blocks: at rate 1 nothing of them is shown anyway.
        """
        n = self.layout.n_candidates
        responses = example.get("responses") or [""] * n
        if len(responses) != n:
            raise LookaheadError(
                f"example {example.get('prompt_id')!r} has {len(responses)} responses, the pool has {n} candidates"
            )
        tok = self.tokenizer
        prompt_ids = tok(example["prompt"], add_special_tokens=False, verbose=False)["input_ids"]
        response_ids = tok([r or "" for r in responses], add_special_tokens=False, verbose=False)["input_ids"]
        return {
            "prompt_id": str(example["prompt_id"]),
            "prompt_ids": [int(t) for t in prompt_ids],
            "response_ids": [[int(t) for t in r[: self.layout.mask_length]] for r in response_ids],
            "scores": [float(s) for s in (example.get("scores") or [])],
        }

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        """Every slot masked (the routing input) plus the responses the training curriculum may show."""
        encoded = [self.layout.encode_example(f["prompt_ids"], f["response_ids"]) for f in features]
        batch = self.layout.collate(encoded)
        batch["scores"] = scores_tensor(features, self.layout.n_candidates)
        return batch
