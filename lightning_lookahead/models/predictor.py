"""What every predictor is made of: a config dataclass, a plain ``nn.Module`` network and an input builder.

- :class:`PredictorConfig` holds the ``model:`` settings every backbone predictor shares; a predictor's own config
  subclasses it and declares its ranges with :func:`~lightning_lookahead.typed.between` metadata, so
  ``lookahead validate`` checks them all through one mechanism without loading anything.
- The **network** maps a collated batch of tensors to :class:`NetworkOutput` (routing logits (B, N) and, when the
  batch carries labels, the auxiliary loss). It is an ``nn.Module`` with no Lightning in it: training wraps it in a
  :class:`~lightning_lookahead.training.modules.predictor.PredictorModule`, serving calls it directly.
- The **input builder** (:class:`~lightning_lookahead.data.inputs.InputBuilder`) turns examples into cached features
  and features into padded tensors; the DataModule and the serving API both use it.

A builder function ``build(config, candidates) -> Predictor`` makes the last two from the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lightning_lookahead.typed import at_least, between

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lightning_lookahead.data.inputs import InputBuilder


#: How the encoder predictors summarise a sequence: first token, last real token or the mean.
Pooling = Literal["cls", "last", "mean"]


@dataclass
class PredictorConfig:
    """Settings of ``model:`` that every predictor has; ``kind`` names it in the registry."""

    #: The registry key; a subclass sets its own default.
    kind: str = ""

    #: Name of the auxiliary loss in the logs (``train/<name>``); ``aux_loss`` is logged too.
    aux_loss_name: ClassVar[str] = "aux_loss"
    #: True for oracle-style bounds that read the candidates' real responses: they cannot route new prompts.
    needs_responses: ClassVar[bool] = False

    def aux_loss_weight(self) -> float:
        """Weight of the network's auxiliary loss in the training objective (1 unless a predictor says otherwise)."""
        return 1.0


@dataclass
class BackboneConfig(PredictorConfig):
    """A pretrained backbone plus the shared routing head: the settings every built-in predictor starts from."""

    backbone: str = "minilm"
    trust_remote_code: bool = False
    dropout: float = field(default=0.0, metadata=between(0, 1, high_open=True))
    #: Positions of one sequence; null → the backbone's max_position_embeddings.
    max_length: int | None = field(default=512, metadata=at_least(2))
    #: Overrides of the backbone's own config, e.g. {attention_probs_dropout_prob: 0.0} (see docs/training.md).
    backbone_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetworkOutput:
    """What a network returns: routing logits (B, N) and, when the batch carries labels, an auxiliary loss."""

    logits: torch.Tensor
    aux_loss: torch.Tensor | None = None


@dataclass
class Predictor:
    """A built predictor: its settings, its network and the input builder that feeds it."""

    config: PredictorConfig
    network: nn.Module
    inputs: InputBuilder
    candidates: list[str]

    @property
    def tokenizer(self) -> Any:
        """The builder's tokenizer (saved with exports), or None for tokenizer-free predictors."""
        return getattr(self.inputs, "tokenizer", None)
