"""The CPU study of docs/results.md: the joint setting (all 7 benchmarks, kfold fold 0), every run resumable.

    python benchmarks/study_cpu.py [--only RUN[,RUN...]] [--analyse-only] [--data-dir data]
    make study-fold0

Runs, in priority order (a later session continues where the last one stopped: a run whose files are already under
``docs/results/runs/<run>/`` is skipped, an interrupted training resumes from its ``last.ckpt``):

- Lookahead-MLM (``cpu/mlm_all``), the same without response modeling (``cpu/mlm_all_norm``, the paper's "w/o RM")
  and MLC (``cpu/mlc_all``) on the same 3,072 training prompts, seeds 42, 43, 44;
- the fitted references on those same prompts: ``domain``, ``knn:100`` and ``hard_cluster:100`` (k as in the paper);
- the data-efficiency curve of MLM with and without response modeling: 1,024, 3,072 and all training prompts;
- the same w/ vs w/o comparison on a MiniLM whose MLM head was first warmed up (``lookahead warmup``);
- Lookahead-MLM with the full MLM loss instead of the CPU configs' 640-slot subsample (does the speed-up cost quality?).

Each finished run's small files (``results.json``, ``config.yaml``, ``scores.npz`` with prompt ids, ``results.md``)
are copied to ``docs/results/runs/<run>/``, the config with this machine's paths made portable (:func:`portable_config`:
``data_dir`` → ``data``, paths inside the repository relative to it, the model cache under ``~``); checkpoints stay
in ``runs/study/``. The analysis
(``benchmarks/study_tables.py``) reads only the committed files and the data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "results" / "runs"
KEEP = ("results.json", "results.md", "config.yaml", "scores.npz")
SEEDS = (42, 43, 44)


@dataclass(frozen=True)
class Run:
    """One study run: a trained experiment (``lookahead train``) or a fitted reference (``fit:<router spec>``).

    ``warm``: train on the backbone after ``lookahead warmup`` of the same experiment and training prompts.
    """

    name: str
    experiment: str
    overrides: tuple[str, ...] = field(default=())
    warm: bool = False


def trained(kind: str, experiment: str, seed: int, prompts: int | None, *, warm: bool = False) -> Run:
    size = "all" if prompts is None else str(prompts)
    cap = "null" if prompts is None else str(prompts)
    return Run(f"{kind}-n{size}-s{seed}", experiment, (f"seed={seed}", f"data.max_train_prompts={cap}"), warm)


def study_runs() -> list[Run]:
    """Every run of the study, cheapest-to-most-informative first within each block."""
    runs: list[Run] = []
    for seed in SEEDS:
        runs += [
            trained("mlm", "cpu/mlm_all", seed, 3072),
            trained("mlm_norm", "cpu/mlm_all_norm", seed, 3072),
            trained("mlc", "cpu/mlc_all", seed, 3072),
        ]
        if seed == SEEDS[0]:  # fitted on the same 3,072 training prompts
            fits = ("domain", "knn:100", "hard_cluster:100")
            runs += [Run(f"{f.replace(':', '')}-n3072", f"fit:{f}", ("data.max_train_prompts=3072",)) for f in fits]
    for prompts in (1024, None):
        runs += [trained("mlm", "cpu/mlm_all", 42, prompts), trained("mlm_norm", "cpu/mlm_all_norm", 42, prompts)]
    runs += [
        trained("mlm_warm", "cpu/mlm_all", 42, 3072, warm=True),
        trained("mlm_warm_norm", "cpu/mlm_all_norm", 42, 3072, warm=True),
    ]
    # does the subsampled MLM loss (model.mlm_max_predictions: 640 in the CPU configs) cost quality? The full loss:
    full = trained("mlm_fullloss", "cpu/mlm_all", 42, 3072)
    runs.append(Run(full.name, full.experiment, (*full.overrides, "model.mlm_max_predictions=null")))
    # the rest of the paper's comparison (issue 12), same prompts and budget
    runs += [trained("zooter", "cpu/zooter_all", 42, 3072), trained("routerdc", "cpu/routerdc_all", 42, 3072)]
    # SMOOTHIE with the paper's share of neighbours (1,000 of 59,281 training prompts ≈ 52 of 3,072)
    runs.append(Run("smoothie52-n3072", "fit:smoothie:52", ("data.max_train_prompts=3072",)))
    return runs


def common_overrides(data_dir: str) -> list[str]:
    return [f"data.data_dir={data_dir}", "logger.wandb.enabled=false", "trainer.enable_progress_bar=false"]


def warm_backbone(run: Run, data_dir: str) -> str:
    """``lookahead warmup`` on the run's experiment and training prompts (cached: instant after the first time)."""
    args = [sys.executable, "-m", "lightning_lookahead.cli", "warmup", run.experiment, *run.overrides]
    args += common_overrides(data_dir)
    print(f"[warmup] {' '.join(args[4:])}", flush=True)
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    if out.returncode:
        raise SystemExit(f"{run.name}: warm-up failed ({out.returncode})")
    return out.stdout.strip().splitlines()[-1]


def run_training(run: Run, work: Path, data_dir: str) -> None:
    target = work / run.name
    resume = ["resume=last"] if (target / "checkpoints" / "last.ckpt").exists() else []
    backbone = [f"model.backbone={warm_backbone(run, data_dir)}"] if run.warm else []
    args = [sys.executable, "-m", "lightning_lookahead.cli", "train", run.experiment, *run.overrides, *backbone]
    args += [*common_overrides(data_dir), f"run_dir={target}", *resume]
    log = work / f"{run.name}.log"
    print(f"[train] {run.name}: {' '.join(args[4:])}  (log {log})", flush=True)
    with open(log, "a") as fh:
        code = subprocess.call(args, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=_env())
    if code:
        raise SystemExit(f"{run.name}: training failed ({code}); see {log}")


def run_fit(run: Run, work: Path, data_dir: str) -> None:
    """Fit a reference router on cpu/mlm_all's training prompts; save its scores like a training run does."""
    from lightning_lookahead.config.compose import compose, to_yaml
    from lightning_lookahead.data.splits import make_splits
    from lightning_lookahead.routers.fitted import fit_and_score
    from lightning_lookahead.training.report import save_scores

    spec = run.experiment.removeprefix("fit:")
    cfg = compose("cpu/mlm_all", [*run.overrides, *common_overrides(data_dir)])
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    print(f"[fit] {run.name}: {spec} on {len(splits.train)} training prompts", flush=True)
    result = fit_and_score(spec, splits, list(cfg.data.candidates), work / "cache")
    target = work / run.name
    target.mkdir(parents=True, exist_ok=True)
    save_scores(target / "scores.npz", result["test"], splits.test, result["val"], splits.val)
    (target / "config.yaml").write_text(to_yaml(cfg))
    timing = {k: result[k] for k in ("fit_seconds", "route_seconds", "routed_prompts", "n_train")}
    (target / "results.json").write_text(json.dumps({"experiment": spec, "timing": timing}, indent=2) + "\n")


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}


#: A YAML line whose value is an absolute path: ``  data_dir: /abs/data`` or a list item ``- /abs/x``.
_PATH_LINE = re.compile(r"^(?P<head>\s*(?:- |(?P<key>[\w.-]+): ))(?P<value>/\S*)$")


def portable_path(key: str | None, value: str, root: Path = ROOT, home: Path | None = None) -> str:
    """An absolute path of this machine as another machine reads it: inside the repository, relative to it (the
    commands run from the repository root); ``data_dir`` elsewhere, the default ``data`` (the data are the pinned
    manifest's wherever they lay); under the home folder, ``~/...`` (the model cache); anything else unchanged."""
    path = PurePosixPath(value)
    home = Path.home() if home is None else home
    if path.is_relative_to(root.as_posix()):
        return str(path.relative_to(root.as_posix()))
    if key == "data_dir":
        return "data"
    if str(home) != "/" and path.is_relative_to(home.as_posix()):
        return f"~/{path.relative_to(home.as_posix())}"
    return value


def portable_config(text: str, root: Path = ROOT, home: Path | None = None) -> str:
    """A run's ``config.yaml`` with every absolute path value made portable (:func:`portable_path`); every other
    byte, comments and order included, stays as it was."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = _PATH_LINE.match(body)
        if match:
            value = portable_path(match["key"], match["value"], root, home)
            line = f"{match['head']}{value}{line[len(body) :]}"
        lines.append(line)
    return "".join(lines)


def commit_files(run: Run, work: Path, out: Path) -> None:
    """Copy the run's small files next to the docs (atomically: a folder appears only when it is complete); the
    config with portable paths."""
    source, target = work / run.name, out / run.name
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KEEP:
        if not (source / name).exists():
            continue
        if name == "config.yaml":
            (tmp / name).write_text(portable_config((source / name).read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copy2(source / name, tmp / name)
    os.replace(tmp, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated run names (default: every run, in order)")
    parser.add_argument("--list", action="store_true", help="print the runs and whether each is done, then exit")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "study", help="checkpoints and logs")
    parser.add_argument("--out", type=Path, default=COMMITTED, help="where finished runs' small files go")
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", str(ROOT / "data")))
    args = parser.parse_args()
    runs = study_runs()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {r.name for r in runs}
        if unknown:
            raise SystemExit(f"error: unknown run(s) {sorted(unknown)}; see --list")
        runs = [r for r in runs if r.name in wanted]
    if args.list:
        for run in runs:
            done = (args.out / run.name / "results.json").exists()
            warm = " (warmed backbone)" if run.warm else ""
            print(f"{'done' if done else 'todo'}  {run.name:24s} {run.experiment} {' '.join(run.overrides)}{warm}")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    for i, run in enumerate(runs, 1):
        if (args.out / run.name / "results.json").exists():
            print(f"[{i}/{len(runs)}] [skip] {run.name}: already in {args.out}", flush=True)
            continue
        start = time.perf_counter()
        print(f"[{i}/{len(runs)}] {run.name}", flush=True)
        (run_fit if run.experiment.startswith("fit:") else run_training)(run, args.work, args.data_dir)
        commit_files(run, args.work, args.out)
        print(f"[{i}/{len(runs)}] [done] {run.name} in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
