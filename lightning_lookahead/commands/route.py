"""`lookahead route | export`: route prompts with a trained router, or write a servable export of one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.costs.rules import RULES, DecisionRule
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE, ENGINES


def _route_prompts(args: argparse.Namespace) -> list[str]:
    """Prompts from the arguments, ``--file`` or stdin (``-`` or nothing), in input order."""
    from lightning_lookahead.inference.prompts import parse_prompts

    if args.file is not None and args.prompts:
        raise LookaheadError("give prompts as arguments or with --file, not both")
    if args.file is not None and str(args.file) != "-":
        try:
            with open(args.file, encoding="utf-8") as fh:
                return parse_prompts(fh, str(args.file))
        except (FileNotFoundError, IsADirectoryError):
            raise LookaheadError(f"prompt file {args.file} not found") from None
        except UnicodeDecodeError as exc:
            raise LookaheadError(f"prompt file {args.file} is not UTF-8 text ({exc.reason})") from None
    if args.file is None and args.prompts != ["-"] and args.prompts:
        if "-" in args.prompts:
            raise LookaheadError("'-' (read stdin) cannot be mixed with prompts given as arguments")
        return list(args.prompts)
    if sys.stdin.isatty():
        raise LookaheadError("no prompts: pass them as arguments, with --file FILE, or on stdin")
    return parse_prompts(sys.stdin, "<stdin>")


def _route_costs(args: argparse.Namespace, rule: DecisionRule, router: Any, prompts: Sequence[str]):
    """Expected USD per 1,000 prompts (prompts × candidates) for a cost-aware rule; None for the argmax or a rule that
    carries its own costs (a calibration).

    The same unit as ``costs.token_counts.expected_cost_matrix``: the prompt's own token count (MiniLM tokenizer)
    at each candidate's input price plus its expected response length at its output price: ``--output-tokens`` for
    every candidate if given, else each candidate's mean response length on the run's training split (export).
    """
    if not rule.needs_costs or rule.costs is not None:
        return None
    import numpy as np

    from lightning_lookahead.costs.prices import load_prices
    from lightning_lookahead.costs.token_counts import TokenCounter, usd_per_1000_prompts

    candidates = router.candidates
    if args.output_tokens is not None:
        response = np.full(len(candidates), float(args.output_tokens))
    elif router.response_tokens is not None and set(candidates) <= set(router.response_tokens):
        response = np.array([router.response_tokens[c] for c in candidates], dtype=np.float64)
    else:
        raise LookaheadError(
            f"--rule {rule.rule} needs each candidate's expected response length: this run's export has none "
            "(exported before response lengths were recorded); pass --output-tokens N"
        )
    prompt_tokens = TokenCounter(progress=False).count(list(prompts))
    return usd_per_1000_prompts(prompt_tokens, response, load_prices(args.prices), candidates)


def _given_rule(args: argparse.Namespace) -> DecisionRule:
    """``--rule/--lam/--tau`` (checked before any model loads); with ``--calibration`` each must be left as it is."""
    if args.calibration:
        given = [f"--{k.replace('_', '-')}" for k, default in _SETTING_DEFAULTS.items() if getattr(args, k) != default]
        if given:
            raise LookaheadError(
                f"--calibration {args.calibration} sets the rule, λ/τ and costs; drop {', '.join(given)}"
            )
    return DecisionRule(args.rule, args.lam, args.tau)


def _decision_rule(args: argparse.Namespace, given: DecisionRule, router: Any) -> DecisionRule:
    """The rule to route with: calibration ``args.calibration`` (``lookahead calibrate``: its rule, λ or τ and the
    costs it was fitted with), else the one the options give."""
    if not args.calibration:
        return given
    from lightning_lookahead.inference.calibrations import calibrations_path, load_calibrations

    calibrations = load_calibrations(router.home, router.candidates)
    if args.calibration not in calibrations:
        known = ", ".join(sorted(calibrations)) or "none"
        raise LookaheadError(
            f"no calibration {args.calibration!r} in {calibrations_path(router.home)} (known: {known}); "
            "write one with `lookahead calibrate`"
        )
    return calibrations[args.calibration].decision


#: What --calibration replaces: each of these must be left at its default when it is given.
_SETTING_DEFAULTS = {"rule": "argmax", "lam": 0.0, "tau": 0.5, "prices": None, "output_tokens": None}


def _route_file(args: argparse.Namespace, given: DecisionRule) -> int:
    """``--file LOG --out OUT``: sharded and resumable, on one process or ``--devices N`` (inference/bulk); a bundle
    on one process (onnxruntime already spreads a batch over the cores)."""
    from lightning_lookahead.inference.bulk import BulkJob, RouteSettings, Routing, route_file
    from lightning_lookahead.inference.loading import is_bundle_path, load_router

    if args.prompts:
        raise LookaheadError("give prompts as arguments or with --file, not both")
    if args.file is None or str(args.file) == "-" or args.out is None:
        raise LookaheadError("--devices N > 1 routes a prompt file: pass --file LOG and --out OUT")
    if args.devices > 1 and args.device != "cpu":
        raise LookaheadError("--device is for one process; with --devices N choose GPUs with --accelerator gpu")
    if args.devices > 1 and is_bundle_path(args.checkpoint):
        raise LookaheadError(
            f"{args.checkpoint} is an ONNX bundle: it routes a log in one process (onnxruntime uses every core); "
            "drop --devices"
        )

    def load(device: str) -> Routing:  # once per process
        router = load_router(args.checkpoint, device=device, engine=args.engine, what="lookahead route --file --out")
        rule = _decision_rule(args, given, router)
        if args.calibration:
            source = {"calibration": args.calibration, "costs": list(rule.costs or ())}
        else:
            source = _price_source(args) if rule.needs_costs else {}
        settings = RouteSettings(rule, args.batch_size, router.engine, source)
        return Routing(router, settings, lambda router, prompts: _route_costs(args, rule, router, prompts))

    job = BulkJob(args.file, args.out, args.shard_size, args.devices, args.accelerator, args.device, args.restart)
    return route_file(job, load)


def _price_source(args: argparse.Namespace) -> dict[str, Any]:
    """Where a cost rule's prices and response lengths come from, as a resumed bulk run must match them."""
    from lightning_lookahead.inference.bulk.parts import file_sha256

    if args.prices is None:
        prices = "shipped"
    elif Path(args.prices).is_file():
        prices = file_sha256(Path(args.prices))
    else:
        raise LookaheadError(f"price table {args.prices} not found")
    return {"prices": prices, "output_tokens": args.output_tokens}


def _load_router(args: argparse.Namespace) -> Any:
    """A bundle folder (or a Hub id of one) loads the light router, without torch; anything else the torch one."""
    from lightning_lookahead.inference.loading import load_router

    return load_router(args.checkpoint, device=args.device, engine=args.engine, what="lookahead route")


def cmd_route(args: argparse.Namespace) -> int:
    import json

    from lightning_lookahead.data.io import write_atomic

    given = _given_rule(args)
    if args.devices > 1 or (args.file is not None and str(args.file) != "-" and args.out is not None):
        return _route_file(args, given)
    prompts = _route_prompts(args)
    if not prompts:
        raise LookaheadError("no prompts to route (the input is empty)")
    router = _load_router(args)
    rule = _decision_rule(args, given, router)
    costs = _route_costs(args, rule, router, prompts)
    decisions = router.route(
        prompts, batch_size=args.batch_size, rule=rule, costs=costs, progress=len(prompts) > args.batch_size
    )
    lines = [json.dumps({"prompt_index": i, **d.to_json()}, ensure_ascii=False) for i, d in enumerate(decisions)]
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        write_atomic(args.out, text)
        print(f"wrote {len(lines)} routing decisions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        from lightning_lookahead.commands.bundle import export_bundle

        return export_bundle(args)
    if args.quantize is not None:
        raise LookaheadError("--quantize applies to --format onnx only")
    from lightning_lookahead.commands.bundle import write_export_card
    from lightning_lookahead.inference import TrainedRouter, export_router
    from lightning_lookahead.inference.export import EXPORT_DIR

    path = Path(args.path)
    ckpt = path / "checkpoints" / f"{args.checkpoint}.ckpt" if path.is_dir() else path
    run_dir = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else None
    if args.out is None and run_dir is None:
        raise LookaheadError(f"{path} is not inside a run's checkpoints/ folder; say where to write with --out DIR")
    router = TrainedRouter.from_checkpoint(ckpt)
    out = args.out or run_dir / EXPORT_DIR
    export_router(router.predictor, out, name=router.name, source=ckpt)
    write_export_card(router, Path(out))
    print(f"exported the {router.kind} router {router.name!r} from {ckpt} to {out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    route = subparsers.add_parser("route", help="route prompts with a trained router; JSON lines out")
    route.add_argument(
        "prompts", nargs="*", help="prompts to route; '-' or none: read stdin (one per line or JSON lines)"
    )
    route.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="run directory, its export/ or a .ckpt")
    route.add_argument(
        "--file", type=Path, default=None, help='prompts, one per line or JSON lines with a "prompt" key (- = stdin)'
    )
    route.add_argument("--out", type=Path, default=None, help="write the JSON lines here (atomically), not stdout")
    route.add_argument("--batch-size", type=int, default=32, help="prompts per batch (default 32)")
    route.add_argument("--device", default="cpu", help="torch device (default cpu)")
    route.add_argument(
        "--rule",
        choices=RULES,
        default="argmax",
        help="argmax (quality only), penalty (max p - λ·cost) or threshold (cheapest with p ≥ τ); docs/inference.md",
    )
    route.add_argument("--lam", type=float, default=0.0, help="λ of --rule penalty (per USD per 1,000 prompts)")
    route.add_argument("--tau", type=float, default=0.5, help="τ of --rule threshold (top-choice probability)")
    route.add_argument("--prices", type=Path, default=None, help="price YAML for cost rules (default: shipped table)")
    route.add_argument(
        "--output-tokens",
        type=int,
        default=None,
        help="expected response length in tokens for every candidate (default: each candidate's mean on the run's "
        "training split, recorded in its export)",
    )
    route.add_argument(
        "--calibration",
        default=None,
        metavar="NAME",
        help="apply a setting saved by `lookahead calibrate` (rule, λ/τ and costs; replaces --rule/--lam/--tau)",
    )
    route.add_argument(
        "--engine", choices=ENGINES, default=DEFAULT_ENGINE, help=f"routing forward path (default {DEFAULT_ENGINE})"
    )
    bulk = route.add_argument_group("bulk routing (--file LOG --out OUT: sharded, resumable; docs/inference.md)")
    bulk.add_argument(
        "--devices",
        type=int,
        default=1,
        help="processes (CPU) or GPUs on this machine to route on (default 1); bulk routing does not span machines "
        "(unlike training's trainer.num_nodes): split the log and route each part on its own machine",
    )
    bulk.add_argument(
        "--accelerator", choices=["cpu", "gpu", "auto"], default="cpu", help="what --devices counts (default cpu)"
    )
    bulk.add_argument("--shard-size", type=int, default=4096, help="prompts per resumable shard (default 4096)")
    bulk.add_argument("--restart", action="store_true", help="drop OUT.parts left by an earlier run; start afresh")
    route.set_defaults(func=cmd_route)

    export = subparsers.add_parser(
        "export", help="write a servable export (safetensors + router.json) or an ONNX inference bundle"
    )
    export.add_argument("path", help="run directory or .ckpt file")
    export.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint of a run dir")
    export.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <run_dir>/export, or <run_dir>/bundle for onnx)"
    )
    export.add_argument(
        "--format",
        choices=["safetensors", "onnx"],
        default="safetensors",
        help="safetensors: the torch export; onnx: a torch-free inference bundle (docs/inference.md)",
    )
    export.add_argument("--quantize", choices=["int8"], default=None, help="onnx only: dynamic int8 quantisation")
    export.add_argument("--check-prompts", type=Path, default=None, help="onnx only: prompts to check the bundle on")
    export.set_defaults(func=cmd_export)
