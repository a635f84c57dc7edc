"""Routing torchmetrics: hand values, batch accumulation and a real 2-process DDP (gloo, CPU) sync."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics import MetricCollection

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.benchmarks import decide, validation_reward
from lightning_lookahead.metrics.routing import (
    NormalizedRoutingReward,
    PickShares,
    RoutingAccuracy,
    RoutingReward,
)

CANDIDATES = ("a", "b", "c")


def collection() -> MetricCollection:
    return MetricCollection(
        {
            "reward": RoutingReward(),
            "normalized_reward": NormalizedRoutingReward(),
            "routing_accuracy": RoutingAccuracy(),
            "picks": PickShares(CANDIDATES),
        }
    )


def data(seed: int = 0, n: int = 37) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and raw scores on a coarse grid, so that ties occur in both."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randint(0, 3, (n, 3), generator=gen).float()
    scores = torch.randint(0, 4, (n, 3), generator=gen).float() * 1.5 - 2.0
    return logits, scores


def reference(logits: torch.Tensor, scores: torch.Tensor) -> dict:
    """The offline functions on the concatenated data."""
    choices = decide(logits.numpy())
    out = validation_reward(scores.numpy(), choices)
    out["picks"] = np.bincount(choices, minlength=len(CANDIDATES)) / len(choices)
    return out


def assert_matches(result: dict, expected: dict) -> None:
    assert float(result["reward"]) == pytest.approx(expected["reward"], abs=1e-6)
    assert float(result["normalized_reward"]) == pytest.approx(expected["normalized_reward"], abs=1e-6)
    assert float(result["routing_accuracy"]) == pytest.approx(expected["routing_accuracy"], abs=1e-4)
    assert result["picks"].tolist() == pytest.approx(expected["picks"].tolist(), abs=1e-6)


def test_hand_values_and_logit_ties() -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0], [0.0, 10.0, 5.0]])
    logits = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 2.0]])  # picks 1, 0 (tie), 1 (tie)
    metrics = collection()
    metrics.update(logits, scores)
    out = metrics.compute()
    assert float(out["reward"]) == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert float(out["normalized_reward"]) == pytest.approx(0.5 / (2 / 3))
    assert float(out["routing_accuracy"]) == pytest.approx(200 / 3)  # oracle: 2, 0, 1
    assert out["picks"].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert metrics["picks"].as_dict(out["picks"]) == {"a": pytest.approx(1 / 3), "b": pytest.approx(2 / 3), "c": 0.0}


def test_all_ties_give_zero_normalized_reward() -> None:
    metric = NormalizedRoutingReward()
    metric.update(torch.randn(4, 3), torch.ones(4, 3))
    assert float(metric.compute()) == 0.0


def test_accumulation_over_batches_equals_offline_functions() -> None:
    logits, scores = data()
    metrics = collection()
    for start in range(0, len(logits), 8):  # uneven last batch
        metrics.update(logits[start : start + 8], scores[start : start + 8])
    assert_matches(metrics.compute(), reference(logits, scores))
    metrics.reset()
    metrics.update(logits[:5], scores[:5])
    assert_matches(metrics.compute(), reference(logits[:5], scores[:5]))


def test_shape_checks() -> None:
    with pytest.raises(LookaheadError, match="does not match"):
        RoutingReward().update(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(LookaheadError, match="shape"):
        RoutingAccuracy().update(torch.zeros(3), torch.zeros(3))
    with pytest.raises(LookaheadError, match="expected 3"):
        PickShares(CANDIDATES).update(torch.zeros(2, 4))
    assert PickShares(2).candidates == ("candidate_0", "candidate_1")


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """Each rank updates with its own part of the data; compute() syncs the sum states across ranks."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        logits, scores = data()
        part = slice(0, 20) if rank == 0 else slice(20, None)  # unequal halves: 20 and 17 prompts
        metrics = collection()
        local = RoutingReward(sync_on_compute=False)  # proves the synced value is not just this rank's
        for start in range(part.start, part.stop or len(logits), 6):
            stop = min(start + 6, part.stop or len(logits))
            metrics.update(logits[start:stop], scores[start:stop])
            local.update(logits[start:stop], scores[start:stop])
        out = metrics.compute()
        result = {k: (v.tolist() if k == "picks" else float(v)) for k, v in out.items()}
        result["local_reward"] = float(local.compute())
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_ddp_sync_matches_full_data(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    expected = reference(*data())
    local_rewards = []
    for rank in range(2):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        result["picks"] = torch.tensor(result["picks"])
        assert_matches(result, expected)
        local_rewards.append(result["local_reward"])
    assert local_rewards[0] != pytest.approx(expected["reward"], abs=1e-6)  # the halves alone differ
