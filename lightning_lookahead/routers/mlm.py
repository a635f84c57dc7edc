"""Lookahead-MLM (METHOD §8): a masked LM that scores all N candidates from [CLS] while predicting their responses.

One sequence per prompt holds every candidate as a block of ``mask_length`` slots filled with the candidate's
model-id token (``[unused j]``), see :class:`~lightning_lookahead.models.mlm_inputs.MLMLayout`. In training a
curriculum shows a shrinking prefix of each response (rate from global optimiser steps); validation, test and
inference always mask everything, so no response leaks into the routing decision.

Finding the encoder and the MLM head without hard-coding BERT names: the encoder is ``model.base_model`` (every
``*ForMaskedLM`` exposes it through ``base_model_prefix``); the MLM head is the model's other child modules in
registration order (BERT: ``cls``; RoBERTa: ``lm_head``; ModernBERT: ``head`` then ``decoder``), which must contain
``get_output_embeddings()``. At load time a probe checks that ``head(base_model(x))`` reproduces the model's own
logits, so an architecture whose head needs more than the hidden states fails loudly instead of training wrongly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import nn

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.head import RouterHead
from lightning_lookahead.models.mlm_inputs import (
    IGNORE_INDEX,
    EncodedExample,
    MaskType,
    MLMLayout,
    PositionScheme,
    curriculum_rate,
    max_prompt_tokens_for,
    sparse_mlm_loss,
)
from lightning_lookahead.routers.base import RouterModule, RouterOutput, Stage, tokenizer_fingerprint

#: Bump when ``featurize`` output changes for the same settings, so stale feature caches miss.
FEATURE_VERSION = 1


def _check_range(name: str, value: float, low: float, high: float, *, high_open: bool = False) -> None:
    if not low <= value <= high or (high_open and value == high):
        bracket = ")" if high_open else "]"
        raise LookaheadError(f"model.{name} must be in [{low}, {high}{bracket}, got {value}")


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
            "MLM logits; this architecture is not supported by LookaheadMLM"
        )


class EncodedBatch:
    """A batch's :class:`EncodedExample` list in a container that device transfer passes through untouched.

    Deliberately not a ``list``/``Sequence``: Lightning's ``move_data_to_device`` (and ``apply_to_collection``)
    recurse into those and fail on frozen dataclasses. Any plain object is returned as is, so an MLM batch survives
    the Trainer's transfer and a bare ``move_data_to_device(batch, device)`` alike.
    """

    __slots__ = ("examples",)

    def __init__(self, examples: Iterable[EncodedExample]) -> None:
        self.examples: tuple[EncodedExample, ...] = tuple(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[EncodedExample]:
        return iter(self.examples)

    @overload
    def __getitem__(self, index: int) -> EncodedExample: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[EncodedExample, ...]: ...
    def __getitem__(self, index: int | slice) -> EncodedExample | tuple[EncodedExample, ...]:
        return self.examples[index]

    def __repr__(self) -> str:
        return f"EncodedBatch({len(self.examples)} examples)"


@dataclass
class MLMFeaturizer:
    """Tokenisation for Lookahead-MLM, kept apart from the network so it pickles cheaply (dataset workers)."""

    tokenizer: Any
    layout: MLMLayout
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = (
                f"mlm-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|"
                f"n={self.layout.n_candidates}|response_tokens={self.layout.mask_length}"
            )

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Prompt ids whole (the layout cuts them from the left per batch), responses cut to ``mask_length``.

        Missing responses (routing a new prompt) become empty blocks: at rate 1 nothing of them is shown anyway.
        """
        n = self.layout.n_candidates
        responses = example.get("responses") or [""] * n
        if len(responses) != n:
            raise LookaheadError(
                f"example {example.get('prompt_id')!r} has {len(responses)} responses, the pool has {n} candidates"
            )
        tok = self.tokenizer
        prompt_ids = tok(example["prompt"], add_special_tokens=False, verbose=False)["input_ids"]
        texts = [r or "" for r in responses]
        response_ids = tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return {
            "prompt_id": str(example["prompt_id"]),
            "prompt_ids": [int(t) for t in prompt_ids],
            "response_ids": [[int(t) for t in r[: self.layout.mask_length]] for r in response_ids],
            "scores": [float(s) for s in (example.get("scores") or [])],
        }

    def encode(self, features: list[dict[str, Any]]) -> EncodedBatch:
        """Cut prompts to the layout's budget; kept as Python objects (the module builds tensors per step)."""
        return EncodedBatch(self.layout.encode_example(f["prompt_ids"], f["response_ids"]) for f in features)


class LookaheadMLM(RouterModule):
    """Lookahead-MLM: routing logits from [CLS] through :class:`RouterHead`, plus ``mlm_weight`` × masked-LM loss."""

    @dataclass
    class Config:
        """Settings of ``model:`` for ``kind: mlm`` (paper: ModernBERT-base, mask_length 64, max_length 2048)."""

        kind: str = "mlm"
        backbone: str = "minilm"
        trust_remote_code: bool = False
        dropout: float = 0.0
        max_length: int | None = 512  # total positions; null → the backbone's max_position_embeddings
        mask_length: int = 32
        mask_type: MaskType = "right"
        start_mask_rate: float = 0.3
        mask_warmup_ratio: float = 0.2
        mlm_weight: float = 0.2
        position_scheme: PositionScheme = "block_restart"
        sparse_mlm: bool = True
        #: Approximation (off by default): predict at most this many randomly chosen masked slots per batch.
        mlm_max_predictions: int | None = None
        #: Overrides of the backbone's own config, e.g. {attention_probs_dropout_prob: 0.0} (see docs/training.md).
        backbone_config: dict[str, Any] = field(default_factory=dict)

        def __post_init__(self) -> None:
            _check_range("dropout", self.dropout, 0.0, 1.0, high_open=True)
            _check_range("start_mask_rate", self.start_mask_rate, 0.0, 1.0)
            _check_range("mask_warmup_ratio", self.mask_warmup_ratio, 0.0, 1.0)
            if self.mlm_weight < 0:
                raise LookaheadError(f"model.mlm_weight must be ≥ 0, got {self.mlm_weight}")
            if self.mlm_max_predictions is not None and self.mlm_max_predictions < 1:
                raise LookaheadError(f"model.mlm_max_predictions must be ≥ 1 or null, got {self.mlm_max_predictions}")
            if self.mask_length < 1:
                raise LookaheadError(f"model.mask_length must be ≥ 1, got {self.mask_length}")
            if self.max_length is not None and self.max_length < 1:
                raise LookaheadError(f"model.max_length must be ≥ 1 or null, got {self.max_length}")

    aux_loss_name = "mlm_loss"
    host_batch_keys = ("prompt_id", "encoded")

    def __init__(
        self,
        model: dict[str, Any] | LookaheadMLM.Config,
        loss: dict[str, Any] | LossConfig | None = None,
        optim: dict[str, Any] | OptimConfig | None = None,
        candidates: list[str] | None = None,
    ) -> None:
        super().__init__(model, loss, optim, candidates)
        from lightning_lookahead.models.backbones import load_masked_lm, model_id_tokens, resolve_max_length

        cfg = self.config
        self.backbone, self.tokenizer = load_masked_lm(
            cfg.backbone, trust_remote_code=cfg.trust_remote_code, config_overrides=cfg.backbone_config or None
        )
        ids = model_id_tokens(self.tokenizer, self.backbone, self.n_candidates, kind="unused")
        tok = self.tokenizer
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        if cls_id is None or sep_id is None:
            raise LookaheadError(f"backbone {cfg.backbone!r}: the tokenizer needs a [CLS]/[SEP] (or BOS/EOS) token")
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else sep_id
        self.max_length = resolve_max_length(cfg.max_length, self.backbone, self.tokenizer, cfg.backbone)
        self.layout = MLMLayout(
            cls_id=int(cls_id),
            sep_id=int(sep_id),
            pad_id=int(pad_id),
            model_id_tokens=tuple(ids),
            mask_length=cfg.mask_length,
            max_prompt_tokens=max_prompt_tokens_for(self.max_length, self.n_candidates, cfg.mask_length),
            position_scheme=cfg.position_scheme,
        )
        self.featurizer = MLMFeaturizer(self.tokenizer, self.layout)
        self.lm_head_names = find_mlm_head(self.backbone)
        _check_head(self.backbone, self.lm_head_names, self.layout.cls_id, self.layout.sep_id)
        hidden = int(self.backbone.config.hidden_size)
        eps = float(getattr(self.backbone.config, "layer_norm_eps", 1e-5) or 1e-5)
        self.head = RouterHead(hidden, self.n_candidates, dropout=cfg.dropout, layer_norm_eps=eps)
        self.train()  # from_pretrained returns eval mode, and Lightning keeps a module's mode during fit
        self.last_mask_rate: float | None = None

    # --- Featurizer protocol ----------------------------------------------------------------------------------

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        return self.featurizer.featurize(example)

    def featurize_fingerprint(self) -> str:
        return self.featurizer.fingerprint

    def collate(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """``encoded`` holds :class:`EncodedExample` objects (an :class:`EncodedBatch`): masking needs the optimiser
        step, so the tensors are built in ``forward_batch`` on the module's device."""
        return {
            "encoded": self.featurizer.encode(features),
            "scores": self.scores_tensor(features),
            "prompt_id": [str(f["prompt_id"]) for f in features],
        }

    # --- network ------------------------------------------------------------------------------------------------

    @property
    def encoder(self) -> nn.Module:
        """The transformer body of the masked LM (a view, not a second registered copy)."""
        return self.backbone.base_model

    def lm_head(self, states: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., h) → vocabulary logits (..., V) through the masked LM's own prediction head."""
        for name in self.lm_head_names:
            states = getattr(self.backbone, name)(states)
        return states

    def aux_loss_weight(self) -> float:
        return float(self.config.mlm_weight)

    def current_mask_rate(self, stage: Stage) -> float:
        """Curriculum rate in training (from global optimiser steps), 1.0 everywhere else (no response leaks)."""
        if stage != "train":
            return 1.0
        step, total = self.curriculum_step()
        return curriculum_rate(step, total, self.config.start_mask_rate, self.config.mask_warmup_ratio)

    def mlm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean CE over labelled slots; sparse projects only those states, dense all (same value, more memory)."""
        cap = self.config.mlm_max_predictions
        if cap is not None and self.training:
            labels = subsample_labels(labels, cap)
        if self.config.sparse_mlm:
            return sparse_mlm_loss(hidden, labels, self.lm_head)
        if not bool((labels != IGNORE_INDEX).any()):
            return hidden.sum() * 0.0
        logits = self.lm_head(hidden)
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)

    def forward_batch(self, batch: dict[str, Any], stage: Stage) -> RouterOutput:
        rate = self.current_mask_rate(stage)
        self.last_mask_rate = rate
        built = self.layout.build_batch(batch["encoded"], rate, self.config.mask_type)  # type: ignore[arg-type]
        device = self.device
        hidden = self.encoder(
            input_ids=built["input_ids"].to(device, non_blocking=True),
            attention_mask=built["attention_mask"].to(device, non_blocking=True),
            position_ids=built["position_ids"].to(device, non_blocking=True),
        )[0]
        logits = self.head(hidden[:, 0])
        aux = None
        # With mlm_weight 0 (the "w/o RM" ablation) the MLM loss would only be multiplied by 0: training skips it
        # (the same gradients, less work); validation still reports it.
        wanted = stage == "val" or (stage == "train" and self.config.mlm_weight > 0)
        if wanted and self.config.mask_type != "no":
            aux = self.mlm_loss(hidden, built["mlm_labels"].to(device, non_blocking=True))
        if stage == "train" and self._trainer is not None:
            self.log("train/mask_rate", rate, batch_size=len(batch["encoded"]))
        return RouterOutput(logits=logits, aux_loss=aux)


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
