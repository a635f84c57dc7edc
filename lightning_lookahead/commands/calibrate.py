"""`lookahead calibrate`: fit λ (or τ) on a prompt log so routing meets a target cost or a model's share.

The log is scored once, split (seeded) into a fitting part and a held-out part; the knob is fitted on the first
(``costs/calibrate.py``) and reported on the second with bootstrap intervals, then saved by name in the run's
``calibrations.json`` for ``serve`` (``model: "router:<name>"``) and ``route --calibration NAME``. The costs are the
ones ``serve`` would use, so the value means the same trade-off there. A bundle calibrates without torch (the
calibration is kept in its folder); a run directory loads the torch router. Light at import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE, ENGINES


def _read_log(path: Path) -> list[str]:
    from lightning_lookahead.inference.prompts import parse_prompts

    try:
        with open(path, encoding="utf-8") as fh:
            prompts = parse_prompts(fh, str(path))
    except (FileNotFoundError, IsADirectoryError):
        raise LookaheadError(f"prompt log {path} not found") from None
    except UnicodeDecodeError as exc:
        raise LookaheadError(f"prompt log {path} is not UTF-8 text ({exc.reason})") from None
    if not prompts:
        raise LookaheadError(f'prompt log {path} holds no prompts (one per line, or JSON lines with a "prompt" key)')
    return prompts


def cmd_calibrate(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime

    from lightning_lookahead.bundle.hub import is_hub_id
    from lightning_lookahead.costs import calibrate_log as cl
    from lightning_lookahead.costs.calibrate import split
    from lightning_lookahead.data.io import write_atomic
    from lightning_lookahead.errors import unknown_name
    from lightning_lookahead.inference.calibrations import Calibration, check_name, load_calibrations, save_calibration

    # Everything that can be checked without the model first: a bad argument costs no model load.
    if is_hub_id(args.checkpoint):  # its snapshot lives in the Hub cache, which is no place to write a calibration
        raise LookaheadError(
            f"router path {args.checkpoint} does not exist; if it is a Hub id: calibrate keeps its fit in the "
            f"router's folder, so download it first (huggingface-cli download {args.checkpoint} --local-dir DIR) "
            "and calibrate DIR"
        )
    target = cl.parse_target(args.target_cost, args.target_share)
    name = check_name(args.name or ("budget" if target.cost is not None else "share"))
    if args.backends is not None and not args.backends.is_file():
        raise LookaheadError(f"{args.backends}: backends file not found (see examples/backends.yaml)")
    if args.output_tokens is not None and args.output_tokens <= 0:
        raise LookaheadError(f"--output-tokens must be a positive number of tokens, got {args.output_tokens}")
    if args.batch_size < 1:
        raise LookaheadError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    prompts = _read_log(args.prompts)
    try:
        parts = cl.LogSplit(str(args.prompts), *split(len(prompts), args.holdout, args.seed), args.holdout, args.seed)
    except LookaheadError as exc:
        raise LookaheadError(f"prompt log {args.prompts}: {exc}") from None

    from lightning_lookahead.inference.loading import load_router

    router = load_router(args.checkpoint, device=args.device, engine=args.engine, what="lookahead calibrate")
    if router.home is None:
        raise LookaheadError(f"{args.checkpoint}: no run directory to keep calibrations in")
    if target.model is not None and target.model not in router.candidates:
        raise unknown_name("candidate", target.model, router.candidates)
    costs, costs_from = cl.serve_costs(
        router.candidates, router.response_tokens, args.backends, args.prices, args.output_tokens
    )
    load_calibrations(router.home)  # a broken calibrations.json fails here, before scoring and writing
    cl.check_reachable(target, costs, router.candidates)  # no need to score the log to know
    print(f"scoring {len(prompts)} prompts of {args.prompts} with {router.name!r} ({router.engine})", file=sys.stderr)
    scores = router.score(prompts, batch_size=args.batch_size, progress=True)
    done = cl.calibrate_scores(scores, costs, costs_from, target, args.rule, router.candidates, parts, router.engine)
    fit = done.fit
    cal = Calibration(
        name=name,
        candidates=tuple(router.candidates),
        decision=done.rule,
        target=target.to_json(),
        achieved=done.achieved,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report = {"calibration": cal.to_json(), **done.report}
    knob = f"λ = {fit.lam:.6g}" if fit.rule == "penalty" else f"τ = {fit.tau:.6g}"
    print(f"\ncalibration {name!r}, {fit.rule} rule: {fit.message}")
    print(f"fitted on {len(parts.fitting)} prompts, reported on {len(parts.heldout)} held out (seed {args.seed})")
    print(f"costs in {cl.COST_UNIT}: {costs_from}\n")
    print(cl.format_report(report, target))
    if fit.status == "unreachable":
        print(f"warning: the target share is not reachable: {fit.message}", file=sys.stderr)
    path = save_calibration(router.home, cal)
    print(f"\nwrote calibration {name!r} to {path}")
    if args.json is not None:
        write_atomic(args.json, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        print(f"wrote the full report to {args.json}")
    print(f"offline: `lookahead route --checkpoint {args.checkpoint} --calibration {name}` applies it")
    print(
        f"serve: `{_serve_command(args)}` routes requests for model "
        f'"router:{name}" with {knob} over the costs above (the calibration keeps them)'
    )
    return 0


def _serve_command(args: argparse.Namespace) -> str:
    """The ``lookahead serve`` command for this run that prices the candidates as this calibration did."""
    import shlex

    command = ["lookahead", "serve", "--checkpoint", str(args.checkpoint)]
    command += ["--backends", "FILE" if args.backends is None else str(args.backends)]
    if args.prices is not None:
        command += ["--prices", str(args.prices)]
    return " ".join(part if part == "FILE" else shlex.quote(part) for part in command)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    cal = subparsers.add_parser(
        "calibrate", help="fit λ (or τ) on a prompt log to meet a target cost per 1,000 requests or a model's share"
    )
    cal.add_argument(
        "--checkpoint", required=True, metavar="RUN_DIR", help="bundle, run directory, its export/ or a .ckpt"
    )
    cal.add_argument(
        "--prompts",
        required=True,
        type=Path,
        metavar="LOG",
        help='prompt log: one prompt per line, or JSON lines with a "prompt" key (as route --file)',
    )
    cal.add_argument(
        "--target-cost", default=None, metavar="USD_PER_1000", help="mean expected cost to meet, USD per 1,000 requests"
    )
    cal.add_argument(
        "--target-share", default=None, metavar="MODEL=P", help="share P in [0, 1] of the prompts to route to MODEL"
    )
    cal.add_argument("--name", default=None, help="calibration name (default: budget, or share for --target-share)")
    cal.add_argument(
        "--rule",
        choices=("penalty", "threshold"),
        default="penalty",
        help="fit λ of the penalty rule (default) or τ of the threshold rule",
    )
    cal.add_argument("--holdout", type=float, default=0.2, help="held-out fraction of the log (default 0.2)")
    cal.add_argument("--seed", type=int, default=0, help="seed of the split and the bootstrap (default 0)")
    cal.add_argument(
        "--backends", type=Path, default=None, metavar="FILE", help="price with this backends.yaml's `cost` per backend"
    )
    cal.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="price YAML for the candidates whose backend sets no cost (default: the shipped table)",
    )
    cal.add_argument(
        "--output-tokens",
        type=int,
        default=None,
        help="response length for every candidate (default: each candidate's mean, recorded in the run's export)",
    )
    cal.add_argument("--batch-size", type=int, default=32, help="prompts per batch when scoring (default 32)")
    cal.add_argument(
        "--engine", choices=ENGINES, default=DEFAULT_ENGINE, help=f"routing engine (default {DEFAULT_ENGINE})"
    )
    cal.add_argument("--device", default="cpu", help="torch device (default cpu)")
    cal.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the full report here (JSON)")
    cal.set_defaults(func=cmd_calibrate)
