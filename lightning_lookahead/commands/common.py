"""Helpers shared by several subcommands: the data directory option and the candidate pool."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning_lookahead.errors import LookaheadError

EXIT_USER_ERROR = 2


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: $LOOKAHEAD_DATA_DIR or ./data)"
    )


def _data_dir(args: argparse.Namespace) -> Path:
    from lightning_lookahead.data.fetch import default_data_dir

    return args.data_dir or default_data_dir()


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
