"""Sequence-layout pieces the predictors share, so that no predictor imports another (models/<kind>/ stay apart).

Token-id level only: no tokenizer, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Label value ignored by the language-model losses (the PyTorch / Hugging Face convention).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    """A prompt's ids (already cut from the left) and each candidate's response ids (already cut from the right)."""

    prompt_ids: tuple[int, ...]
    response_ids: tuple[tuple[int, ...], ...]
