"""RouterDC: the sample–LLM pairs (ties, overlapping sets) and both contrastive losses by hand, the clusters, a
shrunk training run on the tiny BERT, and the export round trip."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from routers_testkit import CANDIDATES, make_batch, make_loader, make_module, make_trainer, score

from lightning_lookahead.config.compose import compose
from lightning_lookahead.config.schema import LossConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.models.routerdc.network import sample_sample_loss
from lightning_lookahead.training.losses import routerdc_loss, routerdc_pairs, routing_loss
from lightning_lookahead.training.modules.routerdc import RouterDCModule, fit_clusters
from lightning_lookahead.typed import parse_dataclass


def _pairs(normalized: list[float], top_k: int, bottom_k: int) -> list[tuple[int, list[int]]]:
    best, negatives = routerdc_pairs(torch.tensor([normalized], dtype=torch.float64), top_k, bottom_k)
    return [(int(p), torch.nonzero(negatives[0, i]).flatten().tolist()) for i, p in enumerate(best[0])]


def test_pairs_break_ties_by_candidate_index() -> None:
    # three tied best: the first two are the positives; the two tied worst are both negatives
    assert _pairs([1.0, 1.0, 1.0, 0.0, 0.0], 2, 2) == [(0, [3, 4]), (1, [3, 4])]
    # a tie at the bottom boundary: the lower index is the negative
    assert _pairs([1.0, 0.2, 0.5, 0.2, 0.9], 1, 1) == [(0, [1])]


def test_overlapping_sets_never_pair_a_candidate_with_itself_or_an_equal() -> None:
    # 5 candidates, K+ = K− = 3: the middle one is a positive and a negative
    assert _pairs([0.0, 0.25, 0.5, 0.75, 1.0], 3, 3) == [(4, [0, 1, 2]), (3, [0, 1, 2]), (2, [0, 1])]
    # 0/1 scores: the third "positive" is a wrong answer with nothing below it (the authors skip it too)
    assert _pairs([1.0, 1.0, 0.0, 0.0, 0.0], 3, 3) == [(0, [2, 3, 4]), (1, [2, 3, 4]), (2, [])]


def test_sample_llm_loss_by_hand() -> None:
    z = [0.2, -0.4, 0.9, 0.1, -1.0]
    normalized = [0.0, 0.25, 0.5, 0.75, 1.0]  # pairs as in the test above

    def term(p: int, negs: list[int]) -> float:
        return -math.log(math.exp(z[p]) / (math.exp(z[p]) + sum(math.exp(z[n]) for n in negs)))

    row0 = term(4, [0, 1, 2]) + term(3, [0, 1, 2]) + term(2, [0, 1])
    z1 = [0.5, 0.5, -0.5, 0.0, 0.3]
    row1 = sum(  # [1, 1, 0, 0, 0]: the third positive has no negatives and costs 0
        -math.log(math.exp(z1[p]) / (math.exp(z1[p]) + sum(math.exp(z1[n]) for n in (2, 3, 4)))) for p in (0, 1)
    )
    logits = torch.tensor([z, z1])
    got = routerdc_loss(logits, torch.tensor([normalized, [1.0, 1.0, 0.0, 0.0, 0.0]], dtype=torch.float64), 3, 3)
    assert got.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    # through the routing-loss registry, on raw scores (min-max inside)
    raw = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [7.0, 7.0, 3.0, 3.0, 3.0]])
    assert routing_loss("routerdc", top_k=3, bottom_k=3)(logits, raw).item() == pytest.approx(got.item(), abs=1e-6)


def test_sample_llm_loss_is_zero_on_all_equal_rows_and_rejects_bad_k() -> None:
    z = torch.randn(2, 5, requires_grad=True)
    loss = routing_loss("routerdc")(z, torch.full((2, 5), 3.0))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    with pytest.raises(LookaheadError, match="top_k"):
        routing_loss("routerdc", top_k=0)
    with pytest.raises(LookaheadError, match="bottom_k"):
        parse_dataclass(LossConfig, {"name": "routerdc", "bottom_k": 0}, "loss")
    assert parse_dataclass(LossConfig, {"name": "routerdc"}, "loss").top_k == 3


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def test_sample_sample_loss_by_hand() -> None:
    q = [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.2], [0.3, 0.3]]
    clusters = [0, 0, 1, 1, -1]  # the last prompt has no cluster: no anchor, no positive, no negative
    tau = 0.5

    def anchor(i: int, pos: list[int], negs: list[int]) -> float:
        s = [_cos(q[i], q[j]) / tau for j in range(5)]
        return sum(-math.log(math.exp(s[p]) / (math.exp(s[p]) + sum(math.exp(s[n]) for n in negs))) for p in pos) / len(
            pos
        )

    hand = (anchor(0, [1], [2, 3]) + anchor(1, [0], [2, 3]) + anchor(2, [3], [0, 1]) + anchor(3, [2], [0, 1])) / 4
    got = sample_sample_loss(torch.tensor(q), torch.tensor(clusters), tau)
    assert got.item() == pytest.approx(hand, abs=1e-6)


def test_sample_sample_loss_without_anchors_is_zero_with_finite_gradients() -> None:
    q = torch.randn(3, 4, requires_grad=True)
    loss = sample_sample_loss(q, torch.tensor([0, 1, 2]), 1.0)  # every cluster a singleton: no positives
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(q.grad).all()
    q.grad = None
    sample_sample_loss(q, torch.tensor([0, 0, 1]), 1.0).backward()  # anchor 2 has a negative but no positive
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


class _WordEmbedder:
    """A tiny deterministic embedder: topic-word counts (code, math, story), unit length."""

    fingerprint = "words"

    def encode(self, texts):
        topics = (("code", "function", "sort"), ("solve", "math", "equation"), ("story", "cat", "dog"))
        counts = np.array([[sum(w in t.split() for w in words) for words in topics] for t in texts], dtype=np.float32)
        return counts / np.maximum(np.linalg.norm(counts, axis=1, keepdims=True), 1e-9)


def _routing_examples(examples):
    return [SimpleNamespace(prompt_id=ex["prompt_id"], prompt=ex["prompt"]) for ex in examples]


def test_fit_clusters_groups_prompts_by_their_embedding(examples) -> None:
    clusters = fit_clusters(_routing_examples(examples), 3, _WordEmbedder())
    assert set(clusters) == {ex["prompt_id"] for ex in examples}
    by_prompt = {ex["prompt"]: clusters[ex["prompt_id"]] for ex in examples}
    assert by_prompt["solve the equation for x"] == by_prompt["please solve x"]
    assert by_prompt["tell me a story about a cat"] == by_prompt["tell me a story about a dog"]
    assert by_prompt["solve the equation for x"] != by_prompt["tell me a story about a cat"]
    assert set(fit_clusters(_routing_examples(examples[:2]), 5, _WordEmbedder()).values()) <= {0, 1}  # k ≤ prompts


def _module(tiny_mlm_dir: Path, **model) -> RouterDCModule:
    cfg = {"kind": "routerdc", "backbone": str(tiny_mlm_dir), "max_length": 32, "clusters": 3, **model}
    return make_module(cfg, {"name": "routerdc"}, lr=1e-3)


def test_network_logits_are_cosines_over_tau_and_clusters_only_in_training_batches(tiny_mlm_dir, examples) -> None:
    module = _module(tiny_mlm_dir, temperature=0.5)
    assert type(module) is RouterDCModule
    batch = make_batch(module.inputs, examples[:4], train=True)
    assert "cluster" not in batch  # no map yet
    out = module.network(batch)
    assert out.logits.shape == (4, 5) and out.aux_loss is None
    assert out.logits.abs().max() <= 2.0 + 1e-5  # |cos| ≤ 1, over τ = 0.5
    module.inputs.clusters = {"p0": 0, "p1": 0, "p2": 1}
    train = make_batch(module.inputs, examples[:4], train=True)
    assert train["cluster"].tolist() == [0, 0, 1, -1]
    assert "cluster" not in make_batch(module.inputs, examples[:4])  # routing layout
    assert module.network(train).aux_loss is not None


def test_on_fit_start_fits_the_clusters_from_the_datamodule(tiny_mlm_dir, examples, monkeypatch, tmp_path) -> None:
    import lightning_lookahead.routers.embedding_baselines as eb

    seen = {}

    def fake_embedder(name, cache_dir):
        seen.update(name=name, cache_dir=cache_dir)
        return _WordEmbedder()

    monkeypatch.setattr(eb, "default_embedder", fake_embedder)
    module = _module(tiny_mlm_dir)
    datamodule = SimpleNamespace(
        splits=SimpleNamespace(train=_routing_examples(examples)), cfg=SimpleNamespace(cache_dir=str(tmp_path))
    )
    module._trainer = SimpleNamespace(datamodule=datamodule)
    module.on_fit_start()
    assert seen == {"name": "minilm", "cache_dir": tmp_path / "embeddings"}
    assert set(module.inputs.clusters) == {ex["prompt_id"] for ex in examples}
    assert set(module.inputs.clusters.values()) == {0, 1, 2}


def test_routerdc_trains_exports_and_routes_the_same(tiny_mlm_dir: Path, examples, tmp_path: Path) -> None:
    L.seed_everything(0)
    module = _module(tiny_mlm_dir)
    module.inputs.clusters = fit_clusters(_routing_examples(examples), 3, _WordEmbedder())
    trainer = make_trainer(max_steps=4)
    trainer.fit(module, make_loader(module.inputs, examples, train=True), make_loader(module.inputs, examples, 6))
    logged = trainer.callback_metrics
    assert {"train/loss", "train/routing_loss", "train/aux_loss", "train/sample_sample_loss"} <= set(logged)
    assert "val/aux_loss" not in logged  # validation batches carry no clusters
    total = float(logged["train/loss"])
    assert total == pytest.approx(float(logged["train/routing_loss"]) + float(logged["train/aux_loss"]), abs=1e-5)

    export_router(module.predictor, tmp_path / "export", name="routerdc")
    router = TrainedRouter.from_checkpoint(tmp_path / "export")
    assert router.kind == "routerdc" and router.candidates == CANDIDATES
    assert router.predictor.inputs.clusters is None  # routing needs no clusters
    np.testing.assert_allclose(router.score([ex["prompt"] for ex in examples]), score(module, examples), atol=1e-5)


@pytest.mark.parametrize("name", ["routerdc", "routerdc_code", "cpu/routerdc_all"])
def test_routerdc_experiments_use_the_papers_settings(name: str) -> None:
    cfg = compose(name)
    assert cfg.model.kind == "routerdc" and cfg.loss.name == "routerdc"
    assert (cfg.loss.top_k, cfg.loss.bottom_k) == (3, 3)
    assert (cfg.model.temperature, cfg.model.sample_weight, cfg.model.clusters) == (1.0, 1.0, 5)


def test_loss_names_in_the_config_schema_match_the_losses() -> None:
    from typing import get_args

    from lightning_lookahead.config.schema import LossName
    from lightning_lookahead.training.losses import LOSS_NAMES

    assert get_args(LossName) == LOSS_NAMES
