"""`lookahead warmup`: the experiment's training texts warm its backbone's MLM head; the directory goes to stdout."""

from __future__ import annotations

import json
from pathlib import Path

from lightning_lookahead.cli import main


def test_warmup_command_prints_a_cached_directory(tiny_backbone, real_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOKAHEAD_MODEL_CACHE", str(tmp_path / "models"))
    args = ["warmup", "cpu/mlm_code", f"model.backbone={tiny_backbone}", f"data.data_dir={real_data}"]
    args += ["data.max_train_prompts=64", "--steps", "3"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    directory = Path(out.strip().splitlines()[-1])
    assert directory.parent == tmp_path / "models" and (directory / "config.json").is_file()
    marker = json.loads((directory / "lookahead_warmup.json").read_text())
    assert marker["n_texts"] > 256 and marker["settings"]["steps"] == 3
    assert "held-out MLM loss" in err
    assert main(args) == 0  # cached: the same directory again
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(directory)


def test_warmup_command_refuses_bad_steps_in_one_line(tiny_backbone, real_data, capsys):
    args = ["warmup", "cpu/mlm_code", f"model.backbone={tiny_backbone}", f"data.data_dir={real_data}", "--steps", "0"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == "error: warm-up steps must be ≥ 1, got 0"
