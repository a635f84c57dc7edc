"""Settings of ``model:`` for ``kind: clm`` (paper: SmolLM2-135M, max_length 2048, aux weight 0.5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from lightning_lookahead.models.predictor import BackboneConfig
from lightning_lookahead.typed import at_least, between

BatchLayout = Literal["separate", "shared_prefix"]


@dataclass
class CLMConfig(BackboneConfig):
    """Lookahead-CLM: candidate j is scored at its ``<Model_j>`` token, whose response the model learns to write."""

    kind: str = "clm"
    backbone: str = "smollm2"
    dropout: float = field(default=0.1, metadata=between(0, 1, high_open=True))
    #: Tokens of one (prompt, candidate) sequence; null → the backbone's limit.
    max_length: int | None = field(default=2048, metadata=at_least(2))
    #: Response tokens kept per candidate (EOS included); null → whatever fits in max_length (the paper).
    max_response_tokens: int | None = field(default=None, metadata=at_least(1))
    aux_weight: float = field(default=0.5, metadata=at_least(0))
    #: Training batch layout (routing always shares the prompt): separate rows, or prompt once + N blocks.
    layout: BatchLayout = "separate"
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"
    #: Std of the noise added to the mean-initialised ``<Model_j>`` rows; null → hidden_size^-0.5 (§7).
    id_noise_std: float | None = field(default=None, metadata=at_least(0))

    #: Response positions projected to the vocabulary at once in the LM loss (bounds its logits' memory).
    lm_loss_chunk: int = field(default=2048, metadata=at_least(1))

    aux_loss_name: ClassVar[str] = "lm_loss"

    def aux_loss_weight(self) -> float:
        return float(self.aux_weight)
