"""What the encoder predictors (MLC, GT-response) share: the network, its pooling and right padding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lightning_lookahead.models.predictor import NetworkOutput, Pooling
from lightning_lookahead.models.routing_head import RoutingHead


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """(B, T, h) → (B, h): first token, last real token, or the mean over real tokens (right padding assumed)."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = attention_mask.sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def pad_id_of(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its EOS id, else 0 (padding is masked out anyway)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def pad_right(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (B, T) of token-id rows."""
    longest = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), longest), dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[b, : len(row)] = 1
    return input_ids, attention


class EncoderNetwork(nn.Module):
    """Encoder → pooled state → routing head; ``(B·N, 1)`` outputs are folded to ``(B, N)`` by ``n_per_row``."""

    def __init__(self, backbone: nn.Module, head: RoutingHead, pooling: Pooling, n_per_row: int = 1) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.pooling = pooling
        self.n_per_row = n_per_row

    def forward(self, batch: Mapping[str, torch.Tensor]) -> NetworkOutput:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        hidden = self.backbone(**inputs)[0]
        logits = self.head(pool(hidden, batch["attention_mask"], self.pooling))
        if self.n_per_row > 1:  # one scalar per (prompt, candidate) row, prompt-major
            logits = logits.view(-1, self.n_per_row)
        return NetworkOutput(logits=logits)
