"""Every router of the paper on the same items, CPU-sized: one table per family with quality, routing and training time.

    python benchmarks/reproduce_cpu.py --families code,math --seeds 42 [--folds 0] [--data-dir data]
    make reproduce-cpu SEEDS="42 43 44"

Trained routers: each run is `lookahead train cpu/<router>_code` with ``data.family`` set (code: the paper protocol on
SelfOSS; math and all: ``data.protocol=kfold``, because their training labels are absent here). Fitted baselines
(kNN, hard / soft k-means clusters) are fitted on the same training prompts and scored on the same items. The table
gives each router's score beside oracle, the best single model (chosen on validation reward, not on test) and random,
with the router's difference from the best single model and a paired-bootstrap 95% interval over items, plus routing
wall time per 1,000 prompts and training (or fitting) wall time. Finished runs are skipped, so reruns only add.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.schema import BENCHMARKS
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.evaluation import evaluate_router
from lightning_lookahead.metrics.benchmarks import HEADLINE, decide
from lightning_lookahead.metrics.bootstrap import (
    bootstrap_differences,
    item_terms,
    paired_bootstrap,
    validation_terms,
)
from lightning_lookahead.routers.base import RandomRouter, StoredScoresRouter

#: Trained routers: key → (experiment cpu/<key>_code, table label).
TRAINED = {
    "mlm": "Lookahead-MLM",
    "clm": "Lookahead-CLM",
    "mlc": "MLC (query only)",
    "gt": "GT-response bound (reads the real responses; not deployable)",
}
#: Fitted baselines: key → (--router spec, table label).
FITTED = {
    "knn": ("knn:10", "kNN (k = 10)"),
    "hard_cluster": ("hard_cluster:8", "hard cluster (k = 8)"),
    "soft_cluster": ("soft_cluster:8", "soft cluster (k = 8)"),
}
ROUTERS = {**TRAINED, **{key: label for key, (_, label) in FITTED.items()}}


def run_dir(out: Path, family: str, router: str, seed: int, fold: int) -> Path:
    return out / family / f"{router}-seed{seed}-fold{fold}"


EXTRA: list[str] = []  # --set overrides, applied to training and to the analysis alike


def overrides(family: str, seed: int, fold: int, out: Path, data_dir: str) -> list[str]:
    args = [f"data.family={family}", f"seed={seed}", f"data.data_dir={data_dir}", "logger.wandb.enabled=false", *EXTRA]
    if family != "code":
        args += ["data.protocol=kfold", f"data.kfold.fold={fold}"]
    return args


def fit_baseline(family: str, router: str, seed: int, fold: int, out: Path, data_dir: str) -> None:
    """Fit a kNN / cluster baseline on the family's training prompts; save its scores like a training run does."""
    from lightning_lookahead.routers.fitted import fit_and_score
    from lightning_lookahead.training.report import save_scores

    target = run_dir(out, family, router, seed, fold)
    if (target / "results.json").exists():
        print(f"[skip] {target} already has results")
        return
    cfg = compose("cpu/mlm_code", overrides(family, seed, fold, out, data_dir))
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    spec = FITTED[router][0]
    print(f"[fit] {spec} on {family} ({len(splits.train)} training prompts)", flush=True)
    # A cache of its own: the fit time then includes embedding the training prompts, as a user would pay it.
    result = fit_and_score(spec, splits, list(cfg.data.candidates), target / "cache")
    target.mkdir(parents=True, exist_ok=True)
    save_scores(target / "scores.npz", result["test"], splits.test, result["val"], splits.val)
    n_routed = len(splits.val) + sum(len(v) for v in splits.test.values())
    timing = {
        "train_seconds": result["fit_seconds"],
        "route_seconds": result["route_seconds"],
        "routed_prompts": n_routed,
    }
    (target / "results.json").write_text(json.dumps([{"experiment": spec, "timing": timing}]))


def train(family: str, router: str, seed: int, fold: int, out: Path, data_dir: str) -> None:
    if router in FITTED:
        fit_baseline(family, router, seed, fold, out, data_dir)
        return
    target = run_dir(out, family, router, seed, fold)
    if (target / "results.json").exists():
        print(f"[skip] {target} already has results")
        return
    args = [
        sys.executable,
        "-m",
        "lightning_lookahead.cli",
        "train",
        f"cpu/{router}_code",
        *overrides(family, seed, fold, out, data_dir),
        f"run_dir={target}",
        *(["resume=last"] if (target / "checkpoints" / "last.ckpt").exists() else []),
    ]
    print(f"[train] {' '.join(args[3:])}", flush=True)
    start = time.perf_counter()
    log = target.parent / f"{target.name}.log"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        code = subprocess.call(
            args,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        )
    if code:
        raise SystemExit(f"training failed ({code}); see {log}")
    print(f"[done] {target} in {time.perf_counter() - start:.0f} s", flush=True)


def _timing(result_json: Path) -> dict:
    data = json.loads(result_json.read_text())
    return (data[0] if isinstance(data, list) else data)["timing"]


def analyse(family: str, seeds: list[int], fold: int, out: Path, data_dir: str, routers: list[str]) -> str:
    """One Markdown section: validation reward and each benchmark, routers beside baselines, Δ with 95% CI."""
    cfg = compose("cpu/mlm_code", overrides(family, seeds[0], fold, out, data_dir))
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    candidates = list(cfg.data.candidates)
    benches = list(splits.test)
    val_raw = np.asarray([e.scores for e in splits.val])
    best_j = int(
        np.argmax([validation_terms(splits.val, np.full(len(splits.val), j))[0].mean() for j in range(len(candidates))])
    )
    columns = ["validation reward", *[f"{b} {HEADLINE[b]}" + (" ×10" if b == "MT-Bench" else "") for b in benches]]
    with_avg = len(benches) > 1
    if with_avg:
        columns.append("7-benchmark avg" if benches == list(BENCHMARKS) else f"avg ({len(benches)} benchmarks)")
    cache: dict = {}

    def avg_mu_n(name: str, matrices: dict[str, np.ndarray]) -> float:
        """The paper's Avg µn through the one evaluation path (references on the same items)."""
        run = evaluate_router(StoredScoresRouter(name, matrices), splits.test, candidates, reference_cache=cache)
        return run["avg_mu_n"]

    def terms(bench: str | None, choices: np.ndarray):
        return (
            validation_terms(splits.val, choices) if bench is None else item_terms(bench, splits.test[bench], choices)
        )

    def fixed(bench: str | None, j: int) -> np.ndarray:
        return np.full(len(splits.val) if bench is None else len(splits.test[bench]), j)

    rows: list[str] = []
    for router in routers:
        label = ROUTERS[router]
        per_seed: list[list[tuple[float, float, float, float]]] = []
        timing, per_1k, mu_ns = [], [], []
        for seed in seeds:
            target = run_dir(out, family, router, seed, fold)
            scores = np.load(target / "scores.npz")
            mu_ns.append(avg_mu_n(router, {b: scores[f"test/{b}/scores"] for b in benches}))
            times = _timing(target / "results.json")
            timing.append(times["train_seconds"])
            per_1k.append(1000 * times["route_seconds"] / times["routed_prompts"])
            cells = []
            avg_diffs, avg_values, avg_points = [], [], []
            for bench in [None, *benches]:
                key = "val" if bench is None else f"test/{bench}"
                ids = [e.prompt_id for e in (splits.val if bench is None else splits.test[bench])]
                assert list(scores[f"{key}/prompt_ids"]) == ids, f"{target}: items differ from the split"
                mine = terms(bench, decide(scores[f"{key}/scores"]))
                base = terms(bench, fixed(bench, best_j))
                value = mine[2] * mine[0].sum() / mine[1].sum()
                cells.append((value, *paired_bootstrap(mine, base, seed=seed)))
                if bench is not None:
                    point, diffs = bootstrap_differences(mine, base, seed=seed)
                    avg_values.append(value)
                    avg_points.append(point)
                    avg_diffs.append(diffs)
            if with_avg:  # benchmarks resampled independently; the average's difference per resample
                low, high = np.percentile(np.mean(avg_diffs, axis=0), [2.5, 97.5])
                cells.append((float(np.mean(avg_values)), float(np.mean(avg_points)), float(low), float(high)))
            per_seed.append(cells)
        formatted = []
        for col in range(len(columns)):
            values = [s[col][0] for s in per_seed]
            deltas = [s[col][1] for s in per_seed]
            lo, hi = per_seed[0][col][2], per_seed[0][col][3]
            if len(seeds) == 1:
                formatted.append(
                    f"{values[0]:.3f} (Δ {deltas[0]:+.3f} [{lo:+.3f}, {hi:+.3f}])"
                    if col == 0
                    else f"{values[0]:.2f} (Δ {deltas[0]:+.2f} [{lo:+.2f}, {hi:+.2f}])"
                )
            else:
                formatted.append(
                    f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} "
                    f"(Δ {statistics.mean(deltas):+.2f} ± {statistics.stdev(deltas):.2f})"
                )
        spread = f" ± {statistics.stdev(mu_ns):.1f}" if len(mu_ns) > 1 else ""
        rows.append(
            f"| {label} | "
            + " | ".join(formatted)
            + f" | {statistics.mean(mu_ns):.1f}{spread}"
            + f" | {statistics.mean(per_1k):.1f} s | {statistics.mean(timing):.0f} s |"
        )

    def baseline_row(name: str, choose) -> str:
        cells, values = [], []
        for bench in [None, *benches]:
            t = terms(bench, choose(bench))
            value = t[2] * t[0].sum() / t[1].sum()
            cells.append(f"{value:.3f}" if bench is None else f"{value:.2f}")
            if bench is not None:
                values.append(value)
        if with_avg:
            cells.append(f"{np.mean(values):.2f}")
        one_hot = {b: np.eye(len(candidates))[choose(b)] for b in benches}
        return f"| {name} | " + " | ".join(cells) + f" | {avg_mu_n(name, one_hot):.1f} | – | – |"

    def oracle(bench):
        return decide(val_raw if bench is None else np.asarray([e.scores for e in splits.test[bench]]))

    def random0(bench):
        items = splits.val if bench is None else splits.test[bench]
        return decide(RandomRouter(0).score_matrix(items, candidates))

    rows.append(baseline_row("oracle", oracle))
    rows.append(baseline_row(f"best single on validation ({candidates[best_j]})", lambda b: fixed(b, best_j)))
    rows.append(baseline_row("random (seed 0)", random0))
    for j, model in enumerate(candidates):
        if j != best_j:
            rows.append(baseline_row(f"always {model}", lambda b, j=j: fixed(b, j)))
    protocol = "paper protocol (SelfOSS train/validation)" if family == "code" else f"kfold, held-out fold {fold}"
    sizes = f"train {len(splits.train)}, validation {len(splits.val)}, " + ", ".join(
        f"{b} {len(v)}" for b, v in splits.test.items()
    )
    head = [
        f"### family `{family}` — {protocol}; seeds {seeds}",
        "",
        f"Items: {sizes}.",
        "",
        "| router | " + " | ".join(columns) + " | Avg µn | routing time / 1,000 prompts | train (fit) time |",
        "|" + "---|" * (len(columns) + 4),
    ]
    return "\n".join(head + rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="code,math")
    parser.add_argument("--seeds", default=os.environ.get("SEEDS", "42"), help="space/comma separated")
    parser.add_argument("--folds", default="0", help="held-out k-fold folds for math/all ('all' = 0..4)")
    parser.add_argument("--routers", default=",".join(ROUTERS), help=f"comma separated, from {', '.join(ROUTERS)}")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", "data"))
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides, e.g. trainer.max_steps=2")
    args = parser.parse_args()
    EXTRA.extend(args.set)
    seeds = [int(s) for s in args.seeds.replace(",", " ").split()]
    folds = list(range(5)) if args.folds == "all" else [int(f) for f in args.folds.split(",")]
    families = args.families.split(",")
    routers = args.routers.split(",")
    unknown = [r for r in routers if r not in ROUTERS]
    if unknown:
        raise SystemExit(f"error: unknown router(s) {unknown}; valid: {', '.join(ROUTERS)}")
    if not args.analyse_only:
        for family in families:
            for fold in folds if family != "code" else [0]:
                for seed in seeds:
                    for router in routers:
                        train(family, router, seed, fold, args.out, args.data_dir)
    sections = [
        analyse(f, seeds, fold, args.out, args.data_dir, routers)
        for f in families
        for fold in (folds if f != "code" else [0])
    ]
    text = "\n".join(sections)
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
