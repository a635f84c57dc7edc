"""Query-only multi-label classifier (METHOD §9 "sc"): an encoder reads the prompt alone and a joint head scores N.

The baseline that Lookahead is measured against: same routing head and loss, but no response prediction. The paper
runs it on SmolLM2 via ``AutoModelForSequenceClassification`` (last-token pooling); here the default backbone is a
BERT-style encoder, so the summary state is the first token ([CLS]); ``pooling`` offers ``last`` for causal backbones
and ``mean``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.head import RouterHead
from lightning_lookahead.routers.base import RouterModule, RouterOutput, Stage, tokenizer_fingerprint

FEATURE_VERSION = 1


@dataclass
class PromptFeaturizer:
    """Prompt-only tokenisation with special tokens, cut from the LEFT (the question sits at the end of a prompt)."""

    tokenizer: Any
    max_length: int
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        self.tokenizer.truncation_side = "left"
        if not self.fingerprint:
            self.fingerprint = (
                f"mlc-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|max_length={self.max_length}"
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

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    def pad(self, features: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``input_ids`` and ``attention_mask`` (B, T)."""
        longest = max(len(f["input_ids"]) for f in features)
        input_ids = torch.full((len(features), longest), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(features), longest), dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[b, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            attention[b, :n] = 1
        return input_ids, attention


class MLCRouter(RouterModule):
    """Prompt → encoder → pooled state → :class:`RouterHead` → N logits; no auxiliary loss."""

    @dataclass
    class Config:
        """Settings of ``model:`` for ``kind: mlc``."""

        kind: str = "mlc"
        backbone: str = "minilm"
        trust_remote_code: bool = False
        dropout: float = 0.0
        max_length: int | None = 512  # prompt tokens incl. specials; null → the backbone's limit
        pooling: Literal["cls", "last", "mean"] = "cls"
        #: Overrides of the backbone's own config, e.g. {attention_probs_dropout_prob: 0.0} (see docs/training.md).
        backbone_config: dict[str, Any] = field(default_factory=dict)

        def __post_init__(self) -> None:
            if not 0.0 <= self.dropout < 1.0:
                raise LookaheadError(f"model.dropout must be in [0, 1), got {self.dropout}")
            if self.max_length is not None and self.max_length < 2:
                raise LookaheadError(f"model.max_length must be ≥ 2 or null, got {self.max_length}")

    def __init__(
        self,
        model: dict[str, Any] | MLCRouter.Config,
        loss: dict[str, Any] | LossConfig | None = None,
        optim: dict[str, Any] | OptimConfig | None = None,
        candidates: list[str] | None = None,
    ) -> None:
        super().__init__(model, loss, optim, candidates)
        from lightning_lookahead.models.backbones import load_encoder, resolve_max_length

        cfg = self.config
        self.backbone, self.tokenizer = load_encoder(
            cfg.backbone, trust_remote_code=cfg.trust_remote_code, config_overrides=cfg.backbone_config or None
        )
        self.max_length = resolve_max_length(cfg.max_length, self.backbone, self.tokenizer, cfg.backbone)
        self.featurizer = PromptFeaturizer(self.tokenizer, self.max_length)
        hidden = int(self.backbone.config.hidden_size)
        eps = float(getattr(self.backbone.config, "layer_norm_eps", 1e-5) or 1e-5)
        self.head = RouterHead(hidden, self.n_candidates, dropout=cfg.dropout, layer_norm_eps=eps)
        self.train()  # from_pretrained returns eval mode, and Lightning keeps a module's mode during fit

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        return self.featurizer.featurize(example)

    def featurize_fingerprint(self) -> str:
        return self.featurizer.fingerprint

    def collate(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        input_ids, attention_mask = self.featurizer.pad(features)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "scores": self.scores_tensor(features),
            "prompt_id": [str(f["prompt_id"]) for f in features],
        }

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One summary state per prompt (right padding assumed, as ``collate`` produces)."""
        if self.config.pooling == "cls":
            return hidden[:, 0]
        if self.config.pooling == "last":
            last = attention_mask.sum(dim=1).clamp(min=1) - 1
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def forward_batch(self, batch: dict[str, Any], stage: Stage) -> RouterOutput:
        hidden = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        return RouterOutput(logits=self.head(self.pool(hidden, batch["attention_mask"])), aux_loss=None)
