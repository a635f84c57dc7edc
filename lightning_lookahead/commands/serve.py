"""`lookahead serve`: an OpenAI-compatible server that routes each request to one candidate's backend."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lightning_lookahead.errors import LookaheadError


def cmd_serve(args: argparse.Namespace) -> int:
    from lightning_lookahead.serving import ServerSettings, create_app, load_backends, serve

    if not args.backends.is_file():  # fail before the slow model load
        raise LookaheadError(f"{args.backends}: backends file not found (see examples/backends.yaml)")
    if args.max_body_bytes < 1 or args.backend_timeout <= 0:
        raise LookaheadError("--max-body-bytes and --backend-timeout must be positive")
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise LookaheadError(f"--api-key-env {args.api_key_env}: that environment variable is not set or empty")
    from lightning_lookahead.inference.router import TrainedRouter

    router = TrainedRouter.from_checkpoint(args.checkpoint, device=args.device)
    backends = load_backends(args.backends, router.candidates, default_timeout=args.backend_timeout)
    settings = ServerSettings(
        api_key=api_key,
        max_body_bytes=args.max_body_bytes,
        route_on=args.route_on,
        default_costs=_price_table_costs(router, args.prices),
    )
    if api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without auth (set --api-key-env)", file=sys.stderr)
    print(f"routing {router.kind} router over {len(backends)} backends on http://{args.host}:{args.port}/v1")
    serve(create_app(router, backends, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _price_table_costs(router, prices: Path | None):
    """Expected USD per 1,000 requests from the price table and the run's mean response lengths, if recorded.

    Used for ``router:λ=...`` when backends.yaml sets no ``cost``. Only output tokens are priced (the prompt is not
    tokenised per request), so differences in input price between candidates are ignored; a ``cost`` per backend in
    backends.yaml replaces this.
    """
    if router.response_tokens is None or not set(router.candidates) <= set(router.response_tokens):
        return None
    import numpy as np

    from lightning_lookahead.costs.prices import load_prices
    from lightning_lookahead.costs.token_counts import usd_per_1000_prompts

    tokens = np.array([router.response_tokens[c] for c in router.candidates], dtype=np.float64)
    return usd_per_1000_prompts(np.zeros(1), tokens, load_prices(prices), router.candidates)[0]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    srv = subparsers.add_parser("serve", help="OpenAI-compatible routing server in front of the candidates' backends")
    srv.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="run directory, its export/ or a .ckpt")
    srv.add_argument("--backends", type=Path, required=True, metavar="FILE", help="YAML like examples/backends.yaml")
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
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
        "--prices",
        type=Path,
        default=None,
        help="price YAML for router:λ=... when backends.yaml sets no cost (default: the shipped table, with the "
        "run's mean response lengths)",
    )
    srv.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    srv.set_defaults(func=cmd_serve)
