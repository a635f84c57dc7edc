"""Lookahead-CLM network (METHOD §7): the ``<Model_j>`` state through the routing head scores candidate j.

Memory: the network runs as ``base model → hidden states``; the vocabulary projection (``lm_head``) is applied only
at the positions that predict a response token, so full-vocabulary logits are never built for prompts or padding,
and there ``lm_loss_chunk`` positions at a time (``chunked_loss.py``), so never for all response positions at once.
Causal attention means the ``<Model_j>`` state never sees the response that follows it, so routing needs none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.clm.chunked_loss import chunked_cross_entropy
from lightning_lookahead.models.clm.config import CLMConfig
from lightning_lookahead.models.clm.inputs import CLMInputs
from lightning_lookahead.models.clm.layout import CLMLayout, additive_mask, shifted_targets
from lightning_lookahead.models.predictor import NetworkOutput, Predictor
from lightning_lookahead.models.routing_head import RoutingHead


def _check_lm_head(model: nn.Module, token: int) -> None:
    """Probe: ``lm_head(base_model(x))`` must be the model's own logits (no logit scaling or soft-capping)."""
    ids = torch.tensor([[token, token, token]], device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            full = model(input_ids=ids).logits.float()
            split = model.get_output_embeddings()(model.base_model(input_ids=ids).last_hidden_state).float()
    finally:
        model.train(was_training)
    if split.shape != full.shape or not torch.allclose(split, full, atol=1e-4, rtol=1e-3):
        raise LookaheadError(
            f"{type(model).__name__}: its output layer applied to the base model's states does not reproduce the "
            "model's logits (logit scaling or soft-capping?); this architecture is not supported by Lookahead-CLM"
        )


class CLMNetwork(nn.Module):
    """Causal LM + routing head (one output): logit of candidate j at ``<Model_j>``; response NLL given ``labels``."""

    def __init__(self, backbone: nn.Module, head: RoutingHead, n_candidates: int, lm_loss_chunk: int = 2048) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.n_candidates = n_candidates
        self.lm_loss_chunk = lm_loss_chunk

    @property
    def decoder(self) -> nn.Module:
        """The transformer body (``model.model`` for Llama): hidden states without the vocabulary projection."""
        return self.backbone.base_model

    @property
    def lm_head(self) -> nn.Module:
        return self.backbone.get_output_embeddings()

    def hidden_states(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": batch["input_ids"], "use_cache": False}
        if "allowed" in batch:
            allowed = batch["allowed"]
            if self.backbone.config._attn_implementation == "eager":
                kwargs["attention_mask"] = additive_mask(allowed, self.backbone.dtype)
            else:
                kwargs["attention_mask"] = allowed.unsqueeze(1)
            kwargs["position_ids"] = batch["position_ids"]
        else:
            kwargs["attention_mask"] = batch["attention_mask"]
        return self.decoder(**kwargs).last_hidden_state

    def lm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Token-mean next-token NLL over the response tokens (EOS included); only those positions are projected,
        ``lm_loss_chunk`` of them at a time."""
        where, targets = shifted_targets(labels)
        if targets.numel() == 0:
            return hidden.sum() * 0.0
        return chunked_cross_entropy(self.lm_head, hidden[:, :-1][where], targets, self.lm_loss_chunk)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> NetworkOutput:
        hidden = self.hidden_states(batch)
        id_index = batch["id_index"]
        if id_index.ndim == 1:  # separate rows: row b·N + j holds <Model_j> at id_index[row]
            states = hidden[torch.arange(hidden.shape[0], device=hidden.device), id_index]
        else:  # shared prefix: (B, N) positions in each prompt's row
            states = hidden.gather(1, id_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        logits = self.head(states).reshape(-1, self.n_candidates)
        labels = batch.get("labels")
        return NetworkOutput(logits=logits, aux_loss=None if labels is None else self.lm_loss(hidden, labels))


def build_clm(config: CLMConfig, candidates: Sequence[str]) -> Predictor:
    """Load the causal LM, add mean-initialised ``<Model_j>`` tokens and attach a one-output routing head."""
    from lightning_lookahead.models.backbones import load_causal_lm, model_id_tokens, resolve_max_length

    backbone, tok = load_causal_lm(
        config.backbone,
        trust_remote_code=config.trust_remote_code,
        config_overrides=config.backbone_config or None,
        attn_implementation=config.attn_implementation,
    )
    n = len(candidates)
    hidden = int(backbone.config.hidden_size)
    noise = hidden**-0.5 if config.id_noise_std is None else config.id_noise_std
    ids = model_id_tokens(tok, backbone, n, kind="special", noise_std=noise)
    if tok.eos_token_id is None:
        raise LookaheadError(f"backbone {config.backbone!r}: the tokenizer has no EOS token to end responses with")
    layout = CLMLayout(
        model_id_tokens=tuple(ids),
        eos_id=int(tok.eos_token_id),
        pad_id=int(tok.pad_token_id),
        max_length=resolve_max_length(config.max_length, backbone, tok, config.backbone),
        max_response_tokens=config.max_response_tokens,
    )
    inputs = CLMInputs(tok, layout, train_layout=config.layout)
    _check_lm_head(backbone, int(tok.eos_token_id))
    eps = float(getattr(backbone.config, "rms_norm_eps", 1e-5) or 1e-5)
    head = RoutingHead(hidden, 1, dropout=config.dropout, layer_norm_eps=eps)
    network = CLMNetwork(
        backbone, head, n, lm_loss_chunk=config.lm_loss_chunk
    ).train()  # from_pretrained returns eval mode
    return Predictor(config=config, network=network, inputs=inputs, candidates=list(candidates))
