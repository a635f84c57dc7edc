"""`lookahead tune EXPERIMENT [key=value ...] --trials N --study-dir DIR`: search an experiment's recipe (Optuna)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lightning_lookahead.errors import LookaheadError


def cmd_tune(args: argparse.Namespace) -> int:
    from lightning_lookahead.config.compose import compose
    from lightning_lookahead.tuning.space import check_space, load_space, resolve_space_path

    if args.trials < 1:
        raise LookaheadError(f"--trials: must be ≥ 1, got {args.trials}")
    if args.timeout is not None and args.timeout <= 0:
        raise LookaheadError(f"--timeout: must be > 0 seconds, got {args.timeout}")
    cfg = compose(args.experiment, args.overrides)  # the experiment itself first: its errors name the override
    space, pinned = load_space(resolve_space_path(args.space, str(cfg.model.kind))).pinned_by(args.overrides)
    if pinned:
        print(f"[tune] not searched (set on the command line): {', '.join(pinned)}")
    check_space(space, args.experiment, args.overrides)  # every range end through the typed config, before a trial
    metric = args.metric or _default_metric(cfg)
    from lightning_lookahead.tuning.outputs import write_outputs
    from lightning_lookahead.tuning.study import TuneSettings, run_tune

    settings = TuneSettings(
        experiment=args.experiment,
        overrides=list(args.overrides),
        space=space,
        study_dir=Path(args.study_dir),
        trials=args.trials,
        metric=metric,
        timeout=args.timeout,
        pruner=args.pruner,
        seed=args.seed,
        keep_checkpoints=args.keep_checkpoints,
        name=f"{cfg.name}_tuned",
    )
    study = run_tune(settings, cfg, after_trial=lambda study: write_outputs(study, settings))
    for note in write_outputs(study, settings):
        print(f"[tune] {note}")
    try:
        best = study.best_trial
        print(
            f"[tune] best: trial {best.number}, {metric} {best.value:.4f} → {settings.study_dir / 'best.yaml'} "
            f"(train it: lookahead train {settings.study_dir / 'best.yaml'})"
        )
    except ValueError:
        print(f"[tune] no trial completed yet; the table is {settings.study_dir / 'trials.md'}")
    return 0


def _default_metric(cfg: Any) -> str:
    """What the recipe's checkpoint monitor resolves to on this experiment's validation split (one rule for both)."""
    from lightning_lookahead.data.splits import make_splits
    from lightning_lookahead.training.recipe import resolve_monitor

    if cfg.monitor != "auto":
        return str(cfg.monitor)
    return resolve_monitor("auto", make_splits(cfg.data, Path(cfg.data.data_dir)).val)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lightning_lookahead.tuning.study import PRUNERS

    tune = subparsers.add_parser(
        "tune",
        help="search an experiment's recipe with Optuna (validation objective, pruning, resumable)",
        description="Run training trials of EXPERIMENT with values drawn from a search space (Optuna TPE), each "
        "composed and checked like `lookahead train`, scored on validation only. The study lives in "
        "DIR/study.db: rerun the same command to resume. Writes DIR/best.yaml (an experiment), DIR/trials.csv, "
        "DIR/trials.md and DIR/history.png, DIR/importances.png (docs/training.md).",
    )
    tune.add_argument("experiment", help="experiment name (e.g. cpu/mlc_all) or YAML path")
    tune.add_argument("overrides", nargs="*", help="dotlist overrides every trial takes, e.g. data.dataset=FILE")
    tune.add_argument("--trials", type=int, required=True, help="finished trials (complete or pruned) to reach")
    tune.add_argument("--study-dir", required=True, help="folder of the study (study.db, trials, outputs)")
    tune.add_argument("--timeout", type=float, default=None, help="stop starting trials after S seconds")
    tune.add_argument(
        "--space", default=None, help="search space YAML, or a name under experiments/tune/ (default: the kind's)"
    )
    tune.add_argument("--pruner", choices=PRUNERS, default="median", help="stop bad trials early (default median)")
    tune.add_argument(
        "--metric",
        default=None,
        help="validation objective (default val/avg_mu_n with several benchmarks or domains, else val/reward)",
    )
    tune.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    tune.add_argument("--keep-checkpoints", action="store_true", help="keep each trial's checkpoints (large)")
    tune.set_defaults(func=cmd_tune)
