"""The `lookahead` command: data fetching and router evaluation.

User errors (bad input, unknown names, missing data) print one line on stderr and exit 2;
``--debug`` shows the traceback instead. Each command group lives in ``lightning_lookahead.commands``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lightning_lookahead.commands import bundle, calibrate, data, evaluate, experiments, route, serve, tune
from lightning_lookahead.commands.common import EXIT_USER_ERROR
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.extras import require_command_extras
from lightning_lookahead.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lookahead", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lightning_lookahead {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)
    # the order `lookahead --help` lists them in
    for group in (data, experiments, tune, evaluate, route, calibrate, serve, bundle):
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        require_command_extras(args.command)
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
