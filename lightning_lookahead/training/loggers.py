"""Loggers for a run, as the ``logger:`` section lists them: a CSV log (on by default), W&B (on by default; offline
automatically without credentials) and TensorBoard (off by default).

A resumed run (``resume=last`` or a checkpoint path) keeps its history in both: the CSV log appends to the same
``csv/metrics.csv`` (rows the interrupted attempt logged after the checkpoint it resumes from are replaced by the
new attempt's), and W&B continues the run id stored in ``wandb_run_id.txt``.
"""

from __future__ import annotations

import csv
import io
import netrc
import os
import uuid
from pathlib import Path
from typing import Any, cast

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_info

from lightning_lookahead.config.compose import to_dict
from lightning_lookahead.config.schema import ExperimentConfig
from lightning_lookahead.errors import LookaheadError

#: ``logger.tensorboard`` writes under ``<run_dir>/tensorboard``.
TENSORBOARD_DIR = "tensorboard"


def wandb_mode(requested: str | None) -> str:
    """``requested``, else $WANDB_MODE, else online when credentials exist and offline otherwise."""
    if requested:
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        pass
    return "offline"


def tensorboard_available() -> bool:
    """Whether Lightning's TensorBoardLogger can write (the ``tensorboard`` or ``tensorboardX`` package)."""
    from lightning.fabric.loggers.tensorboard import _TENSORBOARD_AVAILABLE, _TENSORBOARDX_AVAILABLE

    return bool(_TENSORBOARD_AVAILABLE or _TENSORBOARDX_AVAILABLE)


def build_loggers(cfg: ExperimentConfig, run_dir: Path) -> list[Logger]:
    """CSV under ``<run_dir>/csv``, a W&B run grouped by experiment (tagged with family, protocol and kind) and
    TensorBoard under ``<run_dir>/tensorboard``, each as ``cfg.logger`` says."""
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(HistoryCSVLogger(run_dir, resume=cfg.resume is not None))
    if cfg.logger.tensorboard:
        if not tensorboard_available():
            raise LookaheadError(
                "logger.tensorboard: needs the tensorboard package (pip install tensorboard), or set it to false"
            )
        board = TensorBoardLogger(save_dir=str(run_dir), name=TENSORBOARD_DIR, version="", default_hp_metric=False)
        loggers.append(board)
    wb = cfg.logger.wandb
    mode = wandb_mode(wb.mode)
    if wb.enabled and mode != "disabled":
        if mode == "offline":
            rank_zero_info(
                f"W&B: no credentials (or offline requested): logging offline under {run_dir}/wandb; "
                f"upload later with `wandb sync {run_dir}/wandb/offline-run-*`"
            )
        tags = sorted(
            {*wb.tags, f"family:{cfg.data.family}", f"protocol:{cfg.data.protocol}", f"kind:{cfg.model.kind}"}
        )
        config = to_dict(cfg)
        loggers.append(
            WandbLogger(
                name=cfg.name,
                notes=cfg.notes,
                project=wb.project,
                entity=wb.entity,
                group=wb.group or cfg.name,
                tags=tags,
                save_dir=str(run_dir),
                mode=mode,
                config=config,
                id=_run_id(run_dir),
                resume="allow",
            )
        )
    return loggers


def _run_id(run_dir: Path) -> str:
    """A W&B run id stored in the run directory, so ``resume=last`` continues the same W&B run."""
    path = run_dir / "wandb_run_id.txt"
    if path.exists():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.write_text(run_id)
    return run_id


class HistoryCSVLogger(CSVLogger):
    """Lightning's CSV log under ``<run_dir>/csv/metrics.csv``, flushed at every row and kept across a resume.

    Every row is on disk once logged, so a run killed with SIGKILL loses none of it. With ``resume=True`` the file an
    earlier attempt wrote is kept (Lightning's own logger deletes it) and the new attempt's rows follow it: the
    attempt restarts from a checkpoint taken at some step, so the old rows from the step of its first row on were
    logged after that checkpoint, are repeated by the new attempt, and are dropped. Every step is in the file once.
    """

    def __init__(self, run_dir: Path, *, resume: bool) -> None:
        super().__init__(save_dir=str(run_dir), name="csv", version="", flush_logs_every_n_steps=1)
        self._resume = resume

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = HistoryWriter(self.log_dir, keep=self._resume)
        return cast(ExperimentWriter, self._experiment)


class HistoryWriter(ExperimentWriter):
    """Writes ``metrics.csv`` like Lightning's writer; ``keep=True`` continues the file already there."""

    def __init__(self, log_dir: str, *, keep: bool) -> None:
        self._keep = keep
        self._earlier: list[dict[str, str]] | None = None  # the earlier attempts' rows, until the first save
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if not self._keep:
            super()._check_log_dir_exists()  # a fresh run: Lightning's warning and a new file
            return
        path = Path(self.metrics_file_path)
        if path.is_file():
            header, rows = read_metrics(path)
            self._earlier = rows
            self.metrics_keys = sorted(header)

    def save(self) -> None:
        if self._earlier is not None and self.metrics:
            self._continue_history()
        super().save()

    def _continue_history(self) -> None:
        """Rewrite the file with the earlier rows logged before this attempt's first step, then this attempt's."""
        first = min(int(m["step"]) for m in self.metrics)
        kept = [row for row in self._earlier or [] if _step(row) < first]
        self._earlier = None
        self._record_new_keys()
        self._write_all([*kept, *self.metrics])
        self.metrics = []

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _, rows = read_metrics(Path(self.metrics_file_path))
        self._write_all(rows, fieldnames)

    def _write_all(self, rows: list[dict[str, Any]], fieldnames: list[str] | None = None) -> None:
        """The whole file under a temporary name, then renamed: a kill mid-write leaves the previous file whole."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fieldnames or self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        path = Path(self.metrics_file_path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            fh.write(buffer.getvalue())
        os.replace(tmp, path)


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the complete rows of a metrics CSV (a last line cut short by a kill is left out)."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith(("\n", "\r")):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [row for row in reader if None not in row and None not in row.values()]
    return list(reader.fieldnames or []), rows


def _step(row: dict[str, str]) -> float:
    """A row's step (infinite when unreadable, so the row counts as logged after any checkpoint)."""
    try:
        return float(row["step"])
    except (KeyError, ValueError):
        return float("inf")
