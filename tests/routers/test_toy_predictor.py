"""Adding a predictor is a small subclass: a bag-of-words router in under 25 lines, registered and trained."""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import lightning as L
import pytest
import torch
from routers_testkit import CANDIDATES, make_loader, make_trainer
from torch import nn

from lightning_lookahead.models.head import RouterHead
from lightning_lookahead.routers import registry
from lightning_lookahead.routers.base import RouterModule, RouterOutput


@pytest.fixture
def toy_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register inside a copy of the registry, so the toy does not leak into other tests."""
    monkeypatch.setattr(registry, "PREDICTORS", dict(registry.PREDICTORS))

    # ---- the whole predictor (what docs/adding-a-predictor.md shows) ----
    @registry.register_predictor("toy")
    class BagOfWords(RouterModule):
        @dataclass
        class Config:
            kind: str = "toy"
            buckets: int = 64
            hidden: int = 16

        def __init__(self, model, loss=None, optim=None, candidates=None):
            super().__init__(model, loss, optim, candidates)
            self.embed = nn.EmbeddingBag(self.config.buckets, self.config.hidden)
            self.head = RouterHead(self.config.hidden, self.n_candidates)

        def featurize(self, example):
            ids = [zlib.crc32(w.encode()) % self.config.buckets for w in example["prompt"].split()]
            return {"prompt_id": example["prompt_id"], "ids": ids, "scores": example["scores"]}

        def featurize_fingerprint(self):
            return f"toy-crc32-{self.config.buckets}"

        def collate(self, features):
            offsets = [0, *itertools.accumulate(len(f["ids"]) for f in features)][:-1]
            ids = torch.tensor([i for f in features for i in f["ids"]])
            return {"ids": ids, "offsets": torch.tensor(offsets), "scores": self.scores_tensor(features),
                    "prompt_id": [f["prompt_id"] for f in features]}  # fmt: skip

        def forward_batch(self, batch, stage):
            return RouterOutput(logits=self.head(self.embed(batch["ids"], batch["offsets"])))

    # ---- end of the predictor ----
    return "toy"


def test_toy_predictor_trains_through_the_registry(toy_kind: str, examples) -> None:
    assert registry.validate_model_config({"kind": toy_kind, "hidden": 8}) == {
        "kind": "toy",
        "buckets": 64,
        "hidden": 8,
    }
    L.seed_everything(0)
    module = registry.build_predictor({"kind": toy_kind}, {"name": "bce"}, {"lr": 0.05}, CANDIDATES)
    losses: list[float] = []

    class Track(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    trainer = make_trainer(max_epochs=10, callbacks=[Track()])
    loader = make_loader(module, examples, batch_size=4)
    trainer.fit(module, loader, loader)
    assert len(losses) == 30
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])  # it learns the topic → best-candidate mapping
    assert float(trainer.callback_metrics["val/routing_accuracy"]) == 100.0
    trainer.test(module, loader, verbose=False)
    assert module.test_logits[0].shape == (12, 5)
