"""Tiny trained-looking runs (MLM, MLC, RouterDC on a tiny BERT) and their ONNX bundles, built once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tiny_models import save_tiny_bert

from lightning_lookahead.cli import main
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import export_router
from lightning_lookahead.models.registry import build_predictor

WORDS = "def return import class for in if else while print list sort sum count write function number value".split()
KINDS = ("mlm", "mlc", "routerdc")
#: Std of sharpened random weights, so prompts get clearly different scores (as tests/inference/test_engines.py).
SHARP_STD = 0.3
CALIBRATIONS = {
    "version": 1,
    "calibrations": {
        "cheap": {
            "rule": "penalty",
            "candidates": list(PAPER_CANDIDATES),
            "costs": [1.0, 2.0, 3.0, 4.0, 5.0],
            "lam": 0.05,
            "tau": 0.5,
            "target": {"cost": 2.5},
        }
    },
}


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run directories (config.yaml, export/, calibrations.json) of freshly initialised routers, one per kind."""
    root = tmp_path_factory.mktemp("bundle-runs")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", WORDS, dropout=0.0)
    runs = {}
    for kind in KINDS:
        model = {"kind": kind, "backbone": str(backbone), "max_length": 24}
        if kind == "mlm":
            model.update(max_length=48, mask_length=4)
        torch.manual_seed(0)
        predictor = build_predictor(model, PAPER_CANDIDATES)
        with torch.no_grad():
            for weight in predictor.network.backbone.parameters():
                if weight.ndim == 2:
                    weight.normal_(0.0, SHARP_STD)
        run = root / kind
        export_router(
            predictor, run / "export", name=f"tiny_{kind}", response_tokens=dict.fromkeys(PAPER_CANDIDATES, 100.0)
        )
        config = {"name": f"tiny_{kind}", "model": {"kind": kind}, "data": {"candidates": list(PAPER_CANDIDATES)}}
        (run / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        (run / "calibrations.json").write_text(json.dumps(CALIBRATIONS), encoding="utf-8")
        runs[kind] = run
    return runs


@pytest.fixture(scope="session")
def bundles(tiny_runs: dict[str, Path]) -> dict[str, Path]:
    """``lookahead export RUN --format onnx`` of every tiny run (into RUN/bundle)."""
    for kind, run in tiny_runs.items():
        assert main(["export", str(run), "--format", "onnx"]) == 0, kind
    return {kind: run / "bundle" for kind, run in tiny_runs.items()}
