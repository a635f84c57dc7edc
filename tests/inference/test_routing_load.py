"""Loading a trained router for routing: nothing reported as freshly initialised, no MLM head kept, the same scores;
a damaged weights file is one clear line."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_bert

from lightning_lookahead.cli import main
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.inference.export import WEIGHTS_FILE
from lightning_lookahead.models import backbones
from lightning_lookahead.models.registry import build_predictor

WORDS = "write a function sort list story poem sea".split()
PROMPTS = ["write a function", "sort list story write a poem", "sea"]
CANDIDATES = ["frontier-api", "local-llama", "coder-7b"]


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """An exported MLM router on a backbone without an MLM head, and its scores before the export."""
    root = tmp_path_factory.mktemp("routing-load")
    (root / "encoder").mkdir()
    backbone = save_tiny_bert(root / "encoder", WORDS, dropout=0.0, mlm_head=False)  # like MiniLM: no MLM head
    torch.manual_seed(1)
    settings = {"kind": "mlm", "backbone": str(backbone), "max_length": 64, "mask_length": 4}
    predictor = build_predictor(settings, CANDIDATES)  # training's build: the MLM head starts fresh (logged)
    export_router(predictor, root / "run" / "export", name="tiny_mlm")
    return root / "run", TrainedRouter(predictor).score(PROMPTS)


def test_loading_for_routing_reports_no_fresh_weights_and_scores_the_same(mlm_run, caplog, capsys) -> None:
    run_dir, expected = mlm_run
    backbones._reported_fresh.clear()  # as in a fresh `lookahead serve` process
    with caplog.at_level(logging.INFO):
        router = TrainedRouter.from_checkpoint(run_dir)
    messages = [r.getMessage() for r in caplog.records] + capsys.readouterr().err.splitlines()
    assert not [m for m in messages if "freshly initialised" in m], messages
    np.testing.assert_array_equal(router.score(PROMPTS), expected)


def test_the_loaded_router_keeps_no_mlm_head(mlm_run) -> None:
    run_dir, _ = mlm_run
    router = TrainedRouter.from_checkpoint(run_dir)
    names = [name for name, _ in router.network.named_parameters()]
    assert not [n for n in names if n.startswith("backbone.cls.")], names
    assert any(n.startswith("backbone.bert.embeddings.") for n in names)
    with pytest.raises(LookaheadError, match="routing only"):
        router.network.lm_head(torch.zeros(1, 32))


def test_an_export_of_a_loaded_router_routes_the_same(mlm_run, tmp_path: Path, caplog) -> None:
    """`lookahead export` writes what from_checkpoint loaded: without the MLM head, which routing never runs."""
    run_dir, expected = mlm_run
    router = TrainedRouter.from_checkpoint(run_dir)
    export_router(router.predictor, tmp_path / "again" / "export", name="again")
    backbones._reported_fresh.clear()
    with caplog.at_level(logging.INFO):
        again = TrainedRouter.from_checkpoint(tmp_path / "again")
    assert not [r for r in caplog.records if "freshly initialised" in r.getMessage()]
    np.testing.assert_array_equal(again.score(PROMPTS), expected)


def _damaged_copy(run_dir: Path, tmp_path: Path, damage: str) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    weights = copy / "export" / WEIGHTS_FILE
    data = weights.read_bytes()
    if damage == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    else:
        weights.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    return copy


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_weights_file_is_one_clear_line(mlm_run, tmp_path: Path, damage: str, capsys) -> None:
    run_dir, _ = mlm_run
    copy = _damaged_copy(run_dir, tmp_path, damage)
    weights = copy / "export" / WEIGHTS_FILE
    with pytest.raises(LookaheadError) as info:
        TrainedRouter.from_checkpoint(copy)
    message = str(info.value)
    assert message.startswith(f"{weights}: corrupt or truncated safetensors file (")
    assert message.endswith(f"); re-export with `lookahead export {copy}`") and "\n" not in message
    assert "do not fit" not in message
    assert main(["route", "--checkpoint", str(copy), "write a function"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {weights}: corrupt or truncated") and err.count("\n") == 1
