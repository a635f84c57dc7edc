"""ZOOTER = the query-only classifier (kind mlc) + reward distillation (loss.name forward_kl): the loss by hand,
the shipped experiments' settings, and a shrunk training run on the tiny BERT."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from routers_testkit import make_loader, make_module, make_trainer, score

from lightning_lookahead.config.compose import compose
from lightning_lookahead.training.losses import routing_loss

ZOOTER_LOSS = {"name": "forward_kl", "temperature": 0.1, "score_norm": "min-max"}


def _softmax(v: list[float]) -> list[float]:
    m = max(v)
    e = [math.exp(x - m) for x in v]
    return [x / sum(e) for x in e]


def test_zooter_loss_is_kl_from_the_tempered_reward_distribution_to_the_router() -> None:
    # raw rewards [2, 4, 6] → min-max [0, .5, 1] → p = softmax([0, 5, 10]); q = softmax(z)
    z = [0.3, -0.2, 1.1]
    p = _softmax([0.0 / 0.1, 0.5 / 0.1, 1.0 / 0.1])
    q = _softmax(z)
    hand = sum(pj * (math.log(pj) - math.log(qj)) for pj, qj in zip(p, q, strict=True))
    # a second prompt with a tie at the top: [1, 1, 0] → p = softmax([10, 10, 0])
    z2 = [0.0, 0.5, -0.5]
    p2 = _softmax([10.0, 10.0, 0.0])
    hand2 = sum(pj * (math.log(pj) - math.log(qj)) for pj, qj in zip(p2, _softmax(z2), strict=True))
    loss = routing_loss(**ZOOTER_LOSS)(torch.tensor([z, z2]), torch.tensor([[2.0, 4.0, 6.0], [1.0, 1.0, 0.0]]))
    assert loss.item() == pytest.approx((hand + hand2) / 2, abs=1e-6)


def test_router_matching_the_target_distribution_has_zero_loss() -> None:
    scores = torch.tensor([[0.0, 5.0, 10.0]])
    z = torch.tensor([[0.0, 5.0, 10.0]])  # logits = normalised rewards / T: q = p
    assert routing_loss(**ZOOTER_LOSS)(z, scores).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["zooter", "zooter_math", "cpu/zooter_all"])
def test_zooter_experiments_are_mlc_with_the_kl_loss(name: str) -> None:
    cfg = compose(name)
    assert cfg.model.kind == "mlc"
    assert (cfg.loss.name, cfg.loss.temperature, cfg.loss.score_norm) == ("forward_kl", 0.1, "min-max")
    assert cfg.name.startswith(("zooter", "cpu_zooter"))


def test_cpu_zooter_differs_from_cpu_mlc_only_in_the_loss() -> None:
    zooter, mlc = compose("cpu/zooter_all"), compose("cpu/mlc_all")
    for section in ("model", "data", "optim", "trainer"):
        assert getattr(zooter, section) == getattr(mlc, section), section
    assert mlc.loss.name == "bce"


def test_zooter_trains_on_the_tiny_bert(tiny_mlm_dir: Path, examples) -> None:
    L.seed_everything(0)
    module = make_module({"kind": "mlc", "backbone": str(tiny_mlm_dir), "max_length": 32}, ZOOTER_LOSS, lr=1e-3)
    first = next(iter(make_loader(module.inputs, examples, train=True)))
    with torch.no_grad():
        expected = float(routing_loss(**ZOOTER_LOSS)(module.network(first).logits, first["scores"]))
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, make_loader(module.inputs, examples, train=True), make_loader(module.inputs, examples, 6))
    assert float(trainer.callback_metrics["train/routing_loss"]) == pytest.approx(expected, abs=1e-5)
    trainer.validate(module, make_loader(module.inputs, examples, 6), verbose=False)
    assert math.isfinite(float(trainer.callback_metrics["val/loss"]))
    assert score(module, examples[:5]).shape == (5, 5)
