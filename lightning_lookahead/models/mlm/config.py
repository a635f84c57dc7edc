"""Settings of ``model:`` for ``kind: mlm`` (paper: ModernBERT-base, mask_length 64, max_length 2048)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from lightning_lookahead.models.predictor import BackboneConfig
from lightning_lookahead.typed import at_least, between

MaskType = Literal["right", "random", "left", "no"]
PositionScheme = Literal["block_restart", "sequential"]


@dataclass
class MLMConfig(BackboneConfig):
    """Lookahead-MLM: a masked LM reads the prompt and one block of ``mask_length`` slots per candidate."""

    kind: str = "mlm"
    mask_length: int = field(default=32, metadata=at_least(1))
    mask_type: MaskType = "right"
    start_mask_rate: float = field(default=0.3, metadata=between(0, 1))
    mask_warmup_ratio: float = field(default=0.2, metadata=between(0, 1))
    mlm_weight: float = field(default=0.2, metadata=at_least(0))
    position_scheme: PositionScheme = "block_restart"
    sparse_mlm: bool = True
    #: Approximation (off by default): predict at most this many randomly chosen masked slots per batch.
    mlm_max_predictions: int | None = field(default=None, metadata=at_least(1))

    aux_loss_name: ClassVar[str] = "mlm_loss"

    def aux_loss_weight(self) -> float:
        return float(self.mlm_weight)
