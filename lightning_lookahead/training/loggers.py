"""Loggers for a run: a CSV log always, W&B when enabled (offline automatically without credentials)."""

from __future__ import annotations

import netrc
import os
import uuid
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf


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


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """CSV under ``<run_dir>/csv`` and a W&B run grouped by experiment, tagged with family, protocol and kind."""
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
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
        config: Any = OmegaConf.to_container(cfg, resolve=True)
        loggers.append(
            WandbLogger(
                name=cfg.name,
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
