"""Settings of ``model:`` for ``kind: gt_response``: an ORACLE-STYLE UPPER BOUND that reads the real responses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from lightning_lookahead.models.predictor import BackboneConfig, Pooling
from lightning_lookahead.typed import at_least


@dataclass
class GTResponseConfig(BackboneConfig):
    """Each candidate is scored from ``prompt ‖ its real response``; it cannot route new prompts."""

    kind: str = "gt_response"
    #: Tokens per (prompt, response) pair incl. specials; null → the backbone's limit.
    max_length: int | None = field(default=512, metadata=at_least(4))
    #: Tokens guaranteed to the response when prompt and response must share max_length; null → half.
    max_response_tokens: int | None = field(default=None, metadata=at_least(1))
    pooling: Pooling = "cls"
    #: End the response with EOS; null → only for tokenizers without a pair template (causal LMs, as the original).
    append_eos: bool | None = None

    needs_responses: ClassVar[bool] = True
