"""Typed sections of an experiment config; OmegaConf validates YAML and overrides against them.

Predictor-specific settings (``model:``) are validated against the ``Config`` dataclass of the predictor
named by ``model.kind`` (see ``lightning_lookahead.routers.registry``), so a new predictor brings its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lightning_lookahead.data.schema import PAPER_CANDIDATES


@dataclass
class LossConfig:
    """Routing loss (METHOD §6): bce | ce | mse | forward_kl | reverse_kl on per-prompt normalised scores."""

    name: str = "bce"
    threshold: float = 0.8
    temperature: float = 0.1
    score_norm: str = "min-max"


@dataclass
class OptimConfig:
    """AdamW with a learning-rate schedule; the paper: lr 1e-5, cosine, no warm-up, no weight decay."""

    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    scheduler: str = "cosine"  # cosine | linear | constant
    warmup_ratio: float = 0.0


@dataclass
class KFoldConfig:
    """Cross-validation inside a family's benchmarks (for families whose training labels are absent)."""

    k: int = 5
    fold: int = 0
    seed: int = 42
    val_fraction: float = 0.1


@dataclass
class DataConfig:
    """Which prompts train, validate and test a router, and how they are batched."""

    family: str = "code"  # chat | math | code | all
    protocol: str = "paper"  # paper | kfold
    candidates: list[str] = field(default_factory=lambda: list(PAPER_CANDIDATES))
    data_dir: str = "${oc.env:LOOKAHEAD_DATA_DIR,data}"
    cache_dir: str = "${oc.env:LOOKAHEAD_CACHE_DIR,.cache/lookahead}"
    kfold: KFoldConfig = field(default_factory=KFoldConfig)
    batch_size: int = 16  # prompts per device per micro-batch
    global_batch_size: int = 64  # prompts per optimiser step over all devices; sets gradient accumulation
    eval_batch_size: int = 32
    num_workers: int = 0
    length_grouped: bool = False  # batch similar-length prompts together (training only; one device)
    max_train_prompts: int | None = None  # a cap for quick runs (seeded subset)
    max_eval_prompts: int | None = None  # caps validation and each test benchmark; not comparable to the paper
    subset_seed: int = 42  # seed of the max_*_prompts subsets


@dataclass
class TrainerConfig:
    """Passed to ``lightning.Trainer`` (only the knobs experiments use)."""

    max_epochs: int = 4
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    gradient_clip_val: float = 1.0
    val_check_interval: Any = 1.0
    check_val_every_n_epoch: int | None = 1
    log_every_n_steps: int = 10
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    fast_dev_run: Any = False
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
    mode: str | None = None  # online | offline | disabled; default: online with credentials, else offline


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    csv: bool = True


@dataclass
class ExperimentConfig:
    """The whole experiment; ``model`` is checked separately against the predictor's own Config."""

    name: str = "experiment"
    seed: int = 42
    run_dir: str = "runs/${name}"
    resume: str | None = None  # null | last | path/to.ckpt
    checkpoint_every_n_steps: int = 50  # how often last.ckpt is refreshed (what resume=last restarts from)
    model: dict[str, Any] = field(default_factory=lambda: {"kind": "mlm"})
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
