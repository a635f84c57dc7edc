"""Lookahead-CLM (METHOD §7): a causal LM that scores candidate j at its ``<Model_j>`` token while learning to
predict candidate j's response after it.

Training reads one sequence per (prompt, candidate) — ``prompt <Model_j> response_j EOS`` — and adds
``aux_weight`` × the next-token loss on the response tokens to the routing loss. The routing logit of candidate j is
the last-layer state at ``<Model_j>`` through the shared :class:`RouterHead` (one output). Causal attention means that
state never sees the response that follows it, so routing needs no response at all: validation, test and inference
run ``prompt <Model_0> … <Model_{N-1}>`` once, each id token attending to the prompt and itself
(:meth:`CLMLayout.shared_prefix_batch`), which costs one prompt pass instead of N.

Memory: the network runs as ``base model → hidden states``; the vocabulary projection (``lm_head``) is applied only
at the positions that predict a response token, so full-vocabulary logits are never built for prompts or padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.clm_inputs import (
    BatchLayout,
    CLMLayout,
    EncodedExample,
    additive_mask,
    shifted_targets,
)
from lightning_lookahead.models.head import RouterHead
from lightning_lookahead.routers.base import RouterModule, RouterOutput, Stage, tokenizer_fingerprint
from lightning_lookahead.routers.mlm import EncodedBatch

#: Bump when ``featurize`` output changes for the same settings, so stale feature caches miss.
FEATURE_VERSION = 1


@dataclass
class CLMFeaturizer:
    """Tokenisation for Lookahead-CLM, apart from the network so it pickles cheaply (dataset workers)."""

    tokenizer: Any
    layout: CLMLayout
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            lay = self.layout
            self.fingerprint = (
                f"clm-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|ids={list(lay.model_id_tokens)}|"
                f"eos={lay.eos_id}|max_length={lay.max_length}|max_response_tokens={lay.max_response_tokens}"
            )

    def _encode(self, texts: list[str]) -> list[list[int]]:
        # split_special_tokens: a prompt that happens to contain "<Model_3>" or "<|im_end|>" stays plain text.
        return self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Prompt ids cut from the left; responses (+ EOS) cut from the right; none when the example has none."""
        n = self.layout.n_candidates
        responses = example.get("responses") or []
        if responses and len(responses) != n:
            raise LookaheadError(
                f"example {example.get('prompt_id')!r} has {len(responses)} responses, the pool has {n} candidates"
            )
        prompt_ids = self._encode([example["prompt"]])[0]
        response_ids = self._encode([r or "" for r in responses]) if responses else None
        encoded = self.layout.encode(prompt_ids, response_ids)
        return {
            "prompt_id": str(example["prompt_id"]),
            "prompt_ids": list(encoded.prompt_ids),
            "response_ids": [list(r) for r in encoded.response_ids],
            "scores": [float(s) for s in (example.get("scores") or [])],
        }

    def encode(self, features: list[dict[str, Any]]) -> EncodedBatch:
        """Features → :class:`EncodedBatch` of ``EncodedExample`` (the module builds tensors per stage)."""
        return EncodedBatch(
            EncodedExample(tuple(f["prompt_ids"]), tuple(tuple(r) for r in f["response_ids"] or ())) for f in features
        )


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
            "model's logits (logit scaling or soft-capping?); this architecture is not supported by LookaheadCLM"
        )


class LookaheadCLM(RouterModule):
    """Lookahead-CLM: logit of candidate j from the ``<Model_j>`` state, plus ``aux_weight`` × response NLL."""

    @dataclass
    class Config:
        """Settings of ``model:`` for ``kind: clm`` (paper: SmolLM2-135M, max_length 2048, aux weight 0.5)."""

        kind: str = "clm"
        backbone: str = "smollm2"
        trust_remote_code: bool = False
        dropout: float = 0.1
        max_length: int | None = 2048  # tokens of one (prompt, candidate) sequence; null → the backbone's limit
        #: Response tokens kept per candidate (EOS included); null → whatever fits in max_length (the paper).
        max_response_tokens: int | None = None
        aux_weight: float = 0.5
        #: Training batch layout (routing always shares the prompt): separate rows, or prompt once + N blocks.
        layout: BatchLayout = "separate"
        attn_implementation: Literal["sdpa", "eager"] = "sdpa"
        #: Std of the noise added to the mean-initialised ``<Model_j>`` rows; null → hidden_size^-0.5 (§7).
        id_noise_std: float | None = None
        #: Overrides of the backbone's own config, e.g. {num_hidden_layers: 8} (see docs/training.md).
        backbone_config: dict[str, Any] = field(default_factory=dict)

        def __post_init__(self) -> None:
            if not 0.0 <= self.dropout < 1.0:
                raise LookaheadError(f"model.dropout must be in [0, 1), got {self.dropout}")
            if self.aux_weight < 0:
                raise LookaheadError(f"model.aux_weight must be ≥ 0, got {self.aux_weight}")
            if self.max_length is not None and self.max_length < 2:
                raise LookaheadError(f"model.max_length must be ≥ 2 or null, got {self.max_length}")
            if self.max_response_tokens is not None and self.max_response_tokens < 1:
                raise LookaheadError(f"model.max_response_tokens must be ≥ 1 or null, got {self.max_response_tokens}")
            if self.id_noise_std is not None and self.id_noise_std < 0:
                raise LookaheadError(f"model.id_noise_std must be ≥ 0 or null, got {self.id_noise_std}")

    aux_loss_name = "lm_loss"
    host_batch_keys = ("prompt_id", "encoded")

    def __init__(
        self,
        model: dict[str, Any] | LookaheadCLM.Config,
        loss: dict[str, Any] | LossConfig | None = None,
        optim: dict[str, Any] | OptimConfig | None = None,
        candidates: list[str] | None = None,
    ) -> None:
        super().__init__(model, loss, optim, candidates)
        from lightning_lookahead.models.backbones import load_causal_lm, model_id_tokens, resolve_max_length

        cfg = self.config
        self.backbone, self.tokenizer = load_causal_lm(
            cfg.backbone,
            trust_remote_code=cfg.trust_remote_code,
            config_overrides=cfg.backbone_config or None,
            attn_implementation=cfg.attn_implementation,
        )
        hidden = int(self.backbone.config.hidden_size)
        noise = hidden**-0.5 if cfg.id_noise_std is None else cfg.id_noise_std
        ids = model_id_tokens(self.tokenizer, self.backbone, self.n_candidates, kind="special", noise_std=noise)
        tok = self.tokenizer
        if tok.eos_token_id is None:
            raise LookaheadError(f"backbone {cfg.backbone!r}: the tokenizer has no EOS token to end responses with")
        self.max_length = resolve_max_length(cfg.max_length, self.backbone, tok, cfg.backbone)
        self.layout = CLMLayout(
            model_id_tokens=tuple(ids),
            eos_id=int(tok.eos_token_id),
            pad_id=int(tok.pad_token_id),
            max_length=self.max_length,
            max_response_tokens=cfg.max_response_tokens,
        )
        self.featurizer = CLMFeaturizer(tok, self.layout)
        _check_lm_head(self.backbone, int(tok.eos_token_id))
        eps = float(getattr(self.backbone.config, "rms_norm_eps", 1e-5) or 1e-5)
        self.head = RouterHead(hidden, 1, dropout=cfg.dropout, layer_norm_eps=eps)
        self.train()  # from_pretrained returns eval mode, and Lightning keeps a module's mode during fit

    # --- Featurizer protocol ----------------------------------------------------------------------------------

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        return self.featurizer.featurize(example)

    def featurize_fingerprint(self) -> str:
        return self.featurizer.fingerprint

    def collate(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """``encoded`` stays a host object: the tensors depend on the stage (training reads responses, routing not)."""
        return {
            "encoded": self.featurizer.encode(features),
            "scores": self.scores_tensor(features),
            "prompt_id": [str(f["prompt_id"]) for f in features],
        }

    # --- network ------------------------------------------------------------------------------------------------

    @property
    def decoder(self) -> nn.Module:
        """The transformer body (``model.model`` for Llama): hidden states without the vocabulary projection."""
        return self.backbone.base_model

    @property
    def lm_head(self) -> nn.Module:
        return self.backbone.get_output_embeddings()

    def aux_loss_weight(self) -> float:
        return float(self.config.aux_weight)

    def build_inputs(self, batch: dict[str, Any], stage: Stage) -> dict[str, torch.Tensor]:
        """Training: the configured layout with responses. Every other stage: the shared prompt, no responses."""
        examples = list(batch["encoded"])
        if stage == "train" and self.config.layout == "separate":
            return self.layout.separate_batch(examples, with_responses=True)
        return self.layout.shared_prefix_batch(examples, with_responses=stage == "train")

    def _hidden(self, built: dict[str, torch.Tensor]) -> torch.Tensor:
        device = self.device
        kwargs: dict[str, Any] = {"input_ids": built["input_ids"].to(device, non_blocking=True), "use_cache": False}
        if "allowed" in built:
            allowed = built["allowed"].to(device, non_blocking=True)
            if self.backbone.config._attn_implementation == "eager":
                kwargs["attention_mask"] = additive_mask(allowed, self.backbone.dtype)
            else:
                kwargs["attention_mask"] = allowed.unsqueeze(1)
            kwargs["position_ids"] = built["position_ids"].to(device, non_blocking=True)
        else:
            kwargs["attention_mask"] = built["attention_mask"].to(device, non_blocking=True)
        return self.decoder(**kwargs).last_hidden_state

    def lm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Token-mean next-token NLL over the response tokens (EOS included); only those positions are projected."""
        where, targets = shifted_targets(labels.to(hidden.device))
        if targets.numel() == 0:
            return hidden.sum() * 0.0
        logits = self.lm_head(hidden[:, :-1][where])
        return F.cross_entropy(logits.float(), targets)

    def forward_batch(self, batch: dict[str, Any], stage: Stage) -> RouterOutput:
        built = self.build_inputs(batch, stage)
        hidden = self._hidden(built)
        id_index = built["id_index"].to(hidden.device)
        n = self.n_candidates
        if id_index.ndim == 1:  # separate rows: row b·N + j holds <Model_j> at id_index[row]
            states = hidden[torch.arange(hidden.shape[0], device=hidden.device), id_index]
        else:  # shared prefix: (B, N) positions in each prompt's row
            states = hidden.gather(1, id_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        logits = self.head(states).reshape(-1, n)
        aux = self.lm_loss(hidden, built["labels"]) if stage == "train" else None
        return RouterOutput(logits=logits, aux_loss=aux)
