"""Progress without a terminal: plain lines in a log for training, featurising, `data fetch` and `route --file`;
on a terminal the bars stay and no line is printed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from recipe_testkit import debug_run

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.fetch import MirrorSource, fetch
from lightning_lookahead.data.manifest import ManifestEntry
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.progress import INTERVAL_ENV, progress_interval, training_progress

ETA = re.compile(r"ETA \d+:\d\d:\d\d")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_training_without_a_terminal_prints_progress_lines_to_its_log(tiny_backbone, real_data, tmp_path):
    args = [
        *[sys.executable, "-m", "lightning_lookahead.cli", "train", "debug"],
        *debug_run(tiny_backbone, real_data, tmp_path),
        "data.max_train_prompts=16",  # 4 optimiser steps
        "trainer.val_check_interval=2",  # validations after steps 2 and 4
        "trainer.enable_progress_bar=true",  # replaced by the lines: a bar draws nothing readable in a file
    ]
    env = {**os.environ, INTERVAL_ENV: "0", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "train.log"
    with open(log, "w") as out:  # `make train > log`: stdout is a file
        done = subprocess.run(args, stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.startswith("[train]")]
    steps = [int(m.group(1)) for line in lines if (m := re.search(r"step (\d+)/4 ", line))]
    assert len(steps) == len(lines) and steps == sorted(steps)  # every line says where it is, never backwards
    assert steps[0] == 0 and set(range(1, 5)) <= set(steps)  # the start line, then a line at every step (interval 0)
    interval_lines = [line for line in lines if line.startswith("[train] step ")]
    assert interval_lines and all(ETA.search(line) and "loss " in line for line in interval_lines)
    validations = [line for line in lines if line.startswith("[train] validation at step")]
    assert len(validations) == 2
    assert all("val/reward " in line and "val/avg_mu_n " in line for line in validations)
    assert lines[-1].startswith("[train] finished: step 4/4 (100%)")
    assert "[data] featurising train (16 prompts)" in text and "[data] featurised train (16 prompts) in" in text
    assert "\r" not in text and "it/s]" not in text  # no progress bar in the log


def test_on_a_terminal_the_bar_stays_and_no_lines_are_printed(tiny_backbone, real_data, tmp_path, monkeypatch):
    from lightning_lookahead.training.recipe import run_experiment

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv(INTERVAL_ENV, "0")
    overrides = [
        *debug_run(tiny_backbone, real_data, tmp_path),
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=true",
    ]
    run_experiment(compose("debug", overrides))
    shown = terminal.getvalue()
    assert "Epoch 0" in shown  # Lightning's bar, drawn on the terminal
    assert "[train]" not in shown and "[data]" not in shown


def test_the_callback_is_only_for_streams_that_are_not_terminals(monkeypatch):
    assert training_progress(Terminal()) is None
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    callback = training_progress(io.StringIO())
    assert callback is not None and callback.interval == 2.5
    from lightning.pytorch.callbacks import Callback

    assert isinstance(callback, Callback)


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_interval_is_a_user_error(monkeypatch, value):
    monkeypatch.setenv(INTERVAL_ENV, value)
    with pytest.raises(LookaheadError, match=INTERVAL_ENV):
        progress_interval()


def test_the_interval_defaults_to_30_seconds(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert progress_interval() == 30.0


# ---------------------------------------------------------------------------------------------- data fetch


def _mirror(root: Path) -> list[ManifestEntry]:
    entries = []
    for i, rel in enumerate(["test/GSM8k/m.json.gz", "test/MBPP/m.json.gz", "test/MATH/m.json.gz"]):
        payload = gzip.compress(json.dumps({"i": i, "pad": "x" * 5000 * (i + 1)}).encode())
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(payload)
        blob = hashlib.sha1(f"blob {len(payload)}\0".encode() + payload).hexdigest()
        sha256 = hashlib.sha256(payload).hexdigest()
        entries.append(ManifestEntry(path=rel, size=len(payload), git_blob_sha1=blob, sha256=sha256))
    return entries


def test_fetch_without_a_terminal_prints_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(INTERVAL_ENV, "0")
    entries = _mirror(tmp_path / "mirror")
    fetch(tmp_path / "data", MirrorSource(tmp_path / "mirror"), manifest=entries)
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\[fetch\] 0\.0 MB to go \(3 files from mirror .*mirror\)", lines[0])
    progress = [line for line in lines[1:-1] if line.startswith("[fetch] ")]
    assert progress and all(ETA.search(line) for line in progress)
    assert lines[-1].startswith("[fetch] done: 0.0 of 0.0 MB (100%)")


def test_fetch_on_a_terminal_draws_its_bar(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv(INTERVAL_ENV, "0")
    entries = _mirror(tmp_path / "mirror")
    fetch(tmp_path / "data", MirrorSource(tmp_path / "mirror"), manifest=entries)
    assert "fetch from mirror" in terminal.getvalue() and "[fetch]" not in terminal.getvalue()


# ---------------------------------------------------------------------------------------------- route --file


@pytest.fixture
def bulk_args(tiny_backbone: Path, tmp_path: Path) -> list[str]:
    from lightning_lookahead.data.schema import PAPER_CANDIDATES
    from lightning_lookahead.inference import export_router
    from lightning_lookahead.models.registry import build_predictor

    torch.manual_seed(0)
    predictor = build_predictor({"kind": "mlc", "backbone": str(tiny_backbone), "max_length": 32}, PAPER_CANDIDATES)
    export_router(predictor, tmp_path / "run" / "export", name="tiny")
    log = tmp_path / "log.txt"
    log.write_text("".join(f"write a function to sort list {i}\n" for i in range(11)))
    return ["route", "--checkpoint", str(tmp_path / "run"), "--file", str(log), "--out", str(tmp_path / "out.jsonl")]


def test_bulk_route_without_a_terminal_prints_lines(bulk_args, monkeypatch, capsys):
    from lightning_lookahead.cli import main

    monkeypatch.setenv(INTERVAL_ENV, "0")
    assert main([*bulk_args, "--batch-size", "3", "--shard-size", "4"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[route]")]
    assert lines[0] == "[route] 11 prompts to go (3 shards, router tiny)"
    counts = [int(m.group(1)) for line in lines[1:-1] if (m := re.match(r"\[route\] (\d+) of 11 prompts", line))]
    assert len(counts) == len(lines) - 2 and counts == sorted(counts) and counts[-1] == 11
    assert all(ETA.search(line) for line in lines[1:-1])
    assert lines[-1].startswith("[route] done: 11 of 11 prompts (100%)")


def test_bulk_route_on_a_terminal_draws_its_bar(bulk_args, monkeypatch):
    from lightning_lookahead.cli import main

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*bulk_args, "--batch-size", "3", "--shard-size", "4"]) == 0
    assert "routing (tiny)" in terminal.getvalue() and "[route]" not in terminal.getvalue()
