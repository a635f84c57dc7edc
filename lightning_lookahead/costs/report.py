"""Cost-sweep outputs: the Markdown table of points and summary, the JSON, the PNG, and the W&B image after training."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_lookahead.costs.plot import plot_cost_quality
from lightning_lookahead.costs.prices import PriceTable, load_prices
from lightning_lookahead.costs.sweep import COST_UNIT, TARGET_SHARE, SweepResult, build_problem, sweep
from lightning_lookahead.costs.token_counts import TokenCounter
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.base import Router

PNG, MARKDOWN, JSON = "cost_quality.png", "cost_quality.md", "cost_quality.json"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_table(result: SweepResult) -> str:
    """One row per router: its argmax point and the two summary figures."""
    lines = [
        f"| Router | argmax cost ({COST_UNIT}) | argmax quality | AUC / oracle | "
        f"cost to {100 * TARGET_SHARE:.0f}% of best single |",
        "|---|---|---|---|---|",
    ]
    for c in result.curves:
        p = c.argmax
        lines.append(
            f"| {c.router} | {p.cost:.4f} | {p.quality:.2f} | {_fmt(c.auc, 3)} | {_fmt(c.cost_to_target, 4)} |"
        )
    return "\n".join(lines) + "\n"


def markdown_report(result: SweepResult) -> str:
    """Summary, how to read it, and every point of every router."""
    low, high = result.cost_range
    lines = [
        "# Cost–quality sweep",
        "",
        f"Benchmarks: {', '.join(result.benchmarks)}. Quality: mean over them of each headline metric "
        "(AlpacaEval raw win rate, Arena-Hard score, MT-Bench ×10, accuracy / pass@1). "
        f"Cost: mean over them of the realised cost per prompt, in {COST_UNIT}.",
        f"Prices: {result.price_source}",
        f"Tokens: {result.token_source}; prompt tokens × input price + response tokens × output price.",
        f"Best single model: {result.best_single} ({result.best_single_quality:.2f}); "
        f"{100 * TARGET_SHARE:.0f}% of it = {result.target_quality:.2f}. "
        f"AUC range: {low:.4f} to {high:.4f} (cheapest to dearest fixed model), step frontier, "
        "divided by the oracle's area on the same range.",
        "",
        summary_table(result),
        "## Points",
        "",
        "Rules: argmax = quality only (the paper's); penalty = argmax p − λ·expected cost (λ in probability per "
        f"{COST_UNIT}); threshold = cheapest candidate with p ≥ τ. ✓ = on the router's Pareto frontier.",
        "",
        f"| Router | rule | λ or τ | cost ({COST_UNIT}) | quality | frontier |",
        "|---|---|---|---|---|---|",
    ]
    for c in result.curves:
        on_frontier = {id(p) for p in c.frontier}
        for p in c.points:
            param = "" if p.param is None else f"{p.param:.4g}"
            mark = "✓" if id(p) in on_frontier else ""
            lines.append(f"| {c.router} | {p.rule} | {param} | {p.cost:.4f} | {p.quality:.2f} | {mark} |")
    lines.append(f"\nSweep time: {result.seconds:.2f} s (after token counting).")
    return "\n".join(lines) + "\n"


def write_cost_sweep(result: SweepResult, out_dir: str | Path) -> dict[str, Path]:
    """``cost_quality.png``, ``cost_quality.md`` and ``cost_quality.json`` in ``out_dir``."""
    from lightning_lookahead.data.io import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / PNG, "markdown": out / MARKDOWN, "json": out / JSON}
    plot_cost_quality(result, paths["png"])
    write_atomic(paths["markdown"], markdown_report(result))
    write_atomic(paths["json"], json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n")
    return paths


class _RememberedRouter(Router):
    """A router whose score matrices are computed once per example list, so the table and the sweep share them."""

    def __init__(self, router: Router):
        self.wrapped = router
        self.name = router.name
        self.score_kind = getattr(router, "score_kind", "logits")
        self._seen: list[tuple[Sequence[RoutingExample], tuple[str, ...], np.ndarray]] = []

    def score_matrix(self, examples, candidates) -> np.ndarray:
        for seen, pool, matrix in self._seen:
            if seen is examples and pool == tuple(candidates):
                return matrix
        matrix = self.wrapped.score_matrix(examples, candidates)
        self._seen.append((examples, tuple(candidates), matrix))
        return matrix


def remember_scores(routers: Sequence[Router]) -> list[Router]:
    """Wrap routers so that evaluating and then sweeping the same benchmarks scores each prompt once."""
    return [_RememberedRouter(r) for r in routers]


def checked_prices(path: str | Path | None, candidates: Sequence[str]) -> PriceTable:
    """Load a price table and make sure it prices every candidate, before any slow work starts."""
    table = load_prices(path)
    table.arrays(candidates)
    return table


def run_cost_sweep(
    routers: Sequence[Router],
    benchmarks: Mapping[str, Sequence[RoutingExample]],
    candidates: Sequence[str],
    out_dir: str | Path,
    *,
    prices: str | Path | PriceTable | None = None,
    counter: TokenCounter | None = None,
) -> tuple[SweepResult, dict[str, Path]]:
    """Price table → token counts → sweep → files: what `lookahead evaluate --cost-sweep` runs."""
    table = prices if isinstance(prices, PriceTable) else load_prices(prices)
    problem = build_problem(benchmarks, candidates, table, counter)
    result = sweep(routers, problem)
    return result, write_cost_sweep(result, out_dir)


class _NpzRouter(Router):
    """A trained router's test score matrices as saved in ``scores.npz`` (logits), checked against prompt ids."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self.path = path
        with np.load(path) as data:
            self.arrays = {k: data[k] for k in data.files}

    def score_matrix(self, examples, candidates) -> np.ndarray:
        bench = examples[0].benchmark
        ids = self.arrays.get(f"test/{bench}/prompt_ids")
        if ids is None or list(ids) != [e.prompt_id for e in examples]:
            raise LookaheadError(f"{self.path}: test scores for {bench} do not match the benchmark's prompt ids")
        return self.arrays[f"test/{bench}/scores"]


def log_cost_curve(
    loggers: Sequence[Any],
    run_dir: str | Path,
    test_examples: Mapping[str, Sequence[RoutingExample]],
    candidates: Sequence[str],
    name: str,
    *,
    prices: str | Path | None = None,
) -> SweepResult | None:
    """After training: sweep the trained router (from ``<run_dir>/scores.npz``) with the baselines, write
    ``<run_dir>/cost/`` and log the PNG to W&B. Only for W&B loggers; candidates the price table does not name (one's
    own models) skip it with one info line, any other failure is a warning, never a failed run."""
    from lightning.pytorch.loggers import WandbLogger
    from lightning.pytorch.utilities import rank_zero_info

    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers or not test_examples:
        return None
    try:
        table = load_prices(prices)
        unpriced = [c for c in candidates if c not in table.prices]
        if unpriced:  # the user's own models: expected, not a failure
            names = ", ".join(map(repr, unpriced))
            rank_zero_info(
                f"cost–quality curve not logged: {table.path} has no price for {names}; trace it with `lookahead "
                "evaluate --dataset FILE --checkpoint RUN_DIR --cost-sweep DIR --prices FILE` and your own prices"
            )
            return None
        router = _NpzRouter(name, Path(run_dir) / "scores.npz")
        result, paths = run_cost_sweep([router], test_examples, candidates, Path(run_dir) / "cost", prices=table)
        for logger in wandb_loggers:
            logger.log_image(key="test/cost_quality", images=[str(paths["png"])])
            curve = result.curve(name)
            summary = {"test/cost_auc": curve.auc, "test/cost_to_95pct_best_single": curve.cost_to_target}
            logger.log_metrics({k: v for k, v in summary.items() if v is not None})
        return result
    except Exception as exc:  # the curve is a by-product: never lose a finished run to it
        warnings.warn(f"cost–quality curve not logged ({type(exc).__name__}): {exc}", stacklevel=2)
        return None
