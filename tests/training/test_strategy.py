"""``trainer.num_nodes`` and ``trainer.strategy=fsdp``: composed, turned into Trainer arguments, or refused in one line
where the accelerator cannot run them (FSDP needs CUDA; the CPU test machine checks the refusal and the strategy
object, a CUDA machine also builds the Trainer)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import ShardingStrategy
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLayer

from lightning_lookahead.config.compose import compose
from lightning_lookahead.config.schema import TrainerConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.training.recipe import world_size
from lightning_lookahead.training.strategy import trainer_arguments, transformer_blocks
from lightning_lookahead.typed import parse_dataclass


class Wrapped(torch.nn.Module):
    """A backbone inside a head, as the predictors hold it."""

    def __init__(self) -> None:
        super().__init__()
        config = BertConfig(
            vocab_size=32, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=8
        )
        self.backbone = BertModel(config)
        self.head = torch.nn.Linear(8, 3)


def _trainer(overrides: list[str]) -> TrainerConfig:
    return parse_dataclass(TrainerConfig, compose("debug", overrides).trainer, "trainer")


def test_num_nodes_composes_and_counts_in_the_world_size():
    trainer = _trainer(["trainer.num_nodes=2", "trainer.strategy=ddp"])
    kwargs = trainer_arguments(trainer, Wrapped())
    assert kwargs["num_nodes"] == 2 and kwargs["strategy"] == "ddp" and "fsdp" not in kwargs
    assert world_size(kwargs["devices"], kwargs["num_nodes"]) == 2
    assert _trainer([]).num_nodes == 1


def test_fsdp_on_a_cpu_accelerator_is_refused_at_compose_time():
    with pytest.raises(LookaheadError) as info:
        compose("debug", ["trainer.strategy=fsdp"])  # debug runs on trainer.accelerator=cpu
    assert str(info.value) == (
        "trainer.strategy=fsdp needs GPUs (trainer.accelerator gpu, cuda or auto on a CUDA machine), got "
        "trainer.accelerator=cpu; use trainer.strategy=ddp on CPUs"
    )


def test_fsdp_wraps_the_backbone_blocks():
    blocks = {BertEmbeddings, BertLayer}  # BertModel._no_split_modules
    assert transformer_blocks(Wrapped()) == blocks
    trainer = _trainer(
        ["trainer.accelerator=gpu", "trainer.strategy=fsdp", "trainer.fsdp.sharding_strategy=SHARD_GRAD_OP"]
    )
    strategy = trainer_arguments(trainer, Wrapped())["strategy"]
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.sharding_strategy == ShardingStrategy.SHARD_GRAD_OP
    assert strategy._state_dict_type == "full"  # one checkpoint file, loadable like a DDP run's
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == blocks
    assert strategy._activation_checkpointing_kwargs == {} and not strategy.cpu_offload.offload_params

    trainer = _trainer(
        [
            "trainer.accelerator=cuda",
            "trainer.strategy=fsdp",
            "trainer.fsdp.activation_checkpointing=true",
            "trainer.fsdp.cpu_offload=true",
        ]
    )
    strategy = trainer_arguments(trainer, Wrapped())["strategy"]
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == blocks
    assert strategy.cpu_offload.offload_params
    assert strategy.sharding_strategy == ShardingStrategy.FULL_SHARD


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_fsdp_with_auto_accelerator_and_no_cuda_is_one_line():
    trainer = _trainer(["trainer.accelerator=auto", "trainer.strategy=fsdp"])
    with pytest.raises(LookaheadError, match=r"^trainer\.strategy=fsdp needs GPUs and this machine has no CUDA device"):
        trainer_arguments(trainer, Wrapped())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FSDP needs a CUDA device")
def test_fsdp_trainer_is_built_on_cuda():
    trainer = _trainer(
        ["trainer.accelerator=gpu", "trainer.strategy=fsdp", "trainer.fsdp.activation_checkpointing=true"]
    )
    built = L.Trainer(**trainer_arguments(trainer, Wrapped()), logger=False)
    assert isinstance(built.strategy, FSDPStrategy)
