"""Checks that relate two settings, run once every field has parsed (a single field's range is field metadata).

They run on the composed whole rather than per layer, because an experiment file may change one side of a pair and
leave the other to the file it extends. The per-device arithmetic (``global_batch_size`` over ``devices``) stays in
training: it needs the device count.
"""

from __future__ import annotations

from lightning_lookahead.config.schema import DataConfig, OptimConfig, TrainerConfig
from lightning_lookahead.errors import LookaheadError

#: Accelerators that Lightning's FSDP strategy runs on (``auto`` is checked when the Trainer is built).
FSDP_ACCELERATORS = ("auto", "gpu", "cuda")


def validate_trainer(trainer: TrainerConfig, section: str = "trainer") -> None:
    """FSDP shards over CUDA devices only; an accelerator named otherwise is refused before any model loads."""
    if trainer.strategy == "fsdp" and str(trainer.accelerator) not in FSDP_ACCELERATORS:
        raise LookaheadError(
            f"{section}.strategy=fsdp needs GPUs ({section}.accelerator gpu, cuda or auto on a CUDA machine), "
            f"got {section}.accelerator={trainer.accelerator}; use {section}.strategy=ddp on CPUs"
        )


def validate_optim(optim: OptimConfig, section: str = "optim") -> None:
    """AdamW's betas are two numbers in [0, 1)."""
    if len(optim.betas) != 2:
        raise LookaheadError(f"{section}.betas: expected two numbers, got {list(optim.betas)!r}")
    for beta in optim.betas:
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 <= beta < 1:
            raise LookaheadError(f"{section}.betas: each must be a number in [0, 1), got {list(optim.betas)!r}")


def validate_data(data: DataConfig, section: str = "data") -> None:
    """Batches that divide, a fold that exists, and a candidate pool of distinct names."""
    if data.global_batch_size % data.batch_size:
        raise LookaheadError(
            f"{section}.global_batch_size: must be a multiple of {section}.batch_size ({data.batch_size}), "
            f"got {data.global_batch_size}"
        )
    if data.kfold.fold >= data.kfold.k:
        raise LookaheadError(
            f"{section}.kfold.fold: must be < {section}.kfold.k ({data.kfold.k}), got {data.kfold.fold}"
        )
    names = [str(c) for c in data.candidates]
    if not names:
        raise LookaheadError(f"{section}.candidates: must name at least one model, got []")
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise LookaheadError(f"{section}.candidates: names must be distinct, got {', '.join(repeated)} twice")
    if data.dataset_val_fraction + data.dataset_test_fraction >= 1:
        raise LookaheadError(
            f"{section}.dataset_test_fraction: with {section}.dataset_val_fraction ({data.dataset_val_fraction}) "
            f"it must leave rows for training, got {data.dataset_test_fraction}"
        )
