"""`lookahead validate` and `lookahead train` refuse the same bad configs: one line, exit 2, nothing loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from lightning_lookahead.cli import main

REPO = Path(__file__).resolve().parents[2]

BAD = [
    ("optim.scheduler=cosin", "optim.scheduler"),
    ("loss.name=bcee", "loss.name"),
    ("data.family=maths", "data.family"),
    ("optim.lr=-1", "optim.lr"),
    ("trainer.precision=17", "trainer.precision"),
    ("data.batch_size=0", "data.batch_size"),
    ("model.backbone=nonexistent/model", "model.backbone"),
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    command = [sys.executable, "-m", "lightning_lookahead.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


@pytest.mark.parametrize(("override", "key"), BAD)
def test_validate_refuses_with_one_line(override, key, capsys):
    assert main(["validate", "cpu/mlm_code", override]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert f" {key}: " in captured.err and captured.out == ""


@pytest.mark.parametrize(("override", "key"), BAD)
def test_train_refuses_the_same_before_anything_loads(override, key, capsys, monkeypatch):
    runs: list[object] = []
    recipe = types.ModuleType("lightning_lookahead.training.recipe")
    recipe.run_experiment = runs.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lightning_lookahead.training.recipe", recipe)
    assert main(["train", "cpu/mlm_code", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and f" {key}: " in err
    assert runs == []  # refused at compose: the training recipe never started
    assert main(["train", "cpu/mlm_code"]) == 0 and len(runs) == 1  # the same config without the bad value runs


@pytest.mark.parametrize("override", ["data.batch_size=0", "optim.lr=-1"])
def test_train_in_a_fresh_process_exits_2_without_importing_lightning(override):
    code = (
        "import sys; from lightning_lookahead.cli import main; "
        f"rc = main(['train', 'cpu/mlm_code', {override!r}]); "
        "print(rc, 'lightning' in sys.modules, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.split() == ["2", "False", "False"]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: command-line override: {override.split('=')[0]}: ")


def test_validate_imports_no_lightning():
    code = (
        "import sys; from lightning_lookahead.cli import main; "
        "rc = main(['validate', '--all']); print(rc, 'lightning' in sys.modules, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.split()[-3:] == ["0", "False", "False"], done.stderr[-2000:]


def test_the_module_entry_point_prints_one_line():
    done = _cli("validate", "cpu/mlm_code", "optim.lr=-1")
    assert done.returncode == 2 and done.stderr == "error: command-line override: optim.lr: must be > 0, got -1\n"


def test_good_configs_validate(capsys):
    assert main(["validate", "mlm", "family=math", "trainer.max_epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "name: mlm_math" in out and "family: math" in out and "max_epochs: 1" in out
    assert main(["validate", "mlm_math"]) == 0 and "name: mlm_math" in capsys.readouterr().out
