"""The query-only classifier (MLC) on the tiny BERT, plus the shared optimiser and scheduler of PredictorModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from routers_testkit import make_batch, make_loader, make_module, make_trainer, score

from lightning_lookahead.training.modules.predictor import PredictorModule

#: First training-step routing loss of the tiny MLC under seed_everything(0); see the test.
PINNED_MLC_FIRST_LOSS = 0.7338966


def _module(tiny_mlm_dir: Path, optim: dict[str, Any] | None = None, **model: Any) -> PredictorModule:
    cfg = {"kind": "mlc", "backbone": str(tiny_mlm_dir), "max_length": 32, **model}
    return make_module(cfg, **(optim or {"lr": 1e-3}))


def test_fit_validate_score(tiny_mlm_dir: Path, examples) -> None:
    L.seed_everything(0)
    module = _module(tiny_mlm_dir)
    assert type(module) is PredictorModule  # no step-dependent inputs: the shared module as is
    assert getattr(module.network.backbone, "pooler", None) is None  # unused parameters would break DDP
    trainer = make_trainer(max_steps=3)
    trainer.fit(module, make_loader(module.inputs, examples, train=True), make_loader(module.inputs, examples, 6))
    logged = set(trainer.callback_metrics)
    assert {"train/loss", "train/routing_loss", "val/loss", "val/reward", "val/routing_accuracy"} <= logged
    assert "train/aux_loss" not in logged  # no auxiliary task
    trainer.validate(module, make_loader(module.inputs, examples), verbose=False)
    assert score(module, examples[:5]).shape == (5, 5)


def test_first_training_loss_is_pinned(tiny_mlm_dir: Path, examples) -> None:
    L.seed_everything(0)
    fresh = _module(tiny_mlm_dir)
    first = next(iter(make_loader(fresh.inputs, examples, train=True)))
    net = fresh.network
    with torch.no_grad():
        hidden = net.backbone(input_ids=first["input_ids"], attention_mask=first["attention_mask"]).last_hidden_state
        logits = net.head(hidden[:, 0])
    scores = first["scores"]
    lo, hi = scores.amin(1, keepdim=True), scores.amax(1, keepdim=True)
    hand = float(F.binary_cross_entropy_with_logits(logits, ((scores - lo) / (hi - lo) >= 0.8).float()))

    L.seed_everything(0)
    module = _module(tiny_mlm_dir)
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, make_loader(module.inputs, examples, train=True))
    logged = float(trainer.callback_metrics["train/loss"])
    assert logged == pytest.approx(float(trainer.callback_metrics["train/routing_loss"]), abs=0)
    assert logged == pytest.approx(hand, abs=1e-5)
    assert logged == pytest.approx(PINNED_MLC_FIRST_LOSS, abs=1e-4)


def test_prompt_is_cut_from_the_left_with_special_tokens(tiny_mlm_dir: Path, examples) -> None:
    inputs = _module(tiny_mlm_dir, max_length=8).inputs
    words = ["write", "a", "function", "to", "sort", "list", "please", "solve"]
    ids = inputs.featurize({**examples[0], "prompt": " ".join(words)})["input_ids"]
    tok = inputs.tokenizer
    assert len(ids) == 8 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens(ids[1:-1]) == words[-6:]  # the end of the prompt survives
    batch = make_batch(inputs, examples[:3])
    assert batch["input_ids"].shape[0] == 3 and batch["attention_mask"].sum(1).tolist() == [
        len(inputs.featurize(ex)["input_ids"]) for ex in examples[:3]
    ]


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_other_poolings_train(tiny_mlm_dir: Path, examples, pooling: str) -> None:
    module = _module(tiny_mlm_dir, pooling=pooling)
    batch = make_batch(module.inputs, examples[:4], train=True)
    out = module.network(batch)
    assert out.logits.shape == (4, 5) and out.aux_loss is None
    module.compute_routing_loss(out.logits, batch["scores"]).backward()
    assert module.network.backbone.get_input_embeddings().weight.grad is not None


def test_adamw_groups_and_per_step_schedule(tiny_mlm_dir: Path, examples) -> None:
    """Linear schedule, warm-up ratio 0.5 over 3 steps → ceil(1.5) = 2 warm-up steps: lr 0, ½, 1 × base."""
    L.seed_everything(0)
    optim = {"lr": 1e-3, "weight_decay": 0.1, "scheduler": "linear", "warmup_ratio": 0.5, "betas": [0.8, 0.99]}
    module = _module(tiny_mlm_dir, optim=optim)
    lrs: list[float] = []

    class Watch(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = make_trainer(max_steps=3, callbacks=[Watch()])
    trainer.fit(module, make_loader(module.inputs, examples, train=True))
    assert lrs == pytest.approx([0.0, 5e-4, 1e-3])
    decay, no_decay = trainer.optimizers[0].param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["betas"] == (0.8, 0.99)
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    no_decay_ids = {id(p) for p in no_decay["params"]}
    head = module.network.head
    assert id(head.norm.weight) in no_decay_ids and id(head.output.bias) in no_decay_ids
    assert trainer.lr_scheduler_configs[0].interval == "step"
