"""The ``lightning.Trainer`` arguments of ``trainer:``, with ``trainer.strategy=fsdp`` built as Lightning's
``FSDPStrategy``.

Lightning itself detects how the processes were started (``torchrun``, SLURM, or its own launcher for
``devices > 1``), so multi-node runs need only ``trainer.num_nodes`` here; docs/training.md shows the launches.
FSDP's units are the backbone's transformer blocks, which the Hugging Face model names in ``_no_split_modules``
(the blocks its own device map never splits), so any backbone gets a sensible wrap without a per-model list.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_lookahead.config.schema import TrainerConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.typed import config_to_dict


def trainer_arguments(trainer: TrainerConfig, module: nn.Module) -> dict[str, Any]:
    """Keyword arguments for ``lightning.Trainer``: every ``trainer:`` setting, the strategy built for ``module``."""
    kwargs = config_to_dict(trainer)
    kwargs.pop("fsdp")
    kwargs["strategy"] = build_strategy(trainer, module)
    return kwargs


def build_strategy(trainer: TrainerConfig, module: nn.Module) -> Any:
    """``trainer.strategy`` as Lightning takes it: the name itself, or an ``FSDPStrategy`` for ``fsdp``."""
    if trainer.strategy != "fsdp":
        return trainer.strategy
    if str(trainer.accelerator) == "auto" and not torch.cuda.is_available():
        raise LookaheadError(
            "trainer.strategy=fsdp needs GPUs and this machine has no CUDA device; use trainer.strategy=ddp on CPUs"
        )
    from lightning.pytorch.strategies import FSDPStrategy

    blocks = transformer_blocks(module)
    return FSDPStrategy(
        sharding_strategy=trainer.fsdp.sharding_strategy,
        auto_wrap_policy=blocks or None,  # none found: the whole model is one unit
        activation_checkpointing_policy=blocks if trainer.fsdp.activation_checkpointing and blocks else None,
        cpu_offload=trainer.fsdp.cpu_offload,
        state_dict_type="full",  # one checkpoint file, loaded as any other (TrainedRouter.from_checkpoint)
    )


def transformer_blocks(module: nn.Module) -> set[type[nn.Module]]:
    """The classes of ``module``'s submodules that a Hugging Face model inside it lists in ``_no_split_modules``."""
    names: set[str] = set()
    for sub in module.modules():
        names.update(getattr(sub, "_no_split_modules", None) or ())
    return {type(sub) for sub in module.modules() if type(sub).__name__ in names}
