"""The `lookahead` command: data fetching and router evaluation.

User errors (bad input, unknown names, missing data) print one line on stderr and exit 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from lightning_lookahead import __version__
from lightning_lookahead.errors import LookaheadError

EXIT_USER_ERROR = 2


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: $LOOKAHEAD_DATA_DIR or ./data)"
    )


def _data_dir(args: argparse.Namespace) -> Path:
    from lightning_lookahead.data.fetch import default_data_dir

    return args.data_dir or default_data_dir()


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from lightning_lookahead.data.fetch import GitHubSource, MirrorSource, fetch

    mirror = args.mirror or os.environ.get("LOOKAHEAD_DATA_MIRROR")
    source = MirrorSource(Path(mirror)) if mirror else GitHubSource(timeout=args.timeout, retries=args.retries)
    data_dir = _data_dir(args)
    start = time.perf_counter()
    report = fetch(data_dir, source, only=args.only or None, progress=not args.no_progress)
    print(f"{data_dir}: {report.summary()} ({time.perf_counter() - start:.1f} s)")
    if report.missing and args.strict:
        print(f"error: {len(report.missing)} files are missing from {source.description} (--strict)", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from lightning_lookahead.data.benchmarks import load_benchmark, load_eval_ids, load_train_set, split_train_val
    from lightning_lookahead.data.schema import BENCHMARKS, TRAIN_SETS

    data_dir = _require_data_dir(args)
    candidates = _candidates(args.candidates)
    start = time.perf_counter()
    for name in BENCHMARKS:
        print(f"test  {name:<30} {len(load_benchmark(name, data_dir, candidates)):>6} items")
    for name in TRAIN_SETS:
        try:
            train, val = split_train_val(load_train_set(name, data_dir, candidates), load_eval_ids(name, data_dir))
        except LookaheadError as exc:
            if "not found" not in str(exc):
                raise
            print(f"train {name:<30} unavailable: {exc}")
            continue
        print(f"train {name:<30} {len(train):>6} train / {len(val)} validation prompts")
    print(f"all present files parse ({time.perf_counter() - start:.1f} s)")
    return 0


def _require_data_dir(args: argparse.Namespace) -> Path:
    data_dir = _data_dir(args)
    if not data_dir.is_dir():
        raise LookaheadError(
            f"data directory {data_dir} does not exist; run `lookahead data fetch` (or `make data`) first, "
            f"or pass --data-dir"
        )
    return data_dir


def _candidates(spec: str | None) -> tuple[str, ...]:
    from lightning_lookahead.data.schema import PAPER_CANDIDATES

    if not spec:
        return PAPER_CANDIDATES
    return tuple(s.strip() for s in spec.split(",") if s.strip())


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lightning_lookahead.data.benchmarks import load_benchmark
    from lightning_lookahead.evaluation import (
        evaluate_router,
        markdown_table,
        parse_benchmarks,
        picks_table,
        runs_to_json,
        write_atomic,
    )
    from lightning_lookahead.routers.baselines import parse_router

    data_dir = _require_data_dir(args)
    candidates = _candidates(args.candidates)
    names = parse_benchmarks(args.benchmarks)
    routers = [r for spec in (args.router or ["oracle"]) for r in parse_router(spec, candidates)]
    benchmarks = {name: load_benchmark(name, data_dir, candidates) for name in names}
    options = {
        "drop_unparsed": args.mt_bench_drop_unparsed,
        "drop_null_verdicts": args.arena_hard_drop_null,
        "compute_lc": not args.no_lc,
    }
    runs = [evaluate_router(router, benchmarks, candidates, **options) for router in routers]
    table = markdown_table(runs)
    print(table)
    if args.picks:
        print(picks_table(runs, candidates))
    if args.json:
        write_atomic(args.json, runs_to_json(runs))
        print(f"wrote {args.json}")
    if args.markdown:
        write_atomic(args.markdown, table + "\n" + picks_table(runs, candidates))
        print(f"wrote {args.markdown}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lookahead", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lightning_lookahead {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch and check the benchmark data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download (or copy from a mirror), verify and decompress the data")
    _add_data_dir(fetch)
    fetch.add_argument(
        "--mirror",
        default=None,
        help="local directory with the layout of compressed_data/ (default: $LOOKAHEAD_DATA_MIRROR; "
        "unset: GitHub raw files of the pinned commit)",
    )
    fetch.add_argument(
        "--only",
        action="append",
        metavar="PREFIX",
        help="fetch only paths under this prefix, e.g. test/GSM8k (repeatable)",
    )
    fetch.add_argument("--strict", action="store_true", help="exit non-zero when the source lacks any file")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")
    fetch.add_argument("--retries", type=int, default=5, help="HTTP retries per file (default 5)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=cmd_data_fetch)
    check = data_sub.add_parser("check", help="parse every benchmark and training set present and report sizes")
    _add_data_dir(check)
    check.add_argument("--candidates", default=None, help="comma-separated candidate pool (default: the paper's 5)")
    check.set_defaults(func=cmd_data_check)

    val = sub.add_parser("validate", help="check an experiment config without loading models or data")
    val.add_argument("experiment", nargs="?", help="experiment name (e.g. mlm_code, cpu/mlm_code) or YAML path")
    val.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_epochs=1")
    val.add_argument("--all", action="store_true", help="validate every shipped experiment")
    val.add_argument("--list", action="store_true", help="list the shipped experiments")
    val.set_defaults(func=cmd_validate)

    train = sub.add_parser("train", help="train a router, test its best checkpoint, write results")
    train.add_argument("experiment", help="experiment name (e.g. cpu/mlm_code) or YAML path")
    train.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. trainer.max_epochs=1 data.protocol=kfold")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="score routers on the test benchmarks")
    ev.add_argument(
        "--router",
        action="append",
        metavar="SPEC",
        help="oracle | random[:SEED] | fixed:MODEL | fixed:all (repeatable; default oracle)",
    )
    ev.add_argument("--benchmarks", default="all", help="'all' or comma-separated names (default all)")
    ev.add_argument(
        "--candidates",
        default=None,
        help="comma-separated candidate pool (default: the paper's 5 models, in the paper's order)",
    )
    ev.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    ev.add_argument("--markdown", type=Path, default=None, help="write the Markdown tables here")
    ev.add_argument("--picks", action="store_true", help="also print routing accuracy and pick shares")
    ev.add_argument(
        "--mt-bench-drop-unparsed",
        action="store_true",
        help="drop MT-Bench judgments scored -1 (FastChat's convention; default keeps them as the paper)",
    )
    ev.add_argument(
        "--arena-hard-drop-null",
        action="store_true",
        help="drop Arena-Hard null verdicts (upstream convention; default counts them as 3 baseline wins)",
    )
    ev.add_argument(
        "--no-lc",
        action="store_true",
        help="skip the AlpacaEval length-controlled win rate (needs alpaca_eval and the HF Hub)",
    )
    _add_data_dir(ev)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LookaheadError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
