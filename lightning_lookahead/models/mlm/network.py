"""Lookahead-MLM network (METHOD §8): a masked LM whose [CLS] state scores all N candidates through the routing head.

Finding the encoder and the MLM head without hard-coding BERT names: the encoder is ``model.base_model`` (every
``*ForMaskedLM`` exposes it through ``base_model_prefix``); the MLM head is the model's other child modules in
registration order (BERT: ``cls``; RoBERTa: ``lm_head``; ModernBERT: ``head`` then ``decoder``), which must contain
``get_output_embeddings()``. At build time a probe checks that ``head(base_model(x))`` reproduces the model's own
logits, so an architecture whose head needs more than the hidden states fails loudly instead of training wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.mlm.config import MLMConfig
from lightning_lookahead.models.mlm.inputs import MLMInputs
from lightning_lookahead.models.mlm.layout import IGNORE_INDEX, MLMLayout, max_prompt_tokens_for, sparse_mlm_loss
from lightning_lookahead.models.predictor import NetworkOutput, Predictor
from lightning_lookahead.models.routing_head import RoutingHead


def find_mlm_head(model: nn.Module) -> tuple[str, ...]:
    """Names of the children of a ``*ForMaskedLM`` that map last hidden states to vocabulary logits, in order."""
    base = getattr(model, "base_model", model)
    if base is model:
        raise LookaheadError(f"{type(model).__name__} has no separate base model; cannot split off its MLM head")
    names = tuple(
        name
        for name, child in model.named_children()
        if child is not base and not isinstance(child, nn.modules.loss._Loss)
    )
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    inside = output is not None and any(output is m for n in names for m in getattr(model, n).modules())
    if not names or not inside:
        raise LookaheadError(
            f"cannot find the MLM head of {type(model).__name__}: its output embeddings are not in a child module "
            "next to the base model"
        )
    return names


def _check_head(model: nn.Module, names: tuple[str, ...], cls_id: int, sep_id: int) -> None:
    """Probe: base model then head must give the model's own logits on a tiny input."""
    ids = torch.tensor([[cls_id, sep_id, sep_id]], device=next(model.parameters()).device)
    mask = torch.ones_like(ids)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=mask).logits.float()
            hidden = model.base_model(input_ids=ids, attention_mask=mask)[0]
            for name in names:
                hidden = getattr(model, name)(hidden)
            ok = hidden.shape == full.shape and torch.allclose(hidden.float(), full, atol=1e-4, rtol=1e-3)
    except (TypeError, RuntimeError) as exc:
        raise LookaheadError(
            f"the MLM head {names} of {type(model).__name__} does not take hidden states: {exc}"
        ) from exc
    finally:
        model.train(was_training)
    if not ok:
        raise LookaheadError(
            f"{type(model).__name__}: head {names} applied to the base model's states does not reproduce the model's "
            "MLM logits; this architecture is not supported by Lookahead-MLM"
        )


def subsample_labels(labels: torch.Tensor, cap: int) -> torch.Tensor:
    """Keep ``cap`` labelled positions chosen uniformly at random (torch's global RNG), ignore the rest.

    An approximation of the MLM objective: the vocabulary projection and its backward shrink to ``cap`` rows.
    """
    flat = labels.reshape(-1)
    index = (flat != IGNORE_INDEX).nonzero().squeeze(1)
    if index.numel() <= cap:
        return labels
    keep = index[torch.randperm(index.numel(), device=labels.device)[:cap]]
    out = torch.full_like(flat, IGNORE_INDEX)
    out[keep] = flat[keep]
    return out.view_as(labels)


class MLMNetwork(nn.Module):
    """Masked LM + routing head: logits from [CLS]; the MLM loss on ``mlm_labels`` when the batch has them."""

    def __init__(self, backbone: nn.Module, head: RoutingHead, lm_head_names: tuple[str, ...], config: MLMConfig):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.lm_head_names = lm_head_names
        self.sparse_mlm = config.sparse_mlm
        self.mlm_max_predictions = config.mlm_max_predictions
        #: True after :meth:`routing_only`: the MLM head is gone (routing never uses it).
        self.head_dropped = False

    @property
    def encoder(self) -> nn.Module:
        """The transformer body of the masked LM (a view, not a second registered copy)."""
        return self.backbone.base_model

    def routing_unused(self) -> tuple[str, ...]:
        """State-dict prefixes of the modules routing never runs: the MLM prediction head (training's auxiliary loss).

        Routing reads only the encoder's [CLS] state and the routing head, so a router loaded to route may lack them
        (:meth:`routing_only`; an export written from such a router has no head weights).
        """
        return tuple(f"backbone.{name}." for name in self.lm_head_names)

    def routing_only(self) -> MLMNetwork:
        """Drop the MLM prediction head (input embeddings tied to its vocabulary projection stay with the encoder):
        a loaded router keeps only what routing runs. The MLM loss is unavailable afterwards."""
        for name in self.lm_head_names:
            setattr(self.backbone, name, None)  # the child stays registered as None: not in the state dict
        self.head_dropped = True
        return self

    def lm_head(self, states: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., h) → vocabulary logits (..., V) through the masked LM's own prediction head."""
        if self.head_dropped:
            raise LookaheadError(
                "this MLM router was loaded for routing only: its MLM head (the training loss) is gone"
            )
        for name in self.lm_head_names:
            states = getattr(self.backbone, name)(states)
        return states

    def mlm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean CE over labelled slots; sparse projects only those states, dense all (same value, more memory)."""
        cap = self.mlm_max_predictions
        if cap is not None and self.training:
            labels = subsample_labels(labels, cap)
        if self.sparse_mlm:
            return sparse_mlm_loss(hidden, labels, self.lm_head)
        if not bool((labels != IGNORE_INDEX).any()):
            return hidden.sum() * 0.0
        logits = self.lm_head(hidden)
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> NetworkOutput:
        hidden = self.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        )[0]
        labels = batch.get("mlm_labels")
        aux = None if labels is None else self.mlm_loss(hidden, labels)
        return NetworkOutput(logits=self.head(hidden[:, 0]), aux_loss=aux)


def build_mlm(config: MLMConfig, candidates: Sequence[str]) -> Predictor:
    """Load the backbone, give each candidate an ``[unused j]`` id token, and attach a fresh routing head."""
    from lightning_lookahead.models.backbones import load_masked_lm, model_id_tokens, resolve_max_length

    backbone, tok = load_masked_lm(
        config.backbone, trust_remote_code=config.trust_remote_code, config_overrides=config.backbone_config or None
    )
    n = len(candidates)
    ids = model_id_tokens(tok, backbone, n, kind="unused")
    cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
    sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
    if cls_id is None or sep_id is None:
        raise LookaheadError(f"backbone {config.backbone!r}: the tokenizer needs a [CLS]/[SEP] (or BOS/EOS) token")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else sep_id
    max_length = resolve_max_length(config.max_length, backbone, tok, config.backbone)
    layout = MLMLayout(
        cls_id=int(cls_id),
        sep_id=int(sep_id),
        pad_id=int(pad_id),
        model_id_tokens=tuple(ids),
        mask_length=config.mask_length,
        max_prompt_tokens=max_prompt_tokens_for(max_length, n, config.mask_length),
        position_scheme=config.position_scheme,
    )
    names = find_mlm_head(backbone)
    _check_head(backbone, names, layout.cls_id, layout.sep_id)
    hidden = int(backbone.config.hidden_size)
    eps = float(getattr(backbone.config, "layer_norm_eps", 1e-5) or 1e-5)
    head = RoutingHead(hidden, n, dropout=config.dropout, layer_norm_eps=eps)
    network = MLMNetwork(backbone, head, names, config).train()  # from_pretrained returns eval mode
    return Predictor(config=config, network=network, inputs=MLMInputs(tok, layout), candidates=list(candidates))
