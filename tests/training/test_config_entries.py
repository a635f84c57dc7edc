"""The typed config reaches the recipe, and callbacks and loggers are entries of it: a YAML adds or removes one and
the Trainer the recipe builds has it or not (no training: only the Trainer is built)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_lookahead.cli import main
from lightning_lookahead.config.compose import compose, to_dict, to_yaml
from lightning_lookahead.config.schema import ExperimentConfig, LossConfig, OptimConfig
from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.mlm.config import MLMConfig
from lightning_lookahead.progress import TrainingProgress
from lightning_lookahead.training import loggers as loggers_module
from lightning_lookahead.training.recipe import build_trainer

MONITOR = "val/reward"


def _experiment(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"extends: debug\n{body}", encoding="utf-8")
    return path


def _built(cfg: ExperimentConfig, tmp_path: Path):
    return build_trainer(cfg, tmp_path / "run", MONITOR, torch.nn.Linear(1, 1))


def _of(trainer, kind: type) -> list:
    return [c for c in trainer.callbacks if isinstance(c, kind)]


def test_compose_returns_the_typed_experiment_and_its_yaml_holds_the_same_values() -> None:
    cfg = compose("debug", ["loss.threshold=0.7"])
    assert isinstance(cfg, ExperimentConfig)
    assert isinstance(cfg.model, MLMConfig) and cfg.model.mask_length == 4
    assert isinstance(cfg.data, DataConfig) and isinstance(cfg.loss, LossConfig) and isinstance(cfg.optim, OptimConfig)
    assert cfg.loss.threshold == 0.7 and cfg.optim.betas == (0.9, 0.999)  # typed: a tuple, not a list
    assert yaml.safe_load(to_yaml(cfg)) == to_dict(cfg)  # config.yaml and W&B's config are the same plain values


def test_the_shipped_entries_build_todays_callbacks_and_loggers(tmp_path: Path) -> None:
    cfg = compose("debug")
    trainer, loggers, built = _built(cfg, tmp_path)
    best, last = _of(trainer, ModelCheckpoint)
    assert built.best is best and (best.monitor, best.mode, best.filename) == (MONITOR, "max", "best")
    assert last.save_last and last._every_n_train_steps == cfg.checkpoint_every_n_steps == 1
    assert not _of(trainer, EarlyStopping)
    assert [type(x) for x in loggers] == [loggers_module.HistoryCSVLogger]  # W&B off in debug, TensorBoard by default
    assert _of(trainer, LearningRateMonitor)  # a logger is on
    assert _of(trainer, TrainingProgress) and trainer.progress_bar_callback is None  # pytest's stdout is no terminal
    assert trainer.accumulate_grad_batches == cfg.data.global_batch_size // cfg.data.batch_size


def test_a_yaml_removes_checkpointing_and_adds_early_stopping_and_tensorboard(tmp_path: Path, monkeypatch) -> None:
    # Building the logger needs only the package's presence (writing needs it installed): the flag stands in for it.
    monkeypatch.setattr("lightning.fabric.loggers.tensorboard._TENSORBOARDX_AVAILABLE", True)
    body = "callbacks:\n  checkpoint: null\n  early_stopping: {patience: 2}\nlogger:\n  tensorboard: true\n"
    trainer, loggers, built = _built(compose(_experiment(tmp_path, body)), tmp_path)
    assert not _of(trainer, ModelCheckpoint) and built.best is None  # the recipe then tests the last weights
    (stop,) = _of(trainer, EarlyStopping)
    assert (stop.monitor, stop.mode, stop.patience) == (MONITOR, "max", 2)
    board = [x for x in loggers if isinstance(x, TensorBoardLogger)]
    assert len(board) == 1 and Path(board[0].log_dir) == tmp_path / "run" / "tensorboard"
    assert board[0] in trainer.loggers and any(isinstance(x, CSVLogger) for x in trainer.loggers)


def test_tensorboard_without_its_package_is_one_line_naming_the_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lightning.fabric.loggers.tensorboard._TENSORBOARD_AVAILABLE", False)
    monkeypatch.setattr("lightning.fabric.loggers.tensorboard._TENSORBOARDX_AVAILABLE", False)
    with pytest.raises(LookaheadError, match=r"^logger\.tensorboard: needs the tensorboard package"):
        _built(compose("debug", ["logger.tensorboard=true"]), tmp_path)


def test_progress_entries_choose_bar_lines_or_nothing(tmp_path: Path, monkeypatch) -> None:
    bar, _, _ = _built(compose("debug", ["callbacks.progress.mode=bar", "trainer.enable_progress_bar=true"]), tmp_path)
    assert bar.progress_bar_callback is not None and not _of(bar, TrainingProgress)
    silent, _, _ = _built(compose("debug", ["callbacks.progress=null", "trainer.enable_progress_bar=true"]), tmp_path)
    assert silent.progress_bar_callback is None and not _of(silent, TrainingProgress)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    lines, _, _ = _built(compose("debug", ["callbacks.progress.mode=lines"]), tmp_path)
    assert _of(lines, TrainingProgress) and lines.progress_bar_callback is None  # lines even on a terminal


def test_removing_the_lr_monitor_and_the_csv_log(tmp_path: Path) -> None:
    trainer, loggers, _ = _built(compose("debug", ["callbacks.lr_monitor=null"]), tmp_path)
    assert loggers and not _of(trainer, LearningRateMonitor)
    trainer, loggers, _ = _built(compose("debug", ["logger.csv=false"]), tmp_path)
    assert loggers == [] and not _of(trainer, LearningRateMonitor)  # nothing to log a learning rate to


def test_an_unknown_callback_is_one_line_naming_the_key(tmp_path: Path, capsys) -> None:
    exp = _experiment(tmp_path, "callbacks:\n  earlystopping: {patience: 2}\n")
    assert main(["validate", str(exp)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "callbacks.earlystopping: unknown config key; did you mean 'early_stopping'?" in err
    assert main(["validate", "debug", "callbacks.early_stopping.patience=0"]) == 2
    assert "callbacks.early_stopping.patience: must be ≥ 1, got 0" in capsys.readouterr().err


class _Terminal:
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
