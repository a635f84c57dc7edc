"""`lookahead serve`: an OpenAI-compatible server that routes each request to one candidate's backend."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.extras import require_extra

DEFAULT_PORT = 8000


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
    if args.engine.startswith("onnx"):  # checked here: the workers load the router after the server has started
        require_extra("onnx", f"lookahead serve --engine {args.engine}")
    from lightning_lookahead import serving

    port = resolve_port(args.port)
    spec = serving.ServeSpec(
        checkpoint=str(args.checkpoint),
        backends=str(args.backends),
        host=args.host,
        port=port,
        workers=args.workers,
        device=args.device,
        engine=args.engine,
        backend_timeout=args.backend_timeout,
        prices=None if args.prices is None else str(args.prices),
        api_key_env=args.api_key_env,
        route_on=args.route_on,
        max_body_bytes=args.max_body_bytes,
        max_batch=args.max_batch,
        max_in_flight=args.max_in_flight,
        max_queue=args.max_queue,
        graceful_timeout=args.graceful_timeout,
        log_level=args.log_level,
    )
    spec.check()  # one-line errors before any process starts or any model loads
    if spec.api_key_env is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without auth (set --api-key-env)", file=sys.stderr)
    workers = f"{spec.workers} worker processes" if spec.workers > 1 else "one process"
    print(
        f"serving {args.checkpoint} on http://{args.host}:{port}/v1 with {workers}; "
        "GET /ready answers 200 once the router has loaded"
    )
    serving.serve(spec)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE, ENGINES

    srv = subparsers.add_parser("serve", help="OpenAI-compatible routing server in front of the candidates' backends")
    srv.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="run directory, its export/ or a .ckpt")
    srv.add_argument("--backends", type=Path, required=True, metavar="FILE", help="YAML like examples/backends.yaml")
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    srv.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port (default: the PORT environment variable when set, else {DEFAULT_PORT})",
    )
    srv.add_argument(
        "--workers", type=int, default=1, help="worker processes behind the port, each with its own router (default 1)"
    )
    srv.add_argument("--api-key-env", default=None, metavar="NAME", help="require `Bearer $NAME` on /v1/* (optional)")
    srv.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, help="largest request body (default 4 MiB)")
    srv.add_argument(
        "--backend-timeout", type=float, default=60.0, help="seconds per backend call unless the YAML sets one"
    )
    srv.add_argument(
        "--route-on", choices=("first", "last", "all"), default="first", help="user turn(s) to route on (default first)"
    )
    srv.add_argument("--device", default="cpu", help="torch device of the router (default cpu)")
    srv.add_argument(
        "--engine", choices=ENGINES, default=DEFAULT_ENGINE, help=f"routing forward path (default {DEFAULT_ENGINE})"
    )
    srv.add_argument(
        "--prices",
        type=Path,
        default=None,
        help="price YAML for router:λ=... for the candidates whose backend sets no cost (default: the shipped "
        "table, with the run's mean response lengths); candidates priced nowhere only lose router:λ=...",
    )
    srv.add_argument("--max-batch", type=int, default=32, help="most prompts in one routing call (default 32)")
    srv.add_argument(
        "--max-in-flight",
        type=int,
        default=256,
        help="chat requests handled at once per worker; more get 503 overloaded + Retry-After (default 256)",
    )
    srv.add_argument(
        "--max-queue",
        type=int,
        default=128,
        help="prompts waiting to be routed per worker; more get 503 overloaded + Retry-After (default 128)",
    )
    srv.add_argument(
        "--graceful-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take to finish before the server exits (default 30)",
    )
    srv.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    srv.set_defaults(func=cmd_serve)
