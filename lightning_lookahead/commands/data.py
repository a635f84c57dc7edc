"""`lookahead data fetch | check | collect | score`: the benchmark data, and your own dataset from prompts to scores."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lightning_lookahead.commands.collect import add_collect_parser
from lightning_lookahead.commands.common import (
    EXIT_USER_ERROR,
    _add_data_dir,
    _candidates,
    _data_dir,
    _require_data_dir,
)
from lightning_lookahead.commands.score import add_score_parser
from lightning_lookahead.errors import LookaheadError


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
    if args.dataset is not None:
        return _check_dataset(args)
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


def dataset_argument(value: str | Path, flag: str = "--dataset") -> Path:
    """A dataset file (or ``datasets`` folder) given on the command line; a missing one is an error naming ``flag``.

    The reader's own message names the config key ``data.dataset``, which is right for ``lookahead train`` but not
    for a command where the user typed a flag.
    """
    path = Path(value)
    if not path.exists():
        raise LookaheadError(f"{flag} {str(value)!r}: file not found")
    return path


def _check_dataset(args: argparse.Namespace) -> int:
    """`data check --dataset FILE`: every row checked; the pool, rows per split and what training would drop."""
    from lightning_lookahead.data.dataset_file import read_dataset

    path = dataset_argument(args.dataset)
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
    print(read_dataset(path, candidates).summary())
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data", help="fetch and check the benchmark data; collect, score and check your own dataset"
    )
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
    check.add_argument(
        "--candidates", default=None, help="comma-separated candidate pool (default: the paper's 5, or the dataset's)"
    )
    check.add_argument(
        "--dataset", default=None, metavar="FILE", help="check your own dataset file instead (docs/data.md)"
    )
    check.set_defaults(func=cmd_data_check)
    add_collect_parser(data_sub)
    add_score_parser(data_sub)
