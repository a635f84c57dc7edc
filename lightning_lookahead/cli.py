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
from typing import Any

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
    from lightning_lookahead.routers.embedding_baselines import EmbeddingRouter, fit_for_evaluation

    data_dir = _require_data_dir(args)
    learned = _checkpoint_routers(args.checkpoint or [], device=args.device, batch_size=args.batch_size)
    candidates = _candidates(args.candidates) if args.candidates or not learned else tuple(learned[0].candidates)
    names = parse_benchmarks(args.benchmarks)
    baselines = args.router or ([] if learned else ["oracle"])
    routers = [*learned, *(r for spec in baselines for r in parse_router(spec, candidates))]
    fitted = [r for r in routers if isinstance(r, EmbeddingRouter)]  # knn / clusters: fitted below
    if args.cost_sweep:
        from lightning_lookahead.costs.report import checked_prices, remember_scores

        prices = checked_prices(args.prices, candidates)
        routers = remember_scores(routers)
    elif args.prices:
        raise LookaheadError("--prices only applies with --cost-sweep OUT_DIR")
    benchmarks = {name: load_benchmark(name, data_dir, candidates) for name in names}
    if fitted:
        benchmarks = fit_for_evaluation(
            fitted,
            benchmarks,
            data_dir=data_dir,
            candidates=candidates,
            family=args.fit_family,
            protocol=args.fit_protocol,
            fold=args.fold,
            overrides=args.fit_set or (),
            embedder=args.embedder or os.environ.get("LOOKAHEAD_EMBEDDER"),
        )
        for r in fitted:
            print(r.fit_summary(), file=sys.stderr)
    options = {
        "drop_unparsed": args.mt_bench_drop_unparsed,
        "drop_null_verdicts": args.arena_hard_drop_null,
        "compute_lc": not args.no_lc,
    }
    runs = [evaluate_router(router, benchmarks, candidates, **options) for router in routers]
    fit_info = {r.name: r.fit_info() for r in fitted}
    for run in runs:
        if run["router"] in fit_info:
            run["fit"] = fit_info[run["router"]]
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
    if args.cost_sweep:
        from lightning_lookahead.costs.report import run_cost_sweep, summary_table

        result, paths = run_cost_sweep(routers, benchmarks, candidates, args.cost_sweep, prices=prices)
        print(summary_table(result))
        print(f"{result.token_source}; prices: {result.price_source}")
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _checkpoint_routers(paths: Sequence[str], *, device: str, batch_size: int) -> list:
    """`evaluate --checkpoint`: one trained router per run directory, named after its run (made unique)."""
    from lightning_lookahead.inference import Router

    routers = []
    for path in paths:
        router = Router.from_checkpoint(path, device=device)
        if router.name in {r.name for r in routers}:
            router.name = f"{router.name} ({path})"
        router.batch_size, router.progress = batch_size, True
        routers.append(router)
    return routers


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


def _route_costs(args: argparse.Namespace, router: Any, prompts: Sequence[str]):
    """Expected USD per 1,000 prompts (prompts × candidates) for the cost-aware rules; None for argmax.

    The same unit as ``costs.token_counts.expected_cost_matrix``: the prompt's own token count (MiniLM tokenizer)
    at each candidate's input price plus its expected response length at its output price: ``--output-tokens`` for
    every candidate if given, else each candidate's mean response length on the run's training split (export).
    """
    if args.rule == "argmax":
        return None
    import numpy as np

    from lightning_lookahead.costs.prices import load_prices
    from lightning_lookahead.costs.token_counts import TokenCounter

    candidates = router.candidates
    if args.output_tokens is not None:
        response = np.full(len(candidates), float(args.output_tokens))
    elif router.response_tokens is not None and set(candidates) <= set(router.response_tokens):
        response = np.array([router.response_tokens[c] for c in candidates], dtype=np.float64)
    else:
        raise LookaheadError(
            f"--rule {args.rule} needs each candidate's expected response length: this run's export has none "
            "(exported before response lengths were recorded); pass --output-tokens N"
        )
    price_in, price_out = load_prices(args.prices).arrays(candidates)
    prompt_tokens = TokenCounter(progress=False).count(list(prompts))
    return 1000.0 * (prompt_tokens[:, None] * price_in[None, :] + response[None, :] * price_out[None, :]) / 1e6


def cmd_route(args: argparse.Namespace) -> int:
    import json

    from lightning_lookahead.evaluation import write_atomic
    from lightning_lookahead.inference import Router

    prompts = _route_prompts(args)
    if not prompts:
        raise LookaheadError("no prompts to route (the input is empty)")
    router = Router.from_checkpoint(args.checkpoint, device=args.device)
    costs = _route_costs(args, router, prompts)
    decisions = router.route(
        prompts,
        batch_size=args.batch_size,
        rule=args.rule,
        lam=args.lam,
        tau=args.tau,
        costs=costs,
        progress=len(prompts) > args.batch_size,
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
    from lightning_lookahead.inference import Router, export_router
    from lightning_lookahead.inference.export import EXPORT_DIR

    path = Path(args.path)
    ckpt = path / "checkpoints" / f"{args.checkpoint}.ckpt" if path.is_dir() else path
    run_dir = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else None
    if args.out is None and run_dir is None:
        raise LookaheadError(f"{path} is not inside a run's checkpoints/ folder; say where to write with --out DIR")
    router = Router.from_checkpoint(ckpt)
    out = args.out or run_dir / EXPORT_DIR
    export_router(router.module, out, name=router.name, source=ckpt)
    print(f"exported the {router.kind} router {router.name!r} from {ckpt} to {out}")
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
    from lightning_lookahead.inference.router import Router

    router = Router.from_checkpoint(args.checkpoint, device=args.device)
    backends = load_backends(args.backends, router.candidates, default_timeout=args.backend_timeout)
    settings = ServerSettings(api_key=api_key, max_body_bytes=args.max_body_bytes, route_on=args.route_on)
    if api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without auth (set --api-key-env)", file=sys.stderr)
    print(f"routing {router.kind} router over {len(backends)} backends on http://{args.host}:{args.port}/v1")
    serve(create_app(router, backends, settings), host=args.host, port=args.port, log_level=args.log_level)
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
        help="oracle | random[:SEED] | fixed:MODEL | fixed:all | knn:K | hard_cluster:K | soft_cluster:K "
        "(repeatable; default oracle; docs/baselines.md)",
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
    ev.add_argument(
        "--checkpoint",
        action="append",
        metavar="RUN_DIR",
        help="a trained router (run directory, its export/ or a .ckpt; repeatable), one row each, named after the run",
    )
    ev.add_argument("--device", default="cpu", help="device for --checkpoint routers (default cpu)")
    ev.add_argument("--batch-size", type=int, default=32, help="prompts per batch for --checkpoint routers")
    ev.add_argument(
        "--cost-sweep",
        type=Path,
        default=None,
        metavar="OUT_DIR",
        help="trace every router's cost–quality curve: OUT_DIR/cost_quality.{png,md,json} (docs/cost.md)",
    )
    ev.add_argument(
        "--prices", type=Path, default=None, metavar="FILE", help="price YAML for --cost-sweep (default: shipped table)"
    )
    fit = ev.add_argument_group("knn / cluster baselines: where their training prompts come from")
    fit.add_argument("--fit-family", default="code", help="chat | math | code | all (default code: the only labels)")
    fit.add_argument("--fit-protocol", default="paper", help="paper | kfold (kfold tests only the held-out fold)")
    fit.add_argument("--fold", type=int, default=None, help="held-out fold under --fit-protocol kfold (default 0)")
    fit.add_argument(
        "--fit-set",
        action="append",
        metavar="KEY=VALUE",
        help="data setting for the fit, e.g. max_train_prompts=1024 or kfold.k=5 (repeatable)",
    )
    fit.add_argument(
        "--embedder", default=None, help="sentence encoder name or directory (default: $LOOKAHEAD_EMBEDDER or minilm)"
    )
    _add_data_dir(ev)
    ev.set_defaults(func=cmd_evaluate)

    route = sub.add_parser("route", help="route prompts with a trained router; JSON lines out")
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
        choices=["argmax", "penalty", "threshold"],
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
    route.set_defaults(func=cmd_route)

    export = sub.add_parser("export", help="write a servable export (safetensors + router.json) from a checkpoint")
    export.add_argument("path", help="run directory or .ckpt file")
    export.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint of a run dir")
    export.add_argument("--out", type=Path, default=None, help="export directory (default: <run_dir>/export)")
    export.set_defaults(func=cmd_export)

    srv = sub.add_parser("serve", help="OpenAI-compatible routing server in front of the candidates' backends")
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
    srv.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    srv.set_defaults(func=cmd_serve)
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
