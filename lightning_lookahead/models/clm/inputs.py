"""Lookahead-CLM inputs: tokenise prompt and responses; collate the training layout or the routing layout.

Training reads ``prompt <Model_j> response_j EOS`` (separate rows or one shared-prefix row); every other use routes
from ``prompt <Model_0> … <Model_{N-1}>`` with no response at all (see :mod:`~lightning_lookahead.models.clm.layout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_lookahead.data.inputs import scores_tensor, tokenizer_fingerprint
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.clm.config import BatchLayout
from lightning_lookahead.models.clm.layout import CLMLayout, EncodedExample

#: Bump when ``featurize`` output changes for the same settings, so stale feature caches miss.
FEATURE_VERSION = 1


@dataclass
class CLMInputs:
    """Tokenisation and collation for Lookahead-CLM; ``train_layout`` is how training batches are laid out."""

    tokenizer: Any
    layout: CLMLayout
    train_layout: BatchLayout = "separate"
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            lay = self.layout
            self.fingerprint = (
                f"clm-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|ids={list(lay.model_id_tokens)}|"
                f"eos={lay.eos_id}|max_length={lay.max_length}|max_response_tokens={lay.max_response_tokens}"
            )

    def _encode(self, texts: list[str]) -> list[list[int]]:
        # split_special_tokens: a prompt that happens to contain "<Model_3>" or "<|im_end|>" stays plain text.
        return self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Prompt ids cut from the left; responses (+ EOS) cut from the right; none when the example has none."""
        n = self.layout.n_candidates
        responses = example.get("responses") or []
        if responses and len(responses) != n:
            raise LookaheadError(
                f"example {example.get('prompt_id')!r} has {len(responses)} responses, the pool has {n} candidates"
            )
        prompt_ids = self._encode([example["prompt"]])[0]
        response_ids = self._encode([r or "" for r in responses]) if responses else None
        encoded = self.layout.encode(prompt_ids, response_ids)
        return {
            "prompt_id": str(example["prompt_id"]),
            "prompt_ids": list(encoded.prompt_ids),
            "response_ids": [list(r) for r in encoded.response_ids],
            "scores": [float(s) for s in (example.get("scores") or [])],
        }

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        """Training: the configured layout with responses. Otherwise: the shared prompt, no responses."""
        examples = [
            EncodedExample(tuple(f["prompt_ids"]), tuple(tuple(r) for r in f["response_ids"] or ())) for f in features
        ]
        if train and self.train_layout == "separate":
            batch = self.layout.separate_batch(examples, with_responses=True)
        else:
            batch = self.layout.shared_prefix_batch(examples, with_responses=train)
            if not train:
                del batch["labels"]
        batch["scores"] = scores_tensor(features, self.layout.n_candidates)
        return batch
