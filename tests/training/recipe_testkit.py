"""Shrinking shipped experiments for tests (a uniquely named module: ``conftest`` names clash across folders)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from lightning_lookahead.config.compose import EXPERIMENTS_DIR


def _dotlist(node: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        if isinstance(value, dict):
            out += _dotlist(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={value}")
    return out


def debug_settings() -> list[str]:
    """The sizes of ``experiments/debug.yaml`` (everything but its model and family) as overrides."""
    debug = yaml.safe_load((EXPERIMENTS_DIR / "debug.yaml").read_text(encoding="utf-8"))
    debug.pop("model")
    debug["data"].pop("family")
    return _dotlist(debug)


def debug_run(backbone: Path, data_dir: Path, tmp: Path) -> list[str]:
    """Overrides that point the ``debug`` experiment at a tiny backbone, the test data and a temporary run folder."""
    return [
        f"model.backbone={backbone}",
        f"data.data_dir={data_dir}",
        f"data.cache_dir={tmp}/cache",
        f"run_dir={tmp}/run",
    ]


def shrink(name: str, backbone: Path, data_dir: Path, tmp: Path, kind: str | None = None) -> list[str]:
    """Overrides that keep a shipped experiment's structure but give it the ``debug`` experiment's sizes."""
    from lightning_lookahead.config.compose import compose

    cfg = compose(name)
    kind = kind or cfg.model.kind
    if kind == "clm":  # a causal LM: a tiny random Llama instead of the (masked-LM) BERT backbone
        backbone = _tiny_llama(tmp / "tiny-llama")
    overrides = [*debug_settings(), *debug_run(backbone, data_dir, tmp), "model.max_length=64"]
    if kind == "mlm":
        overrides.append("model.mask_length=4")
    if kind == "clm":  # the CPU configs cut SmolLM2 to 6 layers; the tiny model has 2
        overrides += ["model.max_response_tokens=8", "model.backbone_config.num_hidden_layers=2"]
    if kind == "gt_response":  # the CPU configs give the response 128 of 256 tokens; here 64 in all
        overrides.append("model.max_response_tokens=16")
    if cfg.data.family != "code":  # chat/math training labels are absent here: cross-validate inside the benchmarks
        overrides += ["data.protocol=kfold", "data.kfold.k=3"]
    return overrides


def _tiny_llama(out: Path) -> Path:
    """A tiny causal LM for the CLM experiments (built once per test directory; about a second)."""
    from tiny_models import save_tiny_llama

    if not (out / "config.json").is_file():
        words = "def return import class for in if else while print list sort sum count write function the a".split()
        save_tiny_llama(out, words)
    return out


def wait_for_step(proc: subprocess.Popen, last: Path, step: int, timeout: float = 180) -> int:
    """Poll a running training's last.ckpt until it holds ``step`` optimiser steps (or more); return that step.

    Raises AssertionError when the run ends or the timeout passes first (the test could not interrupt it)."""
    import torch

    deadline = time.monotonic() + timeout
    held = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if last.exists():
            try:
                held = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
            except Exception:  # caught mid-write: look again
                held = 0
            if held >= step:
                return held
        time.sleep(0.1)
    raise AssertionError(f"the run ended (or timed out) before step {step}: last.ckpt holds {held}")
