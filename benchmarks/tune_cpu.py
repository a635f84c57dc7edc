"""The recipe search of docs/results.md: `lookahead tune` on fold 0 of the joint setting, the same trials per arm.

    python benchmarks/tune_cpu.py [--only mlc,routerdc,mlm,mlm_norm] [--trials 8] [--data-dir data]

Arms, in this order (every one resumable: rerunning continues its study; a finished arm is skipped):

- ``mlc``: ``cpu/mlc_all`` over ``experiments/tune/mlc.yaml`` on its 3,072 training prompts;
- ``routerdc``: ``cpu/routerdc_all`` starting from MLC's best encoder settings (pooling, epochs, warm-up, batch
  pinned on the command line), searching its own lr, temperature, sample weight, K+ / K− and clusters
  (``experiments/tune/routerdc.yaml``); ZOOTER is MLC's best recipe with its loss, not searched;
- ``mlm``: ``cpu/mlm_all`` over ``experiments/tune/mlm.yaml`` on 2,048 training prompts per trial (the final
  runs train on the whole fold: MLM trials are the expensive ones, and the issue cuts trial size first);
- ``mlm_norm``: the same with ``model.mlm_weight=0.0`` pinned (w/o response modeling), same prompts and trials.

Each study lives in ``docs/results/tune/<arm>/``: ``study.db`` (SQLite, small), ``trials.md``, ``trials.csv``, the
plots and ``best.yaml`` are refreshed after every trial and committed, so a later session (a fresh clone) resumes the
study where it stopped; the trials' own folders (``trials/``: logs, metrics) are ignored by git.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "tune"
ORDER = ("mlc", "routerdc", "mlm", "mlm_norm")
#: MLC settings RouterDC inherits from MLC's best recipe (its encoder side); the rest RouterDC searches itself.
ENCODER_KEYS = ("model.pooling", "trainer.max_epochs", "optim.warmup_ratio", "data.global_batch_size")


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def best_values(arm: str) -> dict[str, object]:
    """The searched values of an arm's best.yaml (committed copy)."""
    path = OUT / arm / "best.yaml"
    if not path.exists():
        raise SystemExit(f"{arm}'s best.yaml is needed first ({path}); run --only {arm}")
    return _flatten({k: v for k, v in yaml.safe_load(path.read_text()).items() if k not in ("extends", "name")})


def arm_command(arm: str, trials: int, data_dir: str) -> list[str]:
    common = [f"data.data_dir={data_dir}", "logger.wandb.enabled=false", "trainer.enable_progress_bar=false"]
    if arm == "mlc":
        args = ["cpu/mlc_all", *common, "--space", "mlc"]
    elif arm == "routerdc":
        mlc = best_values("mlc")
        pinned = [f"{k}={mlc[k]}" for k in ENCODER_KEYS if k in mlc]
        args = ["cpu/routerdc_all", *common, *pinned, "--space", "routerdc"]
    elif arm == "mlm":
        args = ["cpu/mlm_all", *common, "data.max_train_prompts=2048", "--space", "mlm"]
    elif arm == "mlm_norm":
        args = ["cpu/mlm_all", *common, "data.max_train_prompts=2048", "model.mlm_weight=0.0", "--space", "mlm"]
    else:
        raise SystemExit(f"unknown arm {arm!r} (one of {', '.join(ORDER)})")
    study = OUT / arm
    return [
        sys.executable,
        "-m",
        "lightning_lookahead.cli",
        "tune",
        *args,
        "--trials",
        str(trials),
        "--study-dir",
        str(study),
    ]


def finished(arm: str, trials: int) -> bool:
    """An arm is done when its committed table lists ``trials`` finished trials."""
    table = OUT / arm / "trials.csv"
    if not table.exists():
        return False
    rows = table.read_text().splitlines()[1:]
    return sum(1 for r in rows if r.split(",")[1] in ("complete", "pruned")) >= trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ORDER))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", "data"))
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    for arm in args.only.split(","):
        if finished(arm, args.trials):
            print(f"[skip] {arm}: {args.trials} trials already in {OUT / arm}", flush=True)
            continue
        command = arm_command(arm, args.trials, args.data_dir)
        print(f"[tune] {arm}: {' '.join(command[3:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=ROOT, env=env)
        print(f"[tune] {arm}: exit {code} after {time.perf_counter() - start:.0f} s → {OUT / arm}", flush=True)
        if code:
            raise SystemExit(code)


if __name__ == "__main__":
    main()
