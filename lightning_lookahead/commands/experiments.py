"""`lookahead validate | train`: check an experiment config, or train the router it describes."""

from __future__ import annotations

import argparse

from lightning_lookahead.errors import LookaheadError


def cmd_validate(args: argparse.Namespace) -> int:
    from lightning_lookahead.config.compose import compose, list_experiments, to_yaml

    if args.list:
        print("\n".join(list_experiments()))
        return 0
    names = list_experiments() if args.all else [args.experiment]
    if not names or names == [None]:
        raise LookaheadError("name an experiment (e.g. `lookahead validate mlm_code`), or pass --all / --list")
    for name in names:
        cfg = compose(name, args.overrides)
        print(f"ok  {name}" if args.all else to_yaml(cfg))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from lightning_lookahead.config.compose import compose
    from lightning_lookahead.training.recipe import run_experiment

    run_experiment(compose(args.experiment, args.overrides))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    val = subparsers.add_parser("validate", help="check an experiment config without loading models or data")
    val.add_argument("experiment", nargs="?", help="experiment name (e.g. mlm_code, cpu/mlm_code) or YAML path")
    val.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_epochs=1")
    val.add_argument("--all", action="store_true", help="validate every shipped experiment")
    val.add_argument("--list", action="store_true", help="list the shipped experiments")
    val.set_defaults(func=cmd_validate)

    train = subparsers.add_parser("train", help="train a router, test its best checkpoint, write results")
    train.add_argument("experiment", help="experiment name (e.g. cpu/mlm_code) or YAML path")
    train.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_epochs=1 data.protocol=kfold")
    train.set_defaults(func=cmd_train)
