"""Commands on a user's own dataset: `validate` shows the file's pool, errors name the flag that was typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from own_dataset_kit import CANDIDATES, rows, write_jsonl

from lightning_lookahead.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "mine.jsonl", rows(8))


def test_validate_shows_the_files_candidates_and_domains(dataset: Path, capsys) -> None:
    assert main(["validate", "cpu/mlm_code", f"data.dataset={dataset}"]) == 0
    out = capsys.readouterr().out
    cfg = yaml.safe_load(out)  # the summary lines are YAML comments: the output stays one YAML document
    assert cfg["data"]["candidates"] == CANDIDATES
    assert cfg["name"] == "cpu_mlm_code_mine"
    comments = [line for line in out.splitlines() if line.startswith("# ")]
    assert any(line.startswith("# domains: chat 8, code 8, math 8") for line in comments), comments
    assert any("3 candidates: frontier-api, local-llama, coder-7b" in line for line in comments), comments


def test_validate_with_a_subset_of_the_files_candidates(dataset: Path, capsys) -> None:
    args = ["validate", "cpu/mlm_code", f"data.dataset={dataset}", "data.candidates=[coder-7b,local-llama]"]
    assert main(args) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["candidates"] == ["coder-7b", "local-llama"]


def test_validate_with_a_dataset_stays_light(dataset: Path) -> None:
    code = (
        "import json, sys; from lightning_lookahead.cli import main; "
        f"rc = main(['validate', 'cpu/mlm_code', 'data.dataset={dataset}']); "
        "heavy = [m for m in ('torch', 'lightning', 'torchmetrics') if m in sys.modules]; "
        "print(json.dumps({'rc': rc, 'heavy': heavy}))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"rc": 0, "heavy": []}


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    return captured.err


@pytest.mark.parametrize(
    "command",
    [
        ["data", "check", "--dataset", "{missing}"],
        ["evaluate", "--dataset", "{missing}", "--router", "oracle"],
    ],
)
def test_a_missing_dataset_names_the_flag_that_was_typed(command, tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "missing.jsonl")
    assert main([part.format(missing=missing) for part in command]) == 2
    err = _one_line_error(capsys)
    assert f"--dataset {missing!r}: file not found" in err
    assert "data.dataset" not in err


def test_evaluate_split_errors_name_its_flags(tmp_path: Path, capsys) -> None:
    only_train = write_jsonl(tmp_path / "train_only.jsonl", [{**r, "split": "train"} for r in rows(4)])
    assert main(["evaluate", "--dataset", str(only_train), "--router", "oracle"]) == 2
    err = _one_line_error(capsys)
    assert f"--dataset {only_train}: no usable val rows" in err
    assert "--fit-set dataset_val_fraction=..." in err and "data." not in err
