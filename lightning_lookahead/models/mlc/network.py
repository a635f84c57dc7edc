"""Query-only classifier: prompt → encoder → pooled state → routing head → N logits; no auxiliary loss.

The paper runs it on SmolLM2 via ``AutoModelForSequenceClassification`` (last-token pooling); here the default
backbone is a BERT-style encoder, so the summary state is the first token ([CLS]); ``pooling`` offers ``last`` for
causal backbones and ``mean``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_lookahead.models.encoder import EncoderNetwork
from lightning_lookahead.models.mlc.config import MLCConfig
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.models.prompt_inputs import PromptInputs
from lightning_lookahead.models.routing_head import RoutingHead


def build_mlc(config: MLCConfig, candidates: Sequence[str]) -> Predictor:
    """Load the encoder and attach a fresh N-output routing head."""
    from lightning_lookahead.models.backbones import load_encoder, resolve_max_length

    backbone, tok = load_encoder(
        config.backbone, trust_remote_code=config.trust_remote_code, config_overrides=config.backbone_config or None
    )
    max_length = resolve_max_length(config.max_length, backbone, tok, config.backbone)
    inputs = PromptInputs(tok, max_length, len(candidates))
    hidden = int(backbone.config.hidden_size)
    eps = float(getattr(backbone.config, "layer_norm_eps", 1e-5) or 1e-5)
    head = RoutingHead(hidden, len(candidates), dropout=config.dropout, layer_norm_eps=eps)
    network = EncoderNetwork(backbone, head, config.pooling).train()  # from_pretrained returns eval mode
    return Predictor(config=config, network=network, inputs=inputs, candidates=list(candidates))
