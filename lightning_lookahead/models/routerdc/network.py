"""RouterDC's network: prompt → encoder → pooled query embedding → cosine similarity to N candidate embeddings / τ.

When a training batch carries ``cluster`` ids it also returns the sample–sample contrastive loss over the batch's
query embeddings as ``aux_loss`` (weight λ = ``sample_weight``). The sample–LLM loss is the routing loss
``loss.name: routerdc`` (``training/losses.py``), so the shared training module adds the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_lookahead.models.encoder import pool
from lightning_lookahead.models.predictor import NetworkOutput, Pooling, Predictor
from lightning_lookahead.models.routerdc.config import RouterDCConfig
from lightning_lookahead.models.routerdc.inputs import RouterDCInputs


def cosine_logits(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """``cos(q_i, k_j) / τ`` as a (len(q), len(k)) matrix, in float32 (fp16 norms overflow)."""
    return F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T / temperature


def sample_sample_loss(queries: torch.Tensor, clusters: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch InfoNCE between queries: same-cluster queries are positives, other-cluster queries negatives.

    For an anchor i and each other query j of its cluster, ``−log( e^{s_ij} / (e^{s_ij} + Σ_{k ∉ C(i)} e^{s_ik}) )``
    with ``s = cos / τ``; averaged over j, then over the anchors that have a positive and a negative. Unlike the
    authors' code (one random positive, H = 3 random negatives per anchor) every pair is used, so the loss is
    deterministic. Ids below 0 (prompts without a cluster) take no part; no valid anchor gives 0 (with a gradient).
    """
    sim = cosine_logits(queries, queries, temperature)  # (B, B)
    known = clusters >= 0
    same = (clusters.unsqueeze(0) == clusters.unsqueeze(1)) & known.unsqueeze(0) & known.unsqueeze(1)
    eye = torch.eye(len(clusters), dtype=torch.bool, device=clusters.device)
    positive = same & ~eye
    negative = ~same & known.unsqueeze(0) & known.unsqueeze(1)
    anchors = positive.any(dim=1) & negative.any(dim=1)
    if not bool(anchors.any()):
        return sim.sum() * 0.0
    # A finite fill: a row of -inf would make logsumexp's backward NaN even where its gradient is zero.
    filled = sim.masked_fill(~negative, torch.finfo(sim.dtype).min)
    negatives = torch.logsumexp(filled, dim=1, keepdim=True)  # (B, 1)
    per_pair = torch.logaddexp(sim, negatives) - sim  # −log(e^s / (e^s + Σ_neg e^s_neg))
    per_anchor = (per_pair * positive).sum(dim=1) / positive.sum(dim=1).clamp(min=1)
    return per_anchor[anchors].mean()


class RouterDCNetwork(nn.Module):
    """Encoder → pooled state ``E(x)``; logits ``cos(E(x), k_j) / τ`` against learnable candidate embeddings ``k``."""

    def __init__(
        self, backbone: nn.Module, n_candidates: int, pooling: Pooling, temperature: float, init_std: float
    ) -> None:
        super().__init__()
        self.backbone = backbone
        hidden = int(backbone.config.hidden_size)
        self.candidate_embeddings = nn.Parameter(torch.randn(n_candidates, hidden) * init_std)
        self.pooling = pooling
        self.temperature = temperature

    def forward(self, batch: Mapping[str, torch.Tensor]) -> NetworkOutput:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        hidden = self.backbone(**inputs)[0]
        queries = pool(hidden, batch["attention_mask"], self.pooling)
        logits = cosine_logits(queries, self.candidate_embeddings, self.temperature)
        aux = None
        if "cluster" in batch:
            aux = sample_sample_loss(queries, batch["cluster"], self.temperature)
        return NetworkOutput(logits=logits, aux_loss=aux)


def build_routerdc(config: RouterDCConfig, candidates: Sequence[str]) -> Predictor:
    """Load the encoder, then draw the N candidate embeddings (backbone first: a seed gives the same weights)."""
    from lightning_lookahead.models.backbones import load_encoder, resolve_max_length

    backbone, tok = load_encoder(
        config.backbone, trust_remote_code=config.trust_remote_code, config_overrides=config.backbone_config or None
    )
    max_length = resolve_max_length(config.max_length, backbone, tok, config.backbone)
    inputs = RouterDCInputs(tok, max_length, len(candidates))
    network = RouterDCNetwork(
        backbone, len(candidates), config.pooling, config.temperature, config.embedding_init_std
    ).train()  # from_pretrained returns eval mode
    return Predictor(config=config, network=network, inputs=inputs, candidates=list(candidates))
