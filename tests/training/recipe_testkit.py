"""Shrinking shipped experiments for tests (a uniquely named module: ``conftest`` names clash across folders)."""

from __future__ import annotations

from pathlib import Path


def shrink(name: str, backbone: Path, data_dir: Path, tmp: Path, kind: str | None = None) -> list[str]:
    """Overrides that keep a shipped experiment's structure but make it run in seconds."""
    from lightning_lookahead.config.compose import compose

    cfg = compose(name)
    kind = kind or cfg.model.kind
    overrides = [
        f"model.backbone={backbone}",
        "model.max_length=64",
        f"data.data_dir={data_dir}",
        f"data.cache_dir={tmp}/cache",
        f"run_dir={tmp}/run",
        "data.max_train_prompts=8",
        "data.max_eval_prompts=4",
        "data.batch_size=4",
        "data.global_batch_size=4",
        "data.eval_batch_size=8",
        "trainer.precision=32-true",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "logger.wandb.enabled=false",
    ]
    if kind == "mlm":
        overrides.append("model.mask_length=4")
    if cfg.data.family != "code":  # chat/math training labels are absent here: cross-validate inside the benchmarks
        overrides += ["data.protocol=kfold", "data.kfold.k=3"]
    return overrides
