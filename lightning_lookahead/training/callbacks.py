"""The trainer's callbacks, built from the experiment's ``callbacks:`` section.

Checkpointing, early stopping, the learning-rate monitor and progress are entries a user adds (a mapping) or removes
(``null``) in YAML (docs/training.md, "Callbacks and loggers"); the recipe never names them. Only the validation-µn
callback is the recipe's own: ``monitor: auto`` and the results read what it logs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint

from lightning_lookahead.config.schema import CallbacksConfig, ProgressConfig
from lightning_lookahead.progress import TrainingProgressCallback, is_terminal, progress_interval

CHECKPOINT_DIR = "checkpoints"
#: ``checkpoints/best.ckpt``: the checkpoint the test stage scores.
BEST_NAME = "best"


@dataclass
class RunCallbacks:
    """The configured callbacks, with the two the recipe reads back."""

    #: The checkpoint callbacks, which the recipe lists before any caller's own (Lightning runs them last anyway).
    checkpoints: list[Callback] = field(default_factory=list)
    #: Every other configured callback (early stopping, learning rate, progress lines), in that order.
    others: list[Callback] = field(default_factory=list)
    #: ``best.ckpt`` by the monitored metric; None when ``callbacks.checkpoint`` is off (the last weights are tested).
    best: ModelCheckpoint | None = None
    #: Whether Lightning's progress bar is drawn (``Trainer(enable_progress_bar=...)``).
    progress_bar: bool = False


def build_callbacks(
    section: CallbacksConfig,
    run_dir: Path,
    monitor: str,
    *,
    every_n_steps: int,
    has_loggers: bool,
    progress_bar: bool = True,
) -> RunCallbacks:
    """The callbacks ``section`` lists; ``monitor`` (higher is better) chooses ``best.ckpt`` and stops early.

    ``every_n_steps`` refreshes ``last.ckpt``; the learning-rate monitor needs a logger; ``progress_bar`` is
    ``trainer.enable_progress_bar``, which the bar needs as well as ``callbacks.progress``.
    """
    built = RunCallbacks()
    directory = run_dir / CHECKPOINT_DIR
    checkpoint = section.checkpoint
    if checkpoint is not None and checkpoint.best:
        built.best = ModelCheckpoint(
            dirpath=directory,
            filename=BEST_NAME,
            monitor=monitor,
            mode="max",
            save_top_k=1,
            auto_insert_metric_name=False,
        )
        built.checkpoints.append(built.best)
    if checkpoint is not None and checkpoint.last:
        built.checkpoints.append(
            ModelCheckpoint(dirpath=directory, save_last=True, save_top_k=0, every_n_train_steps=every_n_steps)
        )
    if section.early_stopping is not None:
        stop = section.early_stopping
        built.others.append(
            EarlyStopping(monitor=monitor, mode="max", patience=stop.patience, min_delta=stop.min_delta)
        )
    if section.lr_monitor is not None and has_loggers:
        built.others.append(LearningRateMonitor(section.lr_monitor.interval))
    lines, built.progress_bar = _progress(section.progress, progress_bar)
    if lines is not None:
        built.others.append(lines)
    return built


def _progress(entry: ProgressConfig | None, bar_allowed: bool) -> tuple[Callback | None, bool]:
    """``(progress-line callback or None, whether the bar shows)``: ``auto`` prints lines where stdout is not a
    terminal (a log file, CI), since a bar draws nothing readable there, and keeps the bar on a terminal."""
    if entry is None:
        return None, False
    lines = entry.mode == "lines" or (entry.mode == "auto" and not is_terminal(sys.stdout))
    if lines:
        return TrainingProgressCallback(progress_interval()), False
    return None, bar_allowed
