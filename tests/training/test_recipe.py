"""The training recipe end to end: every shipped experiment (shrunk), W&B offline, resume after kill -9, DDP."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_testkit import debug_run, shrink, wait_for_step

from lightning_lookahead.config.compose import compose, list_experiments
from lightning_lookahead.data.families import FAMILY_BENCHMARKS
from lightning_lookahead.training.recipe import run_experiment

EXPERIMENTS = [name for name in list_experiments() if not name.startswith("base/")]
CLI = [sys.executable, "-m", "lightning_lookahead.cli", "train"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_shipped_experiment_runs_when_shrunk(name, tiny_backbone, real_data, tmp_path):
    shipped = compose(name).trainer.precision
    keep = [f"trainer.precision={shipped}"] if str(shipped).startswith("bf16") else []  # CPU autocast runs here
    cfg = compose(name, [*shrink(name, tiny_backbone, real_data, tmp_path), "trainer.fast_dev_run=true", *keep])
    results = run_experiment(cfg)
    run = results["test"][0]
    assert run["router"] == cfg.name
    assert list(run["results"]) == list(FAMILY_BENCHMARKS[cfg.data.family])
    assert all("mu_n" in metrics for metrics in run["results"].values()) and "avg_mu_n" in run
    loss = results["validation_loss"]
    assert loss is None or set(loss) == {"routing_loss", "label_prior_loss"}
    assert {r["router"] for r in results["test"][1:3]} == {"oracle", "random:0"}
    assert results["test"][-1]["router"].startswith("domain")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"][0]["results"].keys() == run["results"].keys()
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert markdown.startswith(f"# {cfg.name}")
    assert results["notes"] == cfg.notes and saved["notes"] == cfg.notes
    if cfg.notes:  # the experiment's reading closes the printed results
        assert markdown.rstrip().endswith("## Reading\n\n" + " ".join(cfg.notes.split()))
    assert (tmp_path / "run" / "config.yaml").exists()


def test_checkpoints_best_by_validation_reward_and_logs_csv(tiny_backbone, real_data, tmp_path):
    overrides = debug_run(tiny_backbone, real_data, tmp_path) + ["trainer.max_epochs=2"]
    results = run_experiment(compose("debug", overrides))
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "best.ckpt").exists() and (ckpts / "last.ckpt").exists()
    rows = _csv_rows(tmp_path / "run" / "csv" / "metrics.csv")
    val = [float(r["val/reward"]) for r in rows if r.get("val/reward")]
    assert len(val) == 2
    # The tested model is the best-by-reward checkpoint: its validation reward is the best logged one.
    assert results["validation"]["debug"]["reward"] == pytest.approx(max(val), abs=1e-5)


def test_wandb_runs_offline_without_credentials(tiny_backbone, real_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    overrides = [
        *debug_run(tiny_backbone, real_data, tmp_path),
        "logger.wandb.enabled=true",
        "trainer.max_steps=1",
    ]
    run_experiment(compose("debug", overrides))
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
    assert (tmp_path / "run" / "csv" / "metrics.csv").exists()


def test_existing_run_dir_needs_resume(tiny_backbone, real_data, tmp_path):
    from lightning_lookahead.errors import LookaheadError

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(LookaheadError, match="resume=last"):
        run_experiment(compose("debug", debug_run(tiny_backbone, real_data, tmp_path)))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cli_args(tmp_path: Path, backbone: Path, data: Path, *extra: str) -> list[str]:
    """`lookahead train debug` on the tiny backbone, as a subprocess command line."""
    return [*CLI, "debug", *debug_run(backbone, data, tmp_path), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_resume_last_after_kill_9(tiny_backbone, real_data, tmp_path):
    args = _cli_args(
        tmp_path,
        tiny_backbone,
        real_data,
        "data.max_train_prompts=40",
        "trainer.max_epochs=1",
        "checkpoint_every_n_steps=1",
    )
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    import torch

    wait_for_step(proc, last, 3, timeout=120)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "results.json").exists()
    done = subprocess.run([*args, "resume=last"], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Restoring states from the checkpoint path" in done.stdout + done.stderr
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 10  # 40 prompts / 4
    # The loader's position is in the checkpoint, so the resume continued the epoch's order (Lightning would warn).
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"seed": 42, "epoch": 0, "batches": 10, "batches_per_epoch": 10}
    ]
    assert "dataloader is not resumable" not in done.stdout + done.stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test"][0]["router"] == "debug"


@pytest.mark.slow
def test_ddp_two_cpu_processes_reduce_validation_metrics(tiny_backbone, real_data, tmp_path):
    args = _cli_args(
        tmp_path,
        tiny_backbone,
        real_data,
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "data.length_grouped=false",  # single-device only (a clear error otherwise)
        "data.global_batch_size=8",
        "trainer.max_epochs=1",
        "data.max_eval_prompts=8",
    )
    done = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _csv_rows(tmp_path / "run" / "csv" / "metrics.csv")
    logged = [float(r["val/reward"]) for r in rows if r.get("val/reward")]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    # The DDP value (each rank saw half of the 8 validation prompts, states summed across ranks) equals the
    # single-process reward of the same checkpoint on all 8 prompts.
    assert len(logged) == 1
    assert logged[0] == pytest.approx(results["validation"]["debug"]["reward"], abs=1e-5)


def test_speed_options_train(tiny_backbone, real_data, tmp_path):
    overrides = [
        *shrink("cpu/mlm_code", tiny_backbone, real_data, tmp_path),
        "data.length_grouped=true",
        "model.mlm_max_predictions=8",
        "trainer.max_steps=2",
        "trainer.precision=bf16-mixed",
    ]
    results = run_experiment(compose("cpu/mlm_code", overrides))
    assert results["test"][0]["results"]["HumanEval"]["n"] == 4
