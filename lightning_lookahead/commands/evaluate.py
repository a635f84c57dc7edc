"""`lookahead evaluate`: score baselines and trained routers on the test benchmarks."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.commands.common import _add_data_dir, _candidates, _require_data_dir
from lightning_lookahead.errors import LookaheadError


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lightning_lookahead.evaluation import evaluate_routers, parse_benchmarks
    from lightning_lookahead.routers.registry import parse_router

    learned = _checkpoint_routers(args.checkpoint or [], device=args.device, batch_size=args.batch_size)
    own = _own_dataset(args, learned) if args.dataset else None
    if own:
        candidates = tuple(own.candidates)
    else:
        candidates = _candidates(args.candidates) if args.candidates or not learned else tuple(learned[0].candidates)
        parse_benchmarks(args.benchmarks)  # a bad name fails before any router loads or fits
    baselines = args.router or ([] if learned else ["oracle"])
    routers = [*learned, *(r for spec in baselines for r in parse_router(spec, candidates))]
    prices = None
    if args.cost_sweep:
        from lightning_lookahead.costs.report import checked_prices, remember_scores

        prices = checked_prices(args.prices, candidates)
        routers = remember_scores(routers)
    elif args.prices:
        raise LookaheadError("--prices only applies with --cost-sweep OUT_DIR")
    benchmarks = _test_items(args, routers, candidates, own)
    options = {
        "drop_unparsed": args.mt_bench_drop_unparsed,
        "drop_null_verdicts": args.arena_hard_drop_null,
        "compute_lc": not args.no_lc,
    }
    runs = evaluate_routers(routers, benchmarks, candidates, **options)
    _write_report(args, runs, candidates)
    if args.cost_sweep:
        from lightning_lookahead.costs.report import run_cost_sweep, summary_table

        result, paths = run_cost_sweep(routers, benchmarks, candidates, args.cost_sweep, prices=prices)
        print(summary_table(result))
        print(f"{result.token_source}; prices: {result.price_source}")
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _test_items(args: argparse.Namespace, routers: Sequence[Any], candidates: Sequence[str], own: Any) -> Any:
    """The items every router is scored on (benchmark or domain → examples), after fitting the fitted routers
    (kNN, clusters, domain, ...) on the training prompts: the dataset's own split, else ``--fit-*``'s."""
    from lightning_lookahead.data.benchmarks import load_benchmark
    from lightning_lookahead.evaluation import fit_on_rows, parse_benchmarks
    from lightning_lookahead.routers.base import FittedRouter
    from lightning_lookahead.routers.fitted import fit_data_config, fit_for_evaluation

    fitted = [r for r in routers if isinstance(getattr(r, "wrapped", r), FittedRouter)]
    fitted = [getattr(r, "wrapped", r) for r in fitted]
    embedder = args.embedder or os.environ.get("LOOKAHEAD_EMBEDDER")
    if own:
        fit_on_rows(fitted, own.train, {"dataset": args.dataset}, embedder, own.cache)
        return own.test
    data_dir = _require_data_dir(args)
    benchmarks = {name: load_benchmark(name, data_dir, candidates) for name in parse_benchmarks(args.benchmarks)}
    if fitted:
        fit_data = fit_data_config(
            data_dir,
            candidates,
            family=args.fit_family,
            protocol=args.fit_protocol,
            fold=args.fold,
            overrides=args.fit_set or (),
        )
        benchmarks = fit_for_evaluation(fitted, benchmarks, fit_data, embedder=embedder)
        for r in fitted:
            print(r.fit_summary(), file=sys.stderr)
    return benchmarks


def _write_report(args: argparse.Namespace, runs: list[dict[str, Any]], candidates: Sequence[str]) -> None:
    """The table on stdout (and the picks with ``--picks``); ``--json`` / ``--markdown`` files, written whole."""
    from lightning_lookahead.data.io import write_atomic
    from lightning_lookahead.evaluation import markdown_table, picks_table, runs_to_json

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


def _own_dataset(args: argparse.Namespace, learned: list) -> Any:
    """`evaluate --dataset FILE`: the file's test rows by domain (the split training uses) and its pool."""
    from types import SimpleNamespace

    from lightning_lookahead.commands.data import dataset_argument
    from lightning_lookahead.config.compose import compose_data
    from lightning_lookahead.data.dataset_file import read_dataset
    from lightning_lookahead.data.dataset_splits import dataset_splits

    if args.benchmarks != "all":
        raise LookaheadError("--benchmarks selects paper benchmarks; with --dataset every domain of the file is scored")
    settings = {"dataset": str(args.dataset)}
    cfg = compose_data(settings, args.fit_set or (), source="--dataset", overrides_source="--fit-set")
    pool = None
    if args.candidates:
        pool = [c.strip() for c in args.candidates.split(",") if c.strip()]
    elif learned:
        pool = list(learned[0].candidates)
    data = read_dataset(dataset_argument(args.dataset), pool)
    try:
        train, _, test = dataset_splits(cfg, data)
    except LookaheadError as exc:  # the splitter names config keys; here they are --dataset and --fit-set
        raise LookaheadError(_as_flags(str(exc), str(args.dataset))) from None
    return SimpleNamespace(candidates=data.candidates, train=train, test=test, cache=Path(cfg.cache_dir))


def _as_flags(message: str, dataset: str) -> str:
    """A data-config message in the words of `evaluate`'s flags: ``data.dataset X`` → ``--dataset X``,
    ``data.dataset_test_fraction`` → ``--fit-set dataset_test_fraction=...``."""
    message = message.replace(f"data.dataset {dataset}", f"--dataset {dataset}")
    return re.sub(r"\bdata\.(dataset_\w+)", r"--fit-set \1=...", message)


def _checkpoint_routers(paths: Sequence[str], *, device: str, batch_size: int) -> list:
    """`evaluate --checkpoint`: one trained router per run directory, named after its run (made unique)."""
    from lightning_lookahead.inference import TrainedRouter

    routers = []
    for path in paths:
        router = TrainedRouter.from_checkpoint(path, device=device)
        if router.name in {r.name for r in routers}:
            router.name = f"{router.name} ({path})"
        router.batch_size, router.progress = batch_size, True
        routers.append(router)
    return routers


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("evaluate", help="score routers on the test benchmarks")
    ev.add_argument(
        "--router",
        action="append",
        metavar="SPEC",
        help="oracle | random[:SEED] | fixed:MODEL | fixed:all | knn:K | hard_cluster:K | soft_cluster:K | domain "
        "| smoothie[:N0] | rm:MODEL (reads the real responses: an upper bound) "
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
    fit = ev.add_argument_group("knn / cluster / smoothie / domain references: where their training prompts come from")
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
    ev.add_argument(
        "--dataset",
        default=None,
        metavar="FILE",
        help="your own dataset instead of the paper's benchmarks: its test rows, one column per domain (docs/data.md)",
    )
    _add_data_dir(ev)
    ev.set_defaults(func=cmd_evaluate)
