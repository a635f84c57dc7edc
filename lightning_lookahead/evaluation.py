"""One evaluation path for every router: score matrix → decisions → per-benchmark metrics → table/JSON."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_lookahead.data.schema import BENCHMARKS, RoutingExample
from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.metrics.benchmarks import decide, score_benchmark
from lightning_lookahead.metrics.mu_n import References, average_mu_n, mu_n, references
from lightning_lookahead.routers.base import FittedRouter, Router

#: (column title, benchmark, metric, multiplier) for the side-by-side table.
TABLE_COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    ("AlpacaEval WR", "AlpacaEval", "win_rate", 1.0),
    ("AlpacaEval LC", "AlpacaEval", "lc_win_rate", 1.0),
    ("Arena-Hard", "ArenaHard", "score", 1.0),
    ("MT-Bench ×10", "MT-Bench", "score", 10.0),
    ("GSM8k", "GSM8k", "accuracy", 1.0),
    ("MATH", "MATH", "accuracy", 1.0),
    ("HumanEval", "HumanEval", "accuracy", 1.0),
    ("MBPP", "MBPP", "accuracy", 1.0),
)
#: Columns averaged into "Avg": one per benchmark (AlpacaEval by its raw win rate, which is always available).
AVERAGE_COLUMNS = ("AlpacaEval WR", "Arena-Hard", "MT-Bench ×10", "GSM8k", "MATH", "HumanEval", "MBPP")


def parse_benchmarks(spec: str) -> list[str]:
    """``all`` or a comma-separated list of benchmark names (unknown names suggest the closest)."""
    if spec.strip().lower() == "all":
        return list(BENCHMARKS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in BENCHMARKS:
            raise unknown_name("benchmark", name, BENCHMARKS)
    if not names:
        raise LookaheadError("--benchmarks is empty; use 'all' or names like 'GSM8k,MATH'")
    return names


def evaluate_router(
    router: Router,
    benchmarks: Mapping[str, Sequence[RoutingExample]],
    candidates: Sequence[str],
    *,
    reference_cache: dict[str, References] | None = None,
    **metric_options: Any,
) -> dict[str, Any]:
    """Score one router on every benchmark: ``{"router", "candidates", "avg_mu_n", "results": {benchmark: metrics}}``.

    Each benchmark's metrics carry ``mu_n`` (and ``mu_n_metric``, the key it was computed from), normalised by the
    oracle and the single models on the same items. Pass one ``reference_cache`` dict to every call that evaluates
    routers on the same items, so those references are computed once.
    """
    matrices = {name: router.score_matrix(examples, candidates) for name, examples in benchmarks.items()}
    return evaluate_scores(
        router.name, matrices, benchmarks, candidates, reference_cache=reference_cache, **metric_options
    )


def evaluate_routers(
    routers: Sequence[Router],
    benchmarks: Mapping[str, Sequence[RoutingExample]],
    candidates: Sequence[str],
    **metric_options: Any,
) -> list[dict[str, Any]]:
    """:func:`evaluate_router` of each router on the same items (the oracle and single-model references computed
    once); a fitted reference's run carries ``fit``, what it was fitted on."""
    cache: dict[str, References] = {}
    runs = []
    for router in routers:
        run = evaluate_router(router, benchmarks, candidates, reference_cache=cache, **metric_options)
        if isinstance(router, FittedRouter):
            run["fit"] = router.fit_info()
        runs.append(run)
    return runs


def fit_on_rows(
    fitted: Sequence[FittedRouter],
    rows: Sequence[RoutingExample],
    source: Mapping[str, Any],
    embedder: str | None,
    cache_dir: Path,
) -> None:
    """Fit the references on training rows of a user's dataset (``evaluate --dataset``), one shared embedder.

    Each prints what it was fitted on (stderr), as the paper-data path does.
    """
    from lightning_lookahead.routers.embedding_baselines import EmbeddingRouter, default_embedder

    shared = default_embedder(embedder, cache_dir / "embeddings")
    for router in fitted:
        if isinstance(router, EmbeddingRouter):
            router.embedder = router.embedder or shared
        router.fit_source = dict(source)
        router.fit(rows)
        print(router.fit_summary(), file=sys.stderr)


def evaluate_scores(
    name: str,
    matrices: Mapping[str, np.ndarray],
    benchmarks: Mapping[str, Sequence[RoutingExample]],
    candidates: Sequence[str],
    *,
    reference_cache: dict[str, References] | None = None,
    **metric_options: Any,
) -> dict[str, Any]:
    """:func:`evaluate_router` for score matrices already computed (one per benchmark, rows in item order)."""
    cache = {} if reference_cache is None else reference_cache
    results = {}
    for bench, examples in benchmarks.items():
        matrix = np.asarray(matrices[bench])
        if matrix.shape != (len(examples), len(candidates)):
            raise LookaheadError(
                f"router {name} returned scores of shape {matrix.shape} for {bench}, "
                f"expected {(len(examples), len(candidates))}"
            )
        metrics = score_benchmark(bench, examples, decide(matrix), candidates, **metric_options)
        refs = cache.get(bench)
        if refs is None or refs.n != len(examples):
            refs = cache[bench] = references(bench, examples, candidates, **metric_options)
        metrics["mu_n"], metrics["mu_n_metric"] = mu_n(bench, metrics, refs)
        results[bench] = metrics
    return {
        "router": name,
        "candidates": list(candidates),
        "avg_mu_n": average_mu_n(results),
        "results": results,
    }


def validation_mu_n(
    examples: Sequence[RoutingExample],
    scores: np.ndarray,
    candidates: Sequence[str],
    *,
    reference_cache: dict[str, References] | None = None,
) -> dict[str, Any]:
    """µn per benchmark (per domain of a user's dataset) of a mixed validation split, and their macro average.

    The same µn as on test (oracle and random from these items' own scores), so checkpoint selection and tuning
    optimise the quantity the results table reports; ``val/reward`` is a micro-average dominated by the largest
    benchmark. LC win rates are not attempted (they need alpaca_eval's hub data): AlpacaEval uses the raw win rate.
    """
    matrix = np.asarray(scores)
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex.benchmark, []).append(i)
    matrices = {bench: matrix[rows] for bench, rows in groups.items()}
    benchmarks = {bench: [examples[i] for i in rows] for bench, rows in groups.items()}
    run = evaluate_scores(
        "validation", matrices, benchmarks, candidates, reference_cache=reference_cache, compute_lc=False
    )
    return {
        "avg_mu_n": run["avg_mu_n"],
        "mu_n": {bench: metrics["mu_n"] for bench, metrics in run["results"].items()},
    }


def _cell(run: Mapping[str, Any], benchmark: str, metric: str, scale: float) -> float | None:
    value = run["results"].get(benchmark, {}).get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) * scale


def _mu_n_cell(run: Mapping[str, Any], benchmark: str, metric: str) -> float | None:
    result = run["results"].get(benchmark, {})
    return result.get("mu_n") if result.get("mu_n_metric", metric) == metric else None


def markdown_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """Side-by-side Markdown table of several routers: µo / µn per benchmark, Avg µo and Avg µn (the paper's)."""
    present = [col for col in TABLE_COLUMNS if any(col[1] in run["results"] for run in runs)]
    domains = dict.fromkeys(b for run in runs for b in run["results"] if b not in BENCHMARKS)
    present += [(name, name, "score", 1.0) for name in domains]  # a user dataset's domains: mean raw score
    with_avg = all(any(col[0] == name for col in present) for name in AVERAGE_COLUMNS)
    header = ["Router"] + [col[0] for col in present] + (["Avg"] if with_avg else []) + ["Avg µn"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        cells = {col[0]: _cell(run, col[1], col[2], col[3]) for col in present}
        row = [run["router"]]
        for title, bench, metric, _ in present:
            value, normalised = cells[title], _mu_n_cell(run, bench, metric)
            text = "n/a" if value is None else f"{value:.2f}"
            row.append(text if normalised is None else f"{text} / {normalised:.1f}")
        if with_avg:
            values = [cells[name] for name in AVERAGE_COLUMNS]
            row.append("n/a" if any(v is None for v in values) else f"{sum(values) / len(values):.2f}")
        avg_mu_n = run.get("avg_mu_n")
        row.append("n/a" if avg_mu_n is None else f"{avg_mu_n:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    notes = ["", *table_legend([col[0] for col in present], list(domains), with_avg=with_avg)]
    return "\n".join(lines + notes) + "\n"


#: What µo is in each paper-benchmark column of :func:`markdown_table` (the legend names only the columns present).
COLUMN_LEGENDS: dict[str, str] = {
    "AlpacaEval WR": "AlpacaEval WR: raw weighted win rate vs gpt4_1106_preview",
    "AlpacaEval LC": "LC: length-controlled win rate (n/a when alpaca_eval's GLM data cannot be loaded offline)",
    "Arena-Hard": "Arena-Hard: Bradley–Terry score vs gpt-4-0314",
    "MT-Bench ×10": "MT-Bench: mean of both turns on the 1–10 scale, ×10",
}
#: Headline metric of the accuracy benchmarks (a code benchmark's accuracy is pass@1 of the chosen answer).
ACCURACY_LEGENDS: dict[str, str] = {"GSM8k": "accuracy", "MATH": "accuracy", "HumanEval": "pass@1", "MBPP": "pass@1"}


def table_legend(columns: Sequence[str], domains: Sequence[str], *, with_avg: bool) -> list[str]:
    """The lines under :func:`markdown_table`: what µo means in each column present (paper benchmarks by their
    metric, a user dataset's domains by the file's scale), µn, and the averages; nothing about absent benchmarks."""
    parts = [COLUMN_LEGENDS[c] for c in columns if c in COLUMN_LEGENDS]
    for metric in dict.fromkeys(ACCURACY_LEGENDS.values()):
        names = [c for c in columns if ACCURACY_LEGENDS.get(c) == metric]
        if names:
            parts.append(f"{', '.join(names)}: {metric} (%)")
    if domains:
        label = "domain" if len(domains) == 1 else "domains"
        parts.append(f"{label} {', '.join(domains)}: mean raw score of the chosen candidate on the file's scale")
    paper = len(parts) > (1 if domains else 0)
    alpaca = "AlpacaEval WR" in columns
    mu_n = (
        "µn = 100 · (µo − random) / (oracle − random) on the same items, random = the mean of the single "
        + ("models" if paper else "candidates")
        + " (the paper's normalised score"
        + ("; AlpacaEval's from LC when available, else from WR)." if alpaca else ").")
    )
    lines = [f"Cells: µo / µn. µo: {'; '.join(parts)}. {mu_n}"]
    if with_avg:
        lines.append("Avg: unweighted mean of the 7 benchmark µo columns (AlpacaEval by raw WR, MT-Bench ×10).")
    if domains:
        over = "benchmarks and domains present" if paper else "domains (each weighs the same)"
    else:
        over = "benchmarks present (the paper's Avg)"
    lines.append(f"Avg µn: mean µn over the {over}.")
    return lines


def picks_table(runs: Sequence[Mapping[str, Any]], candidates: Sequence[str]) -> str:
    """Routing accuracy and pick shares per benchmark, one row per router and benchmark."""
    header = ["Router", "Benchmark", "n", "routing acc."] + list(candidates)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        for bench, metrics in run["results"].items():
            shares = [f"{100 * metrics['picks'].get(m, 0.0):.1f}%" for m in candidates]
            lines.append(
                "| "
                + " | ".join([run["router"], bench, str(metrics["n"]), f"{metrics['routing_accuracy']:.2f}"] + shares)
                + " |"
            )
    return "\n".join(lines) + "\n"


def runs_to_json(runs: Sequence[Mapping[str, Any]]) -> str:
    """One router: the documented object; several: a list of them."""
    payload: Any = _finite(runs[0] if len(runs) == 1 else list(runs))
    return json.dumps(payload, indent=2, sort_keys=False, allow_nan=False, default=_jsonable) + "\n"


def _finite(value: Any) -> Any:
    """Replace NaN/inf (e.g. the standard error of a single item) by null, which JSON can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
