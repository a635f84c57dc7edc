"""A resumed run keeps its metrics history: the CSV log continues the same file and W&B the same run id."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_testkit import debug_run, wait_for_step

from lightning_lookahead.training.loggers import HistoryCSVLogger

CLI = [sys.executable, "-m", "lightning_lookahead.cli", "train", "debug"]
STEPS = 10  # 40 training prompts, 4 per optimiser step, one epoch


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _train_rows(rows: list[dict[str, str]]) -> dict[int, str]:
    """Logged step → train/loss; a step logged twice fails here."""
    losses: dict[int, str] = {}
    for row in rows:
        if row.get("train/loss"):
            step = int(row["step"])
            assert step not in losses, f"step {step} logged twice"
            losses[step] = row["train/loss"]
    return losses


@pytest.mark.slow
def test_resume_after_kill_9_keeps_every_logged_step_once_and_the_wandb_run(tiny_backbone, real_data, tmp_path):
    args = [
        *CLI,
        *debug_run(tiny_backbone, real_data, tmp_path),
        "data.max_train_prompts=40",
        "trainer.max_epochs=1",
        "checkpoint_every_n_steps=1",
        "trainer.log_every_n_steps=1",  # every optimiser step has its row
        "logger.wandb.enabled=true",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    # An in-process W&B test earlier in the session leaves WANDB_SERVICE (its service's address) in os.environ;
    # inherited, both attempts would attach to that one service, which still holds the killed attempt's run id, and
    # the resume would be refused with "run ID is in use". Each attempt starts its own service, as a user's would.
    env.pop("WANDB_SERVICE", None)
    env.pop("WANDB_API_KEY", None)
    run = tmp_path / "run"
    metrics = run / "csv" / "metrics.csv"
    with open(tmp_path / "first.log", "w") as log:
        # kill -9 takes the whole job (its process group).
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            killed_at = wait_for_step(proc, run / "checkpoints" / "last.ckpt", 3)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed_at < STEPS
    before = _train_rows(_rows(metrics))
    # Logged step s is optimiser step s + 1: steps 1..k are on disk when last.ckpt holds k.
    assert set(range(killed_at)) <= set(before)

    done = subprocess.run([*args, "resume=last"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Restoring states from the checkpoint path" in done.stdout + done.stderr

    rows = _rows(metrics)
    after = _train_rows(rows)  # each step once
    assert sorted(after) == list(range(STEPS))  # the whole history: steps 1..10, not only those after the resume
    assert all(after[s] == before[s] for s in range(killed_at))  # the first attempt's rows, as it logged them
    lr_steps = [int(r["step"]) for r in rows if r.get("lr-AdamW/pg1")]
    assert sorted(lr_steps) == list(range(STEPS))
    assert len([r for r in rows if r.get("val/reward")]) == 1

    # W&B: both attempts log offline into the run id kept in the run directory.
    run_id = (run / "wandb_run_id.txt").read_text().strip()
    attempts = sorted((run / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2
    assert all(p.name.endswith(f"-{run_id}") and (p / f"run-{run_id}.wandb").is_file() for p in attempts)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, newline="")


EARLIER = (
    "epoch,step,train/loss\r\n"
    "0,0,1.0\r\n"
    "0,1,2.0\r\n"
    "0,2,3.0\r\n"  # logged after the checkpoint at step 2: the new attempt logs step 2 again
    "0,3,4.0\r\n"
    "0,4,5"  # cut short by the kill
)


def test_a_resumed_csv_log_continues_the_file_from_the_first_step_it_logs(tmp_path):
    _write(tmp_path / "csv" / "metrics.csv", EARLIER)
    logger = HistoryCSVLogger(tmp_path, resume=True)
    logger.log_metrics({"train/loss": 30.0, "epoch": 0}, step=2)
    logger.log_metrics({"val/reward": 0.5, "epoch": 0}, step=2)  # a new column: the file is rewritten whole
    logger.log_metrics({"train/loss": 40.0, "epoch": 0}, step=3)  # flushed at once: nothing waits for 100 steps
    rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert [(r["step"], r["train/loss"], r["val/reward"]) for r in rows] == [
        ("0", "1.0", ""),
        ("1", "2.0", ""),
        ("2", "30.0", ""),
        ("2", "", "0.5"),
        ("3", "40.0", ""),
    ]
    assert not list((tmp_path / "csv").glob("*.tmp"))


def test_a_fresh_run_starts_a_new_csv_log(tmp_path):
    _write(tmp_path / "csv" / "metrics.csv", EARLIER)
    logger = HistoryCSVLogger(tmp_path, resume=False)
    with pytest.warns(UserWarning, match="will be deleted"):  # Lightning's own behaviour for a new run
        logger.log_metrics({"train/loss": 9.0}, step=0)
    assert [(r["step"], r["train/loss"]) for r in _rows(tmp_path / "csv" / "metrics.csv")] == [("0", "9.0")]
