"""The thin LightningModule that trains any predictor network: steps, losses, metrics and the optimiser.

The network (a plain ``nn.Module`` from :mod:`lightning_lookahead.models`) maps a batch of tensors to routing logits
and, when the batch carries labels, an auxiliary loss. This module adds what only training needs: the routing loss
of METHOD §6 plus ``w · aux``, the §10 validation reward as DDP-synced torchmetrics, AdamW with a warm-up schedule,
and the optimiser-step count a curriculum reads. A predictor whose inputs depend on the training step (the MLM
curriculum) overrides :meth:`prepare_batch`; the others use this class as is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.routing import NormalizedRoutingReward, PickShares, RoutingAccuracy, RoutingReward
from lightning_lookahead.models.predictor import NetworkOutput, Predictor
from lightning_lookahead.training.losses import configured_loss
from lightning_lookahead.typed import config_to_dict, parse_dataclass

Stage = Literal["train", "val"]

#: The §10 metrics logged per stage; ``val/reward`` is the checkpoint-selection metric (higher is better).
METRIC_NAMES: tuple[str, ...] = ("reward", "normalized_reward", "routing_accuracy")


class PredictorModule(L.LightningModule):
    """Trains ``predictor.network``; its settings are saved as plain hparams (``model``, ``loss``, ``optim``,
    ``candidates``) so a checkpoint names everything needed to rebuild the network through the registry."""

    def __init__(
        self,
        predictor: Predictor,
        loss: Mapping[str, Any] | LossConfig | None = None,
        optim: Mapping[str, Any] | OptimConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = predictor.config
        self.network: nn.Module = predictor.network
        self.inputs = predictor.inputs
        self.candidates: list[str] = list(predictor.candidates)
        self.loss_config = parse_dataclass(LossConfig, {} if loss is None else loss, "loss")
        self.optim_config = parse_dataclass(OptimConfig, {} if optim is None else optim, "optim")
        configured_loss(self.loss_config)  # fail now on a bad name or option
        self.save_hyperparameters(
            {
                "model": config_to_dict(self.config),
                "loss": config_to_dict(self.loss_config),
                "optim": config_to_dict(self.optim_config),
                "candidates": list(self.candidates),
            }
        )
        # compute_groups off: the states are a few scalars, and shared state refs have bitten Lightning logging.
        self.val_metrics = MetricCollection(
            {
                "reward": RoutingReward(),
                "normalized_reward": NormalizedRoutingReward(),
                "routing_accuracy": RoutingAccuracy(),
            },
            prefix="val/",
            compute_groups=False,
        )
        self.val_pick_shares = PickShares(self.candidates)
        self._total_steps: int | None = None

    @property
    def predictor(self) -> Predictor:
        """The network with its settings and input builder (what exports and the serving API take)."""
        return Predictor(self.config, self.network, self.inputs, list(self.candidates))

    # --- hooks ------------------------------------------------------------------------------------------------------

    def prepare_batch(self, batch: dict[str, torch.Tensor], stage: Stage) -> dict[str, torch.Tensor]:
        """Inputs that depend on the training step (none by default); called on the device, before the network."""
        return batch

    def forward(self, batch: dict[str, torch.Tensor]) -> NetworkOutput:
        return self.network(batch)

    # --- losses -----------------------------------------------------------------------------------------------------

    def compute_routing_loss(self, logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The configured §6 loss on raw scores (normalised inside); rebuilt per call so the module stays picklable."""
        return configured_loss(self.loss_config)(logits, scores)

    def losses(
        self, batch: dict[str, torch.Tensor], stage: Stage
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, NetworkOutput]:
        """``(total, routing, aux, output)`` of one batch: ``routing + w·aux`` with ``w`` from the model config."""
        out = self.network(self.prepare_batch(batch, stage))
        routing = self.compute_routing_loss(out.logits, batch["scores"])
        if out.aux_loss is None:
            return routing, routing, None, out
        return routing + self.config.aux_loss_weight() * out.aux_loss, routing, out.aux_loss, out

    def total_loss(self, batch: dict[str, torch.Tensor], stage: Stage = "train") -> torch.Tensor:
        """The training objective on one batch (forward included), for benchmarks and custom loops."""
        return self.losses(batch, stage)[0]

    def _log_losses(
        self, stage: str, total: torch.Tensor, routing: torch.Tensor, aux: torch.Tensor | None, size: int
    ) -> None:
        on_step = stage == "train"
        opts: dict[str, Any] = {
            "batch_size": size,
            "on_step": on_step,
            "on_epoch": not on_step,
            "sync_dist": not on_step,
        }
        self.log(f"{stage}/loss", total.detach(), prog_bar=True, **opts)
        self.log(f"{stage}/routing_loss", routing.detach(), **opts)
        if aux is not None:
            self.log(f"{stage}/aux_loss", aux.detach(), **opts)
            name = self.config.aux_loss_name
            if name != "aux_loss":
                self.log(f"{stage}/{name}", aux.detach(), **opts)

    # --- steps ------------------------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """``routing_loss(logits, scores) + w·aux``; the parts come back too (for callbacks and tests)."""
        total, routing, aux, _ = self.losses(batch, "train")
        self._log_losses("train", total, routing, aux, int(batch["scores"].shape[0]))
        result = {"loss": total, "routing_loss": routing.detach()}
        if aux is not None:
            result["aux_loss"] = aux.detach()
        return result

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """Loss plus the §10 metrics, reduced over the epoch and across ranks; the logits go to callbacks
        (validation µn per benchmark, ``training/validation_mu_n.py``)."""
        total, routing, aux, out = self.losses(batch, "val")
        size = int(batch["scores"].shape[0])
        self._log_losses("val", total, routing, aux, size)
        logits = out.logits.detach().float()
        self.val_metrics.update(logits, batch["scores"])
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, batch_size=size)
        self.val_pick_shares.update(logits, batch["scores"])
        return {"logits": logits}

    def on_validation_epoch_end(self) -> None:
        shares_metric = self.val_pick_shares
        if int(shares_metric.total) > 0 or self.trainer.world_size > 1:
            shares = shares_metric.compute()  # synced over ranks
            for name, value in zip(self.candidates, shares.tolist(), strict=True):
                self.log(f"val/pick_share/{name}", value, sync_dist=True)  # equal on every rank already
        shares_metric.reset()

    # --- the optimiser-step clock a curriculum reads --------------------------------------------------------------

    def on_fit_start(self) -> None:
        self._total_steps = None

    def curriculum_step(self) -> tuple[int, int]:
        """``(global optimiser step, total optimiser steps)`` of the running fit; ``(0, 0)`` outside a Trainer.

        ``global_step`` only advances on optimiser steps, so every micro-batch of an accumulation window and every
        rank sees the same value; the total is Lightning's estimate, which already accounts for devices,
        accumulation, ``max_steps`` and ``limit_train_batches``.
        """
        trainer = self._trainer
        if trainer is None:
            return 0, 0
        if self._total_steps is None:
            total = trainer.estimated_stepping_batches
            if not math.isfinite(total):
                raise LookaheadError(
                    "the training length is unbounded (max_steps = -1 and max_epochs = -1); set one of them"
                )
            self._total_steps = int(total)
        return int(trainer.global_step), self._total_steps

    # --- optimisation -----------------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW without decay on biases and norm weights (every 1-D tensor), and a per-step warm-up schedule."""
        from transformers import get_scheduler

        cfg = self.optim_config
        decay, no_decay = [], []
        for param in self.parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(
            [g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps
        )
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            if cfg.scheduler != "constant" or cfg.warmup_ratio > 0:
                raise LookaheadError(f"optim.scheduler {cfg.scheduler!r} needs a finite max_steps or max_epochs")
            total = 0
        total = int(total)
        warmup = math.ceil(cfg.warmup_ratio * total)
        name = "constant_with_warmup" if cfg.scheduler == "constant" and warmup > 0 else cfg.scheduler
        scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
