"""Typed sections of an experiment config: every closed set is a ``Literal``, every range is field metadata.

:func:`lightning_lookahead.typed.parse_dataclass` checks a composed config against these classes, so
``lookahead validate`` refuses exactly what ``lookahead train`` would. Checks that relate two fields live in
:mod:`lightning_lookahead.config.cross_field`. Predictor-specific settings (``model:``) are checked against the
config dataclass of the predictor named by ``model.kind`` (``lightning_lookahead.models.registry``), so a new
predictor brings its own. Like ``model:``, the ``data:`` section lives with its package
(:mod:`lightning_lookahead.data.config`) and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lightning_lookahead.data.config import FAMILIES, DataConfig, Family, KFoldConfig, Protocol
from lightning_lookahead.models.predictor import PredictorConfig
from lightning_lookahead.models.registry import parse_model_config
from lightning_lookahead.typed import at_least, between, parsed_by, positive

__all__ = [
    "FAMILIES",
    "CallbacksConfig",
    "CheckpointConfig",
    "DataConfig",
    "EarlyStoppingConfig",
    "ExperimentConfig",
    "Family",
    "FsdpConfig",
    "KFoldConfig",
    "LearningRateMonitorConfig",
    "LoggerConfig",
    "LossConfig",
    "LossName",
    "Monitor",
    "OptimConfig",
    "Precision",
    "ProgressConfig",
    "ProgressMode",
    "Protocol",
    "Scheduler",
    "ScoreNorm",
    "ShardingStrategy",
    "Strategy",
    "TrainerConfig",
    "WandbConfig",
    "WandbMode",
]

#: Routing losses of METHOD §6 (``lightning_lookahead.training.losses``).
LossName = Literal["bce", "ce", "mse", "forward_kl", "reverse_kl", "routerdc"]
#: Per-prompt score normalisations (``lightning_lookahead.metrics.normalize``).
ScoreNorm = Literal["min-max", "none", "softmax", "standardization"]
#: Learning-rate schedules (names of ``transformers.get_scheduler``).
Scheduler = Literal["cosine", "linear", "constant"]
WandbMode = Literal["online", "offline", "disabled"]
#: ``auto``: plain lines when stdout is not a terminal (a log file, CI), else Lightning's bar.
ProgressMode = Literal["auto", "bar", "lines"]
#: ``lightning.Trainer(strategy=...)`` choices: ``auto`` (one device, or DDP over several), the DDP variants, and
#: ``fsdp`` (sharded parameters, gradients and optimiser state for models too large to replicate; GPUs only), which
#: the recipe builds as Lightning's ``FSDPStrategy`` from ``trainer.fsdp`` (lightning_lookahead.training.strategy).
Strategy = Literal["auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_find_unused_parameters_true", "fsdp"]
#: torch FSDP's sharding: everything (``FULL_SHARD``), gradients and optimiser state only (``SHARD_GRAD_OP``),
#: nothing (``NO_SHARD``: DDP-like), or full sharding inside a node and replication across nodes (``HYBRID_SHARD``).
ShardingStrategy = Literal["FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"]
#: Validation metrics that may choose the checkpoint (all higher-is-better); ``auto``: ``val/avg_mu_n`` where the
#: validation split mixes benchmarks or domains, else ``val/reward`` (lightning_lookahead.training.validation_mu_n).
Monitor = Literal["auto", "val/avg_mu_n", "val/reward", "val/normalized_reward", "val/routing_accuracy"]
#: What ``lightning.Trainer(precision=...)`` accepts in Lightning 2.x, written out so validation needs no Lightning.
Precision = Literal[
    "transformer-engine",
    "transformer-engine-float16",
    "16-true",
    "16-mixed",
    "bf16-true",
    "bf16-mixed",
    "32-true",
    "64-true",
    "64",
    "32",
    "16",
    "bf16",
    64,
    32,
    16,
]


@dataclass
class LossConfig:
    """Routing loss (METHOD §6) on per-prompt normalised scores."""

    name: LossName = "bce"
    #: BCE cut τ·max; τ ≤ 0 gives soft targets, so only the upper bound is fixed.
    threshold: float = field(default=0.8, metadata=between(None, 1))
    temperature: float = field(default=0.1, metadata=positive())
    score_norm: ScoreNorm = "min-max"
    #: RouterDC's sample–LLM loss: the K+ best candidates are positives, the K− worst negatives (its paper: 3 and 3).
    top_k: int = field(default=3, metadata=at_least(1))
    bottom_k: int = field(default=3, metadata=at_least(1))


@dataclass
class OptimConfig:
    """AdamW with a learning-rate schedule; the paper: lr 1e-5, cosine, no warm-up, no weight decay."""

    lr: float = field(default=1e-5, metadata=positive())
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    betas: tuple[float, float] = (0.9, 0.999)  # each in [0, 1): checked in cross_field
    eps: float = field(default=1e-8, metadata=positive())
    scheduler: Scheduler = "cosine"
    warmup_ratio: float = field(default=0.0, metadata=between(0, 1, high_open=True))


@dataclass
class FsdpConfig:
    """``trainer.strategy=fsdp``: each transformer block of the backbone (its ``_no_split_modules``) is one FSDP unit;
    checkpoints hold the full state dict, so they load like any other run's."""

    sharding_strategy: ShardingStrategy = "FULL_SHARD"
    #: Recompute each block's activations in the backward pass: less memory for about a third more compute.
    activation_checkpointing: bool = False
    #: Keep the sharded parameters (and their gradients) in CPU memory between uses.
    cpu_offload: bool = False


@dataclass
class TrainerConfig:
    """Passed to ``lightning.Trainer`` (only the knobs experiments use)."""

    max_epochs: int | None = field(default=4, metadata=at_least(-1))  # -1: no limit
    max_steps: int = field(default=-1, metadata=at_least(-1))
    accelerator: str = "auto"
    #: Processes per machine (each machine's devices); the run spans ``devices × num_nodes`` processes.
    devices: int | str | list[int] = 1
    #: Machines the run spans; launch one copy of the command per machine with torchrun or under SLURM
    #: (docs/training.md, "More than one machine").
    num_nodes: int = field(default=1, metadata=at_least(1))
    strategy: Strategy = "auto"
    fsdp: FsdpConfig = field(default_factory=FsdpConfig)
    precision: Precision = "32-true"
    gradient_clip_val: float | None = field(default=1.0, metadata=at_least(0))
    #: A fraction of an epoch (float) or a number of training batches (int).
    val_check_interval: int | float = field(default=1.0, metadata=positive())
    check_val_every_n_epoch: int | None = field(default=1, metadata=at_least(1))
    log_every_n_steps: int = field(default=10, metadata=at_least(1))
    limit_train_batches: int | float = field(default=1.0, metadata=at_least(0))
    limit_val_batches: int | float = field(default=1.0, metadata=at_least(0))
    limit_test_batches: int | float = field(default=1.0, metadata=at_least(0))
    fast_dev_run: bool | int = field(default=False, metadata=at_least(0))
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class WandbConfig:
    """Weights & Biases logging; runs offline automatically without credentials."""

    enabled: bool = True
    project: str = "lightning-lookahead"
    entity: str | None = None
    group: str | None = None  # default: the experiment name
    tags: list[str] = field(default_factory=list)
    mode: WandbMode | None = None  # default: online with credentials, else offline


@dataclass
class LoggerConfig:
    """The run's loggers (``lightning_lookahead.training.loggers``): each one is switched on or off here."""

    wandb: WandbConfig = field(default_factory=WandbConfig)
    csv: bool = True  # <run_dir>/csv/metrics.csv, kept across a resume
    tensorboard: bool = False  # <run_dir>/tensorboard (needs the tensorboard package)


@dataclass
class CheckpointConfig:
    """``checkpoints/best.ckpt`` (best by ``monitor``: what the test stage scores) and ``checkpoints/last.ckpt``
    (refreshed every ``checkpoint_every_n_steps`` optimiser steps: what ``resume=last`` restarts from)."""

    best: bool = True
    last: bool = True


@dataclass
class EarlyStoppingConfig:
    """Stop the fit when ``monitor`` (higher is better) has not improved by ``min_delta`` for ``patience``
    validations (Lightning's ``EarlyStopping``)."""

    patience: int = field(default=3, metadata=at_least(1))
    min_delta: float = field(default=0.0, metadata=at_least(0))


@dataclass
class LearningRateMonitorConfig:
    """The learning rate logged to every logger (when there is one)."""

    interval: Literal["step", "epoch"] = "step"


@dataclass
class ProgressConfig:
    """Training progress: Lightning's bar (``trainer.enable_progress_bar`` too must be on) or plain flushed lines."""

    mode: ProgressMode = "auto"


@dataclass
class CallbacksConfig:
    """The trainer's callbacks (``lightning_lookahead.training.callbacks``); ``null`` removes one, a mapping adds it.

    The recipe's own validation-µn callback is not listed: ``monitor: auto`` and the results read what it logs.
    """

    checkpoint: CheckpointConfig | None = field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig | None = None
    lr_monitor: LearningRateMonitorConfig | None = field(default_factory=LearningRateMonitorConfig)
    progress: ProgressConfig | None = field(default_factory=ProgressConfig)


def _default_model() -> PredictorConfig:
    return parse_model_config({"kind": "mlm"})


@dataclass
class ExperimentConfig:
    """The whole experiment; ``model`` is parsed against the config of the predictor ``model.kind`` names."""

    name: str = "experiment"
    #: What a reader of the run should know (how to read its numbers, what to quote instead): printed under the
    #: results, written to results.md and results.json, and the W&B run's notes.
    notes: str | None = None
    seed: int = field(default=42, metadata=at_least(0))
    run_dir: str = "runs/${name}"
    resume: str | None = None  # null | last | path/to.ckpt
    #: The validation metric that chooses the tested checkpoint (and lookahead tune's default objective).
    monitor: Monitor = "auto"
    #: How often last.ckpt is refreshed (what resume=last restarts from), in optimiser steps.
    checkpoint_every_n_steps: int = field(default=50, metadata=at_least(1))
    model: PredictorConfig = field(default_factory=_default_model, metadata=parsed_by(parse_model_config))
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
