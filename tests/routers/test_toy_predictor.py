"""Adding a predictor is one config dataclass, one network builder and (optionally) one thin module.

The toy below is what docs/adding-a-predictor.md shows: a bag-of-words router registered, trained by the real
Lightning loop, exported and served by :class:`TrainedRouter` through the same scoring path as the built-ins.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from routers_testkit import CANDIDATES, make_loader, make_module, make_trainer, score
from torch import nn

from lightning_lookahead.data.inputs import scores_tensor
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.models import registry
from lightning_lookahead.models.predictor import NetworkOutput, Predictor, PredictorConfig
from lightning_lookahead.models.routing_head import RoutingHead
from lightning_lookahead.training.modules import registry as module_registry
from lightning_lookahead.training.modules.mlm import MLMModule
from lightning_lookahead.training.modules.predictor import PredictorModule
from lightning_lookahead.training.modules.routerdc import RouterDCModule
from lightning_lookahead.typed import at_least


# ---- the whole predictor (what docs/adding-a-predictor.md shows) ----
@dataclass
class ToyConfig(PredictorConfig):
    kind: str = "toy"
    buckets: int = field(default=64, metadata=at_least(1))
    hidden: int = field(default=16, metadata=at_least(1))


@dataclass
class ToyInputs:
    buckets: int
    n_candidates: int

    @property
    def fingerprint(self) -> str:
        return f"toy-crc32-{self.buckets}"

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        ids = [zlib.crc32(w.encode()) % self.buckets for w in example["prompt"].split()]
        return {"ids": ids, "scores": example["scores"]}

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        offsets = [0, *itertools.accumulate(len(f["ids"]) for f in features)][:-1]
        return {"ids": torch.tensor([i for f in features for i in f["ids"]]), "offsets": torch.tensor(offsets),
                "scores": scores_tensor(features, self.n_candidates)}  # fmt: skip


class BagOfWords(nn.Module):
    def __init__(self, config: ToyConfig, n_candidates: int) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(config.buckets, config.hidden)
        self.head = RoutingHead(config.hidden, n_candidates)

    def forward(self, batch: dict[str, torch.Tensor]) -> NetworkOutput:
        return NetworkOutput(logits=self.head(self.embed(batch["ids"], batch["offsets"])))


def build_toy(config: ToyConfig, candidates: list[str]) -> Predictor:
    n = len(candidates)
    return Predictor(config, BagOfWords(config, n), ToyInputs(config.buckets, n), candidates)


# ---- end of the predictor ----


@pytest.fixture
def toy_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register inside a copy of the registry, so the toy does not leak into other tests."""
    monkeypatch.setattr(registry, "PREDICTORS", dict(registry.PREDICTORS))
    registry.register_predictor("toy", config=ToyConfig, build=build_toy)
    return "toy"


def test_toy_predictor_trains_exports_and_serves(toy_kind: str, examples, tmp_path) -> None:
    assert registry.validate_model_config({"kind": toy_kind, "hidden": 8}) == {
        "kind": "toy",
        "buckets": 64,
        "hidden": 8,
    }
    L.seed_everything(0)
    module = make_module({"kind": toy_kind}, lr=0.05)
    losses: list[float] = []

    class Track(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    trainer = make_trainer(max_epochs=10, callbacks=[Track()])
    trainer.fit(module, make_loader(module.inputs, examples, train=True), make_loader(module.inputs, examples))
    assert len(losses) == 30
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])  # it learns the topic → best-candidate mapping
    assert float(trainer.callback_metrics["val/routing_accuracy"]) == 100.0

    export_router(module.predictor, tmp_path / "export", name="toy")
    router = TrainedRouter.from_checkpoint(tmp_path / "export")
    assert router.kind == "toy" and router.candidates == CANDIDATES
    np.testing.assert_allclose(router.score([ex["prompt"] for ex in examples]), score(module, examples), atol=1e-6)
    best = [int(np.argmax(ex["scores"])) for ex in examples]
    assert [d.index for d in router.route([ex["prompt"] for ex in examples])] == best


# ---- a module of its own (the training side, what docs/adding-a-predictor.md shows after the predictor) ----
class ToyModule(PredictorModule):
    def prepare_batch(self, batch: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        return batch


def test_a_kind_trains_with_the_module_it_registers(toy_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module_registry, "MODULES", dict(module_registry.MODULES))
    assert type(make_module({"kind": toy_kind})) is PredictorModule  # the default
    with pytest.raises(LookaheadError, match="must subclass PredictorModule"):
        module_registry.register_module(toy_kind, nn.Module)  # type: ignore[arg-type]
    with pytest.raises(LookaheadError, match="predictor kind"):
        module_registry.register_module("tyo", ToyModule)  # register the predictor first
    module_registry.register_module(toy_kind, ToyModule)
    assert type(make_module({"kind": toy_kind})) is ToyModule


def test_builtin_kinds_train_with_their_modules() -> None:
    modules = {kind: module_registry.module_class(kind) for kind in ("mlm", "routerdc", "mlc", "clm", "gt_response")}
    assert modules == {
        "mlm": MLMModule,
        "routerdc": RouterDCModule,
        "mlc": PredictorModule,
        "clm": PredictorModule,
        "gt_response": PredictorModule,
    }
