"""Shrinking shipped experiments for tests (a uniquely named module: ``conftest`` names clash across folders)."""

from __future__ import annotations

from pathlib import Path


def shrink(name: str, backbone: Path, data_dir: Path, tmp: Path, kind: str | None = None) -> list[str]:
    """Overrides that keep a shipped experiment's structure but make it run in seconds."""
    from lightning_lookahead.config.compose import compose

    cfg = compose(name)
    kind = kind or cfg.model.kind
    if kind == "clm":  # a causal LM: a tiny random Llama instead of the (masked-LM) BERT backbone
        backbone = _tiny_llama(tmp / "tiny-llama")
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
