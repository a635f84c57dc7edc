"""`lookahead serve`: an OpenAI-compatible server that routes each request to one candidate's backend."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.extras import require_extra
from lightning_lookahead.serving.settings import DEFAULT_PORT, cli_options


def resolve_port(port: int | None) -> int:
    """``--port``, else the ``PORT`` environment variable (what Cloud Run, Heroku and the like set), else 8000."""
    if port is not None:
        return port
    raw = os.environ.get("PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 < value < 65536:
        raise LookaheadError(f"the PORT environment variable is {raw!r}; expected a port number from 1 to 65535")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    require_extra("serve", "lookahead serve")
    from lightning_lookahead.bundle.layout import is_bundle

    if not is_bundle(args.checkpoint):  # checked here: the workers load the router after the server has started
        require_extra("train", "lookahead serve on a run directory or checkpoint (an ONNX bundle serves without it)")
    if args.engine.startswith("onnx"):  # checked here: the workers load the router after the server has started
        require_extra("onnx", f"lookahead serve --engine {args.engine}")
    from lightning_lookahead import serving

    given = {name: getattr(args, name) for name in (flag[2:].replace("-", "_") for flag, _ in cli_options())}
    given = {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}
    spec = serving.ServeSpec(**{**given, "port": resolve_port(args.port)})
    spec = spec.checked()  # one-line errors before any process starts or any model loads; the backends file read once
    if spec.api_key_env is None and spec.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {spec.host} without auth (set --api-key-env)", file=sys.stderr)
    workers = f"{spec.workers} worker processes" if spec.workers > 1 else "one process"
    print(
        f"serving {spec.checkpoint} on http://{spec.host}:{spec.port}/v1 with {workers}; "
        "GET /ready answers 200 once the router has loaded"
    )
    serving.serve(spec)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    srv = subparsers.add_parser("serve", help="OpenAI-compatible routing server in front of the candidates' backends")
    for flag, keywords in cli_options():  # every flag, its default and help come from the settings dataclasses
        srv.add_argument(flag, **keywords)
    srv.set_defaults(func=cmd_serve)
