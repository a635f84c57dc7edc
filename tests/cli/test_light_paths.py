"""The light commands stay light: `validate`, `route`, `calibrate` and `serve` never import Lightning or torchmetrics.

Each runs in a fresh interpreter, as a user's shell would, and reports which heavy packages ended up imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_bert

from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import export_router
from lightning_lookahead.models.registry import build_predictor

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("lightning", "lightning.pytorch", "torchmetrics")

_RUN = """
import json, sys
import lightning_lookahead.serving as serving
serving.serve = lambda app, **kw: print("app ready:", type(app).__name__)  # build the app, do not bind a port
from lightning_lookahead.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "heavy": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("light-paths")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", "write a function sort list story".split(), dropout=0.0)
    torch.manual_seed(0)
    predictor = build_predictor({"kind": "mlc", "backbone": str(backbone), "max_length": 32}, PAPER_CANDIDATES)
    export_router(predictor, root / "run" / "export", name="tiny")
    return root / "run"


def _run(*args: str) -> dict:
    env_keys = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env_keys},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_validate_does_not_import_lightning() -> None:
    assert _run("validate", "cpu/mlm_code") == {"rc": 0, "heavy": []}


def test_route_does_not_import_lightning(run_dir: Path) -> None:
    assert _run("route", "--checkpoint", str(run_dir), "write a function to sort a list") == {"rc": 0, "heavy": []}


def test_serve_does_not_import_lightning(run_dir: Path) -> None:
    backends = str(ROOT / "examples" / "backends.yaml")
    assert _run("serve", "--checkpoint", str(run_dir), "--backends", backends) == {"rc": 0, "heavy": []}


def test_calibrate_and_route_with_a_calibration_do_not_import_lightning(run_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    words = "write a function sort list story".split()
    log.write_text("\n".join(" ".join(words[i % 6 :] + words[: i % 6]) + f" {i}" for i in range(60)) + "\n")
    calibrate = ("calibrate", "--checkpoint", str(run_dir), "--prompts", str(log), "--output-tokens", "100")
    assert _run(*calibrate, "--target-cost", "1000", "--name", "light") == {"rc": 0, "heavy": []}
    route = ("route", "--checkpoint", str(run_dir), "--calibration", "light", "write a function to sort a list")
    assert _run(*route) == {"rc": 0, "heavy": []}
