"""`lookahead validate | train | warmup`: check an experiment config, train its router, or warm up its backbone."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lightning_lookahead.errors import LookaheadError

if TYPE_CHECKING:
    from lightning_lookahead.config.schema import ExperimentConfig


def _listing() -> str:
    """The shipped experiments and the families each takes, for ``lookahead validate --list``."""
    from lightning_lookahead.config.compose import list_experiments
    from lightning_lookahead.config.schema import FAMILIES

    lines = list_experiments()
    lines += [
        "",
        f"families: {', '.join(FAMILIES)} (any experiment takes family=FAMILY: "
        "`lookahead train mlm family=math`, or the name mlm_math)",
    ]
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    from lightning_lookahead.config.compose import compose, list_experiments, to_yaml
    from lightning_lookahead.config.schema import FAMILIES

    if args.list:
        print(_listing())
        return 0
    if args.all:
        for name in list_experiments():
            compose(name, args.overrides)
            for family in FAMILIES:  # the family is a choice: every one must compose
                compose(name, [*args.overrides, f"family={family}"])
            print(f"ok  {name}")
        return 0
    if args.experiment is None:
        raise LookaheadError("name an experiment (e.g. `lookahead validate mlm_code`), or pass --all / --list")
    cfg = compose(args.experiment, args.overrides)
    if cfg.data.dataset:
        cfg, summary = _with_dataset_pool(cfg)
        print(to_yaml(cfg) + summary)
    else:
        print(to_yaml(cfg))
    return 0


def _with_dataset_pool(cfg: ExperimentConfig) -> tuple[ExperimentConfig, str]:
    """With ``data.dataset``: the file's candidates in ``data.candidates`` (as training will see them) and its
    summary (rows, candidates, splits, domains, drops) as YAML comments. Reads the file; imports no torch."""
    from dataclasses import replace

    from lightning_lookahead.data.dataset_splits import load_dataset_file

    data = load_dataset_file(cfg.data)  # checks every row, as `lookahead train` will
    cfg = replace(cfg, data=replace(cfg.data, candidates=list(data.candidates)))
    return cfg, "\n".join(f"# {line}" for line in data.summary().splitlines())


def cmd_train(args: argparse.Namespace) -> int:
    from lightning_lookahead.config.compose import compose

    cfg = compose(args.experiment, args.overrides)  # refuses a bad config before Lightning, models or data load
    from lightning_lookahead.training.recipe import run_experiment

    run_experiment(cfg)
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lightning_lookahead.config.compose import compose

    cfg = compose(args.experiment, args.overrides)  # checked before the backbone or the data load
    from lightning_lookahead.data.splits import make_splits
    from lightning_lookahead.models.warmup import WarmupSettings, warmed_backbone, warmup_report

    settings = WarmupSettings(steps=args.steps)
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    texts = [ex.prompt for ex in splits.train] + [r for ex in splits.train for r in ex.responses]
    directory = warmed_backbone(cfg.model.backbone, texts, settings)
    report = warmup_report(directory)
    print(
        f"{cfg.model.backbone}: MLM head warmed up on {report['n_texts']} training texts of {args.experiment} "
        f"(held-out MLM loss {report['held_out_mlm_loss_before']:.2f} → {report['held_out_mlm_loss_after']:.2f} nats, "
        f"ln |V| = {report['ln_vocab']:.2f}; {report['seconds']:.0f} s when trained)",
        file=sys.stderr,
    )
    print(directory)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    val = subparsers.add_parser("validate", help="check an experiment config without loading models or data")
    val.add_argument("experiment", nargs="?", help="experiment name (e.g. mlm, mlm_code, cpu/mlm_code) or YAML path")
    val.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_epochs=1 family=math")
    val.add_argument("--all", action="store_true", help="validate every shipped experiment, in every family")
    val.add_argument("--list", action="store_true", help="list the shipped experiments and the families")
    val.set_defaults(func=cmd_validate)

    train = subparsers.add_parser("train", help="train a router, test its best checkpoint, write results")
    train.add_argument("experiment", help="experiment name (e.g. cpu/mlm_code, mlm_math) or YAML path")
    train.add_argument(
        "overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_epochs=1 data.protocol=kfold family=math"
    )
    train.set_defaults(func=cmd_train)

    warm = subparsers.add_parser(
        "warmup",
        help="warm up the MLM head of the experiment's backbone on its training texts (cached); prints the directory",
        description="Train only the MLM head (encoder frozen) on the experiment's training prompts and responses, "
        "cache the model, and print its directory for model.backbone=DIR (docs/training.md).",
    )
    warm.add_argument("experiment", help="experiment whose backbone and training split to use (e.g. cpu/mlm_all)")
    warm.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. data.max_train_prompts=3072")
    warm.add_argument("--steps", type=int, default=300, help="optimiser steps of 32 texts (default 300)")
    warm.set_defaults(func=cmd_warmup)
