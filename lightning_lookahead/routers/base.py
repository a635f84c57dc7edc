"""What every trained predictor shares: losses, metrics, optimiser, logging and test-time logits.

A predictor is a thin :class:`RouterModule` subclass with a nested ``Config`` dataclass and four hooks:
``featurize`` / ``featurize_fingerprint`` / ``collate`` (the :class:`~lightning_lookahead.routers.featurizer.Featurizer`
protocol the DataModule uses) and ``forward_batch`` (batch → routing logits plus an optional auxiliary loss).
Everything else — the routing loss of METHOD §6, the §10 validation reward as DDP-synced torchmetrics, AdamW with
a warm-up schedule, the MLM curriculum's global step, checkpoint reloading — lives here, so predictors cannot drift
apart in those details.

Test time runs on **one device** (enforced): ``test_logits`` then holds every test item in dataloader order, which
the evaluation joins back onto the benchmark items without any cross-rank reordering.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch import nn
from torchmetrics import MetricCollection

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.errors import LookaheadError, closest, unknown_name
from lightning_lookahead.metrics.benchmarks import decide, validation_reward
from lightning_lookahead.metrics.routing import NormalizedRoutingReward, PickShares, RoutingAccuracy, RoutingReward
from lightning_lookahead.routers.losses import routing_loss

Stage = Literal["train", "val", "test", "predict"]

#: Learning-rate schedules ``optim.scheduler`` accepts (names of ``transformers.get_scheduler``).
SCHEDULERS: tuple[str, ...] = ("cosine", "linear", "constant")

#: The §10 metrics logged per stage; ``val/reward`` is the checkpoint-selection metric (higher is better).
METRIC_NAMES: tuple[str, ...] = ("reward", "normalized_reward", "routing_accuracy")

C = TypeVar("C")


@dataclass
class RouterOutput:
    """What ``forward_batch`` returns: routing logits (B, N) and, in training, an auxiliary loss (or None)."""

    logits: torch.Tensor
    aux_loss: torch.Tensor | None = None


# ----------------------------------------------------------------------------------------------------------------
# Config parsing: dict (YAML / checkpoint hparams) → typed dataclass, with "did you mean" errors.
# ----------------------------------------------------------------------------------------------------------------


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a field's type hint; ints become floats for float fields (YAML writes ``1`` for 1.0)."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise LookaheadError(f"{where} must not be null (expected {_type_name(hint)})")
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except LookaheadError:
                continue
        raise LookaheadError(f"{where} = {value!r} is not a {_type_name(hint)}")
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            hint_name = closest(str(value), [str(c) for c in choices])
            suggestion = f"; did you mean {hint_name!r}?" if hint_name else ""
            raise LookaheadError(
                f"{where} = {value!r} is not allowed{suggestion} (valid: {', '.join(map(str, choices))})"
            )
        return value
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            raise LookaheadError(f"{where} = {value!r} must be a list")
        return type(value)(value) if origin is not tuple else tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise LookaheadError(f"{where} = {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LookaheadError(f"{where} = {value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LookaheadError(f"{where} = {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise LookaheadError(f"{where} = {value!r} must be a string")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise LookaheadError(f"{where} = {value!r} must be a {hint.__name__}")
    return value


def _plain_mapping(value: Any) -> dict[str, Any]:
    """A plain dict from a dict, an OmegaConf DictConfig or a dataclass instance."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return dict(OmegaConf.to_container(value, resolve=True))  # type: ignore[arg-type]
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise LookaheadError(f"expected a mapping of settings, got {type(value).__name__}")


def parse_dataclass(cls: type[C], value: Any, section: str) -> C:
    """Build the dataclass ``cls`` from a mapping (or return an instance as is), checking every key and type.

    Errors name the key as ``<section>.<key>`` and suggest the closest valid key, because these come from YAML files
    and command-line overrides where typos are the usual mistake.
    """
    if isinstance(value, cls):
        return value
    data = _plain_mapping(value)
    valid = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, item in data.items():
        if key not in valid:
            hint = closest(str(key), valid)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            raise LookaheadError(
                f"unknown config key '{section}.{key}'{suggestion} (valid {section} keys: {', '.join(valid)})"
            )
        kwargs[key] = _coerce(item, hints.get(key, Any), f"{section}.{key}")
    missing = [
        name
        for name, f in valid.items()
        if name not in kwargs and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise LookaheadError(f"missing setting(s) {', '.join(f'{section}.{k}' for k in missing)}")
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A YAML-safe plain dict (tuples become lists) for ``save_hyperparameters`` and run directories."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(asdict(config))


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Name plus a short hash of the full tokenizer definition (vocab, merges, added tokens, normaliser).

    A path alone is not enough: the same directory can be re-saved with a different vocabulary, and the feature
    cache must then miss.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    return f"{type(tokenizer).__name__}:{getattr(tokenizer, 'name_or_path', '')}:{digest}"


# ----------------------------------------------------------------------------------------------------------------
# The LightningModule every predictor extends.
# ----------------------------------------------------------------------------------------------------------------


class RouterModule(L.LightningModule, abc.ABC):
    """Base of every trained predictor; subclasses supply ``Config`` and the four hooks.

    ``model`` is the predictor's own settings (its nested ``Config`` or a dict of it), ``loss`` / ``optim`` the shared
    sections, ``candidates`` the pool in label order. All four are saved as plain dicts, so
    ``Subclass.load_from_checkpoint(path)`` rebuilds the module (the backbone named in ``model`` must still load).
    """

    #: The predictor's settings; every subclass declares its own nested ``@dataclass class Config`` with ``kind``.
    Config: ClassVar[type]
    #: Batch entries that stay on the host: Lightning's transfer cannot copy frozen dataclasses or strings.
    host_batch_keys: ClassVar[tuple[str, ...]] = ("prompt_id",)
    #: Extra name under which the auxiliary loss is also logged (e.g. ``mlm_loss``); ``aux_loss`` is always logged.
    aux_loss_name: ClassVar[str] = "aux_loss"
    #: True for routers that read the candidates' real responses (upper bounds): they cannot route new prompts.
    needs_responses: ClassVar[bool] = False

    def __init__(
        self,
        model: Mapping[str, Any] | Any,
        loss: Mapping[str, Any] | LossConfig | None = None,
        optim: Mapping[str, Any] | OptimConfig | None = None,
        candidates: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.config = self.parse_config(model)
        self.loss_config = parse_dataclass(LossConfig, {} if loss is None else loss, "loss")
        self.optim_config = parse_dataclass(OptimConfig, {} if optim is None else optim, "optim")
        if not candidates:
            raise LookaheadError(f"{type(self).__name__} needs the candidate pool (a non-empty list of model names)")
        self.candidates: list[str] = [str(c) for c in candidates]
        if len(set(self.candidates)) != len(self.candidates):
            raise LookaheadError(f"candidate names must be distinct, got {self.candidates}")
        if self.optim_config.scheduler not in SCHEDULERS:
            raise unknown_name("optim.scheduler", self.optim_config.scheduler, SCHEDULERS)
        if not 0.0 <= self.optim_config.warmup_ratio < 1.0:
            raise LookaheadError(f"optim.warmup_ratio must be in [0, 1), got {self.optim_config.warmup_ratio}")
        routing_loss(self.loss_config.name, **self._loss_options())  # fail now on a bad name or option

        self.save_hyperparameters(
            {
                "model": config_to_dict(self.config),
                "loss": config_to_dict(self.loss_config),
                "optim": config_to_dict(self.optim_config),
                "candidates": list(self.candidates),
            }
        )
        # One MetricCollection per stage: states never mix between validation and test, and each syncs over DDP.
        self.stage_metrics = nn.ModuleDict({"val": self._metric_collection("val/")})
        self.pick_shares = nn.ModuleDict({"val": PickShares(self.candidates)})
        self.test_logits: dict[int, np.ndarray] = {}
        self.test_prompt_ids: dict[int, list[str]] = {}
        self.test_metrics: dict[int, dict[str, float]] = {}
        #: Optional names of the test dataloaders (e.g. benchmarks), used in the ``test/<name>/<metric>`` keys.
        self.test_dataloader_names: list[str] | None = None
        self._test_buffers: dict[int, dict[str, list[Any]]] = {}
        self._total_steps: int | None = None

    # --- configuration -----------------------------------------------------------------------------------------

    @classmethod
    def parse_config(cls, model: Mapping[str, Any] | Any) -> Any:
        """The subclass ``Config`` from a dict or instance; unknown keys and a foreign ``kind`` are errors."""
        config_cls = getattr(cls, "Config", None)
        if config_cls is None or not is_dataclass(config_cls):
            raise LookaheadError(f"{cls.__name__} must declare a nested @dataclass Config")
        config = parse_dataclass(config_cls, model, "model")
        expected = cls.default_kind()
        if expected is not None and getattr(config, "kind", expected) != expected:
            raise LookaheadError(
                f"model.kind {config.kind!r} does not match {cls.__name__}, whose kind is {expected!r}"
            )
        return config

    @classmethod
    def default_kind(cls) -> str | None:
        """The ``kind`` default declared by the subclass Config (the registry key)."""
        config_cls = getattr(cls, "Config", None)
        if config_cls is None:
            return None
        for f in fields(config_cls):
            if f.name == "kind" and f.default is not MISSING:
                return str(f.default)
        return None

    @property
    def n_candidates(self) -> int:
        """N, the number of routing logits per prompt."""
        return len(self.candidates)

    def aux_loss_weight(self) -> float:
        """Weight of ``RouterOutput.aux_loss`` in the total loss: ``Config.aux_weight`` if declared, else 1."""
        return float(getattr(self.config, "aux_weight", 1.0))

    def _loss_options(self) -> dict[str, Any]:
        cfg = self.loss_config
        return {"threshold": cfg.threshold, "temperature": cfg.temperature, "score_norm": cfg.score_norm}

    def compute_routing_loss(self, logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The configured §6 loss on raw scores (normalised inside); rebuilt per call so the module stays picklable."""
        return routing_loss(self.loss_config.name, **self._loss_options())(logits, scores)

    # --- hooks a predictor implements ------------------------------------------------------------------------------

    @abc.abstractmethod
    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        """Deterministic, Arrow-serialisable features of one example (the DataModule caches them)."""

    @abc.abstractmethod
    def featurize_fingerprint(self) -> str:
        """Everything that changes ``featurize`` output (tokenizer hash, lengths); the feature-cache key."""

    @abc.abstractmethod
    def collate(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch holding at least ``scores`` (FloatTensor (B, N), raw) and ``prompt_id`` (list[str])."""

    @abc.abstractmethod
    def forward_batch(self, batch: dict[str, Any], stage: Stage) -> RouterOutput:
        """Routing logits (B, N) for a collated batch on this module's device; ``stage`` switches train-only parts."""

    # --- device transfer and inference --------------------------------------------------------------------------

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move tensors, leave ``host_batch_keys`` alone (Lightning's default fails on frozen dataclasses)."""
        if isinstance(batch, Mapping):
            keep = set(self.host_batch_keys)
            return {k: v if k in keep else move_data_to_device(v, device) for k, v in batch.items()}
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Routing logits of a batch already on this device (inference path)."""
        return self.forward_batch(batch, "predict").logits

    def predict_scores(self, batch: dict[str, Any]) -> torch.Tensor:
        """Routing logits (B, N) of a host batch in eval + inference mode, on this module's device (used by the API)."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return self.forward_batch(self.transfer_batch_to_device(batch, self.device, 0), "predict").logits
        finally:
            self.train(was_training)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """``Trainer.predict`` returns the logits per batch."""
        return self.forward_batch(batch, "predict").logits

    # --- curriculum -------------------------------------------------------------------------------------------------

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

    # --- steps ------------------------------------------------------------------------------------------------------

    @staticmethod
    def _batch_size(batch: dict[str, Any]) -> int:
        return len(batch["prompt_id"])

    def _losses(
        self, batch: dict[str, Any], out: RouterOutput
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        routing = self.compute_routing_loss(out.logits, batch["scores"])
        if out.aux_loss is None:
            return routing, routing, None
        return routing + self.aux_loss_weight() * out.aux_loss, routing, out.aux_loss

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
            if self.aux_loss_name != "aux_loss":
                self.log(f"{stage}/{self.aux_loss_name}", aux.detach(), **opts)

    def total_loss(self, batch: dict[str, Any], stage: str = "train") -> torch.Tensor:
        """The training objective on one batch (forward included), for benchmarks and custom loops."""
        total, _, _ = self._losses(batch, self.forward_batch(batch, stage))
        return total

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        """``routing_loss(logits, scores) + w·aux``; the parts come back too (for callbacks and tests)."""
        out = self.forward_batch(batch, "train")
        total, routing, aux = self._losses(batch, out)
        self._log_losses("train", total, routing, aux, self._batch_size(batch))
        result = {"loss": total, "routing_loss": routing.detach()}
        if aux is not None:
            result["aux_loss"] = aux.detach()
        return result

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Loss plus the §10 metrics, reduced over the epoch and across ranks."""
        out = self.forward_batch(batch, "val")
        size = self._batch_size(batch)
        total, routing, aux = self._losses(batch, out)
        self._log_losses("val", total, routing, aux, size)
        logits = out.logits.detach().float()
        metrics = self.stage_metrics["val"]
        metrics.update(logits, batch["scores"])
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=size)
        self.pick_shares["val"].update(logits, batch["scores"])

    def on_validation_epoch_end(self) -> None:
        shares_metric = self.pick_shares["val"]
        if int(shares_metric.total) > 0 or self.trainer.world_size > 1:
            shares = shares_metric.compute()  # synced over ranks
            for name, value in zip(self.candidates, shares.tolist(), strict=True):
                self.log(f"val/pick_share/{name}", value, sync_dist=True)  # equal on every rank already
        shares_metric.reset()

    def on_test_epoch_start(self) -> None:
        if self.trainer.world_size > 1:
            raise LookaheadError(
                "testing runs on one device so that test_logits keep the dataloader order; create a 1-device "
                "Trainer for trainer.test (training may use many)"
            )
        self._test_buffers = {}
        self.test_logits = {}
        self.test_prompt_ids = {}
        self.test_metrics = {}

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Keep this batch's logits, in order, under its dataloader (one dataloader per benchmark)."""
        logits = self.forward_batch(batch, "test").logits.detach().float().cpu()
        buffer = self._test_buffers.setdefault(dataloader_idx, {"logits": [], "scores": [], "prompt_id": []})
        buffer["logits"].append(logits)
        buffer["scores"].append(batch["scores"].detach().float().cpu())
        buffer["prompt_id"].extend(batch["prompt_id"])

    def on_test_epoch_end(self) -> None:
        """Expose ``test_logits`` / ``test_prompt_ids`` and log the §10 reward per dataloader (raw test scores)."""
        several = len(self._test_buffers) > 1
        for idx in sorted(self._test_buffers):
            buffer = self._test_buffers[idx]
            logits = torch.cat(buffer["logits"]).numpy()
            scores = torch.cat(buffer["scores"]).numpy()
            self.test_logits[idx] = logits
            self.test_prompt_ids[idx] = list(buffer["prompt_id"])
            if np.isnan(scores).any():
                continue  # items without scores: nothing to score against
            result = validation_reward(scores, decide(logits))
            self.test_metrics[idx] = {name: float(result[name]) for name in METRIC_NAMES}
            where = f"{self._test_name(idx)}/" if several else ""
            for name in METRIC_NAMES:
                self.log(f"test/{where}{name}", self.test_metrics[idx][name], add_dataloader_idx=False)
        self._test_buffers = {}

    def _test_name(self, idx: int) -> str:
        names = self.test_dataloader_names
        return str(names[idx]) if names is not None and idx < len(names) else f"dataloader_{idx}"

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

    # --- helpers ------------------------------------------------------------------------------------------------

    @staticmethod
    def _metric_collection(prefix: str) -> MetricCollection:
        # compute_groups off: the states are a few scalars, and shared state refs have bitten Lightning logging.
        return MetricCollection(
            {
                "reward": RoutingReward(),
                "normalized_reward": NormalizedRoutingReward(),
                "routing_accuracy": RoutingAccuracy(),
            },
            prefix=prefix,
            compute_groups=False,
        )

    def scores_tensor(self, features: list[dict[str, Any]]) -> torch.Tensor:
        """Stack the raw ``scores`` of features into a float32 (B, N) tensor, checking N against the pool.

        Features without scores (routing new prompts, where nothing is known yet) get NaN rows: fine for inference,
        and any loss or metric on them is visibly NaN rather than silently wrong.
        """
        nan_row = [math.nan] * self.n_candidates
        scores = torch.tensor([list(f.get("scores") or nan_row) for f in features], dtype=torch.float32)
        if scores.ndim != 2 or scores.shape[1] != self.n_candidates:
            raise LookaheadError(
                f"every example needs {self.n_candidates} scores (one per candidate), got shape {tuple(scores.shape)}"
            )
        return scores
