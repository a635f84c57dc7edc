"""Response-aware upper bound: ``prompt ‖ response_j`` → encoder → pooled state → one-output head → logit j.

ORACLE-STYLE, not deployable: a router that has already paid for N responses has nothing left to decide, so its
numbers only say how much a router could gain if it knew the responses.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_lookahead.models.encoder import EncoderNetwork
from lightning_lookahead.models.gt_response.config import GTResponseConfig
from lightning_lookahead.models.gt_response.inputs import PairInputs
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.models.routing_head import RoutingHead


def build_gt_response(config: GTResponseConfig, candidates: Sequence[str]) -> Predictor:
    """Load the encoder and attach a one-output routing head; the N scalars of a prompt form its logits."""
    from lightning_lookahead.models.backbones import load_encoder, resolve_max_length

    backbone, tok = load_encoder(
        config.backbone, trust_remote_code=config.trust_remote_code, config_overrides=config.backbone_config or None
    )
    max_length = resolve_max_length(config.max_length, backbone, tok, config.backbone)
    inputs = PairInputs(
        tok, max_length, len(candidates), max_response_tokens=config.max_response_tokens, append_eos=config.append_eos
    )
    hidden = int(backbone.config.hidden_size)
    eps = float(getattr(backbone.config, "layer_norm_eps", 1e-5) or 1e-5)
    head = RoutingHead(hidden, 1, dropout=config.dropout, layer_norm_eps=eps)
    network = EncoderNetwork(backbone, head, config.pooling, n_per_row=len(candidates)).train()
    return Predictor(config=config, network=network, inputs=inputs, candidates=list(candidates))
