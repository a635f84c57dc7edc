"""`lookahead calibrate`: fit λ (or τ) on a prompt log so routing meets a target cost or a model's share.

The log is scored once, split (seeded) into a fitting part and a held-out part; the knob is fitted on the first
(``costs/calibrate.py``) and reported on the second with bootstrap intervals, then saved by name in the run's
``calibrations.json`` for ``serve`` (``model: "router:<name>"``) and ``route --calibration NAME``. The costs are the
ones ``serve`` would use, so the value means the same trade-off there. Light at import: torch loads with the router.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE, ENGINES

COST_UNIT = "USD per 1,000 requests"


@dataclass(frozen=True)
class _Target:
    """``--target-cost`` (``cost``) or ``--target-share MODEL=P`` (``model``, ``share``)."""

    cost: float | None = None
    model: str | None = None
    share: float | None = None

    def to_json(self) -> dict[str, Any]:
        if self.cost is not None:
            return {"cost": self.cost, "unit": COST_UNIT}
        return {"share": {"model": self.model, "p": self.share}}


class _KeysNotRead(Mapping[str, str]):
    """An environment in which every ``api_key_env`` is set: calibrate reads only the backends' costs."""

    def __getitem__(self, key: str) -> str:
        return "not-read-by-calibrate"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _target(args: argparse.Namespace) -> _Target:
    if (args.target_cost is None) == (args.target_share is None):
        raise LookaheadError("give exactly one of --target-cost USD_PER_1000 and --target-share MODEL=P")
    if args.target_cost is not None:
        try:
            cost = float(args.target_cost)
        except ValueError:
            cost = math.nan
        if not (math.isfinite(cost) and cost >= 0):
            raise LookaheadError(
                f"--target-cost {args.target_cost!r}: expected a number ≥ 0 ({COST_UNIT}, the unit of route --lam)"
            )
        return _Target(cost=cost)
    model, sep, value = str(args.target_share).rpartition("=")
    try:
        p = float(value)
    except ValueError:
        p = math.nan
    if not sep or not model.strip() or not math.isfinite(p):
        raise LookaheadError(f"--target-share {args.target_share!r}: expected MODEL=P, e.g. Yi-1.5-34B-Chat=0.2")
    if not 0.0 <= p <= 1.0:
        raise LookaheadError(f"--target-share {args.target_share!r}: the share P must be in [0, 1], got {p}")
    return _Target(model=model.strip(), share=p)


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


def _costs(args: argparse.Namespace, router: Any) -> tuple[Any, str]:
    """The (C,) cost vector ``serve`` would route with, and where it came from (for the report).

    As ``serve`` resolves them: each backend's ``cost`` (``--backends FILE``), else the price table (``--prices FILE``,
    default the shipped one) where it names the candidate. Calibrating needs a cost for every candidate.
    """
    from lightning_lookahead.costs.request_costs import resolve_costs

    backend_costs: dict[str, float | None] = {}
    if args.backends is not None:
        from lightning_lookahead.backends import load_backends

        backends = load_backends(args.backends, router.candidates, environ=_KeysNotRead())
        backend_costs = {name: backend.cost for name, backend in backends.items()}
        if args.output_tokens is not None and all(c is not None for c in backend_costs.values()):
            raise LookaheadError(
                f"--output-tokens prices from the price table, but {args.backends} sets a `cost` for every backend"
            )
    costs = resolve_costs(
        router.candidates,
        backend_costs,
        router.response_tokens,
        args.prices,
        output_tokens=args.output_tokens,
        backends_label=str(args.backends or "backends.yaml"),
    )
    if costs.missing:
        lengths = "" if args.output_tokens is not None else ", or --output-tokens N where only a length is missing"
        backends = (
            "a `cost` on each backend in --backends FILE" if args.backends is None else f"a `cost` in {args.backends}"
        )
        raise LookaheadError(
            f"no cost for {costs.missing_reason()}: calibrating needs a cost for every candidate; give {backends}, "
            f"or --prices FILE naming them (models: {{NAME: {{input: USD, output: USD}}}} per 1M tokens){lengths}"
        )
    vector = costs.vector()
    assert vector is not None
    return vector, costs.describe()


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _money(x: float) -> str:
    return f"{x:.4f}"


def _interval(d: Mapping[str, float], fmt) -> str:
    return f"{fmt(d['value'])} [{fmt(d['low'])}, {fmt(d['high'])}]"


def _print_report(report: dict[str, Any], target: _Target) -> None:
    fit, held, costs = report["fitting"], report["heldout"], report["costs"]
    candidates = list(costs["per_candidate"])
    width = max(len(c) for c in [*candidates, "mean cost (USD per 1,000)"]) + 2
    print("share of the prompts routed to each candidate: the argmax decision (held-out) and the calibrated setting")
    print(f"{'candidate':<{width}}{'cost/1k':>10}{'argmax':>9}{'fitting':>9}{'held-out':>10}")
    for name in candidates:
        row = [_money(costs["per_candidate"][name]), _pct(held["argmax_shares"][name])]
        row += [_pct(fit["shares"][name]), _pct(held["shares"][name])]
        print(f"{name:<{width}}{row[0]:>10}{row[1]:>9}{row[2]:>9}{row[3]:>10}")
    print()
    print(f"{'':<{width}}{'fitting':>10}   held-out [95% interval]")
    print(f"{'mean cost (USD per 1,000)':<{width}}{_money(fit['mean_cost']['value']):>10}   ", end="")
    print(_interval(held["mean_cost"], _money))
    print(f"{'argmax cost':<{width}}{_money(fit['argmax_cost']['value']):>10}   ", end="")
    print(_interval(held["argmax_cost"], _money))
    if target.model is not None:
        label = f"share of {target.model}"
        print(f"{label:<{width}}{_pct(fit['share']['value']):>10}   {_interval(held['share'], _pct)}")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import numpy as np

    from lightning_lookahead.costs import calibrate
    from lightning_lookahead.data.io import write_atomic
    from lightning_lookahead.errors import unknown_name
    from lightning_lookahead.inference.calibrations import (
        Calibration,
        check_name,
        load_calibrations,
        save_calibration,
    )

    # Everything that can be checked without the model first: a bad argument costs no model load.
    target = _target(args)
    name = check_name(args.name or ("budget" if target.cost is not None else "share"))
    if args.backends is not None and not args.backends.is_file():
        raise LookaheadError(f"{args.backends}: backends file not found (see examples/backends.yaml)")
    if args.output_tokens is not None and args.output_tokens <= 0:
        raise LookaheadError(f"--output-tokens must be a positive number of tokens, got {args.output_tokens}")
    if args.batch_size < 1:
        raise LookaheadError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    prompts = _read_log(args.prompts)
    try:
        fit_idx, held_idx = calibrate.split(len(prompts), args.holdout, args.seed)
    except LookaheadError as exc:
        raise LookaheadError(f"prompt log {args.prompts}: {exc}") from None

    from lightning_lookahead.inference.router import TrainedRouter

    router = TrainedRouter.from_checkpoint(args.checkpoint, device=args.device, engine=args.engine)
    if router.home is None:
        raise LookaheadError(f"{args.checkpoint}: no run directory to keep calibrations in")
    model = None
    if target.model is not None:
        if target.model not in router.candidates:
            raise unknown_name("candidate", target.model, router.candidates)
        model = router.candidates.index(target.model)
    costs, costs_from = _costs(args, router)
    load_calibrations(router.home)  # a broken calibrations.json fails here, before scoring and writing
    if target.cost is not None and target.cost < float(np.min(costs)):  # no need to score the log to know
        cheapest = router.candidates[int(np.argmin(costs))]
        raise LookaheadError(
            f"--target-cost {target.cost:g} ({COST_UNIT}) cannot be met: even routing every prompt to {cheapest} "
            f"costs {float(np.min(costs)):.5g}"
        )
    print(f"scoring {len(prompts)} prompts of {args.prompts} with {router.name!r} ({router.engine})", file=sys.stderr)
    scores = router.score(prompts, batch_size=args.batch_size, progress=True)
    fit_scores, held_scores = scores[fit_idx], scores[held_idx]
    if target.cost is not None:
        fit = calibrate.fit_cost(fit_scores, costs, target.cost, rule=args.rule, candidates=router.candidates)
        if fit.status == "unreachable":
            raise LookaheadError(f"--target-cost {target.cost:g} ({COST_UNIT}) cannot be met: {fit.message}")
    else:
        assert model is not None and target.share is not None
        fit = calibrate.fit_share(fit_scores, costs, model, target.share, rule=args.rule, candidates=router.candidates)
    fitting = calibrate.heldout_report(fit_scores, costs, fit, router.candidates, model=model, seed=args.seed)
    heldout = calibrate.heldout_report(held_scores, costs, fit, router.candidates, model=model, seed=args.seed)
    split = {"log": str(args.prompts), "n_fit": len(fit_idx), "n_heldout": len(held_idx), "holdout": args.holdout}
    split |= {"seed": args.seed, "engine": router.engine}
    cal = Calibration(
        name=name,
        rule=args.rule,
        candidates=tuple(router.candidates),
        costs=tuple(float(c) for c in np.asarray(costs)),
        lam=fit.lam,
        tau=fit.tau,
        target=target.to_json(),
        achieved={**split, "status": fit.status, "message": fit.message, "costs_from": costs_from, "heldout": heldout},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report = {
        "calibration": cal.to_json(),
        "fit": fit.to_json(),
        "split": split,
        "costs": {
            "unit": COST_UNIT,
            "from": costs_from,
            "per_candidate": dict(zip(router.candidates, cal.costs, strict=True)),
        },
        "fitting": fitting,
        "heldout": heldout,
    }
    knob = f"λ = {fit.lam:.6g}" if fit.rule == "penalty" else f"τ = {fit.tau:.6g}"
    print(f"\ncalibration {name!r}, {fit.rule} rule: {fit.message}")
    print(f"fitted on {len(fit_idx)} prompts, reported on {len(held_idx)} held out (seed {args.seed})")
    print(f"costs in {COST_UNIT}: {costs_from}\n")
    _print_report(report, target)
    if fit.status == "unreachable":
        print(f"warning: the target share is not reachable: {fit.message}", file=sys.stderr)
    path = save_calibration(router.home, cal)
    print(f"\nwrote calibration {name!r} to {path}")
    if args.json is not None:
        import json

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
    cal.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="run directory, its export/ or a .ckpt")
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
