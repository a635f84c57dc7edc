"""The tables of the CPU study, recomputed from the committed run files and the data alone.

    python benchmarks/study_tables.py [--runs docs/results/runs] [--results docs/results.md] [--data-dir data]

Reads every ``docs/results/runs/<run>/scores.npz`` (score matrices with their prompt ids) and ``config.yaml``, rebuilds
the joint setting's split (``cpu/mlm_all``: kfold fold 0; validation and test items do not depend on the training
subset), and writes the study section of docs/results.md between ``<!-- study:begin -->`` and ``<!-- study:end -->``:

- a table shaped like the paper's Table 1 (µo / µn per benchmark, Avg µn), trained routers as the mean over their
  seeds with the seed-to-seed spread and a 95% bootstrap interval of the seed mean (items resampled per benchmark;
  the oracle and the single models recomputed on each resample, so µn's normalisation moves with it);
- paired differences in Avg µn with bootstrap intervals (same resamples for both routers);
- the validation routing loss of each trained run beside its label prior;
- the data-efficiency curve and the warmed-backbone comparison;
- the paper's own rows beside ours, marked as a different scale.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown_section import replace_section

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.splits import RoutingSplits, make_splits
from lightning_lookahead.evaluation import evaluate_router
from lightning_lookahead.metrics.benchmarks import decide
from lightning_lookahead.metrics.bootstrap import item_terms, validation_terms
from lightning_lookahead.routers.base import StoredScoresRouter
from lightning_lookahead.training.losses import routing_loss, routing_loss_vs_prior

ROOT = Path(__file__).resolve().parents[1]
RESAMPLES = 2000
SHORT = {"AlpacaEval": "AlpacaEval (WR)", "ArenaHard": "Arena-Hard", "MT-Bench": "MT-Bench ×10"}

#: Run-name prefix → (table label, trained?). Order = row order.
KINDS: dict[str, tuple[str, bool]] = {
    "mlm": ("Lookahead-MLM (MiniLM-L6)", True),
    "mlm_norm": ("Lookahead-MLM w/o response modeling", True),
    "mlc": ("MLC (MiniLM-L6, query only)", True),
    "mlm_fullloss": ("Lookahead-MLM, full MLM loss (no slot subsampling)", True),
    "mlm_warm": ("Lookahead-MLM, warmed MLM head", True),
    "mlm_warm_norm": ("Lookahead-MLM w/o RM, warmed MLM head", True),
    "zooter": ("ZOOTER (MiniLM-L6, query only)", True),
    "routerdc": ("RouterDC (MiniLM-L6, query only)", True),
    "smoothie52": ("SMOOTHIE (n0 = 52, label-free, MiniLM embeddings)", False),
    "knn100": ("kNN (k = 100, MiniLM embeddings)", False),
    "hard_cluster100": ("k-means (k = 100)", False),
    "domain": ("domain (reference: knows each prompt's benchmark)", False),
}
NAME = re.compile(r"^(?P<kind>[a-z_0-9]+?)-n(?P<size>\d+|all)(?:-s(?P<seed>\d+))?$")

#: ../shared/PAPER.md Table 1 (GPU, full training data; AlpacaEval is LC there): (label, µn per benchmark, Avg µn).
PAPER_ROWS: list[tuple[str, tuple[float, ...], float]] = [
    ("Lookahead-MLM (ModernBERT-base)", (37.5, 26.5, 35.4, 29.6, 36.2, 67.7, 53.0), 40.8),
    ("RouterDC (ModernBERT-base)", (32.0, 27.9, 33.7, 18.8, 32.4, 67.7, 53.0), 37.9),
    ("MLC (ModernBERT-base)", (32.4, 23.6, 28.0, 16.7, 36.5, 50.0, 51.1), 34.0),
    ("k-means (k = 100)", (33.8, 14.6, 9.9, 27.4, 37.3, 32.4, 30.4), 26.6),
    ("kNN (k = 100, all-mpnet-base-v2)", (32.2, 16.7, 1.7, 27.4, 37.6, 14.7, 6.0), 19.5),
    ("best single (Qwen2.5-Coder-7B)", (-40.5, 6.1, -14.9, -11.3, 33.5, 67.7, 53.0), 13.4),
]


@dataclass
class StudyRun:
    name: str
    kind: str
    size: str
    seed: int | None
    scores: dict[str, np.ndarray]  # "val" and each benchmark → score matrix
    config: dict


def load_runs(folder: Path, splits: RoutingSplits) -> list[StudyRun]:
    runs = []
    for path in sorted(folder.iterdir()):
        match = NAME.match(path.name)
        if not match or not (path / "scores.npz").exists() or match["kind"] not in KINDS:
            continue
        npz = np.load(path / "scores.npz")
        scores = {"val": npz["val/scores"]}
        assert list(npz["val/prompt_ids"]) == [e.prompt_id for e in splits.val], f"{path}: validation items differ"
        for bench, items in splits.test.items():
            assert list(npz[f"test/{bench}/prompt_ids"]) == [e.prompt_id for e in items], f"{path}: {bench} differs"
            scores[bench] = npz[f"test/{bench}/scores"]
        config = yaml.safe_load((path / "config.yaml").read_text())
        seed = int(match["seed"]) if match["seed"] else None
        runs.append(StudyRun(path.name, match["kind"], match["size"], seed, scores, config))
    return runs


class Bootstrap:
    """µn on item resamples: per benchmark, the same resampled indices for every router, oracle and single model."""

    def __init__(self, splits: RoutingSplits, n_candidates: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.splits = splits
        self.idx = {b: rng.integers(0, len(items), size=(RESAMPLES, len(items))) for b, items in splits.test.items()}
        self.refs = {}
        for bench, items in splits.test.items():
            oracle = self._ratio(bench, item_terms(bench, items, decide([e.scores for e in items])))
            fixed = [self._ratio(bench, item_terms(bench, items, [j] * len(items))) for j in range(n_candidates)]
            self.refs[bench] = (np.mean(fixed, axis=0), oracle)

    def _ratio(self, bench: str, terms: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
        num, den, scale = terms
        idx = self.idx[bench]
        return scale * num[idx].sum(1) / np.maximum(den[idx].sum(1), 1e-12)

    def mu_n(self, bench: str, choices: np.ndarray) -> np.ndarray:
        """µn on every resample (NaN where a resample's oracle equals its random)."""
        value = self._ratio(bench, item_terms(bench, self.splits.test[bench], choices))
        random, oracle = self.refs[bench]
        span = oracle - random
        return np.where(np.abs(span) > 1e-12, 100 * (value - random) / np.where(span == 0, 1, span), np.nan)

    def avg_mu_n(self, choices: dict[str, np.ndarray]) -> np.ndarray:
        return np.nanmean([self.mu_n(b, choices[b]) for b in self.splits.test], axis=0)


def interval(values: np.ndarray) -> str:
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return f"[{low:.1f}, {high:.1f}]"


def evaluate(name: str, scores: dict[str, np.ndarray], splits: RoutingSplits, candidates: list[str], cache: dict):
    return evaluate_router(StoredScoresRouter(name, scores), splits.test, candidates, reference_cache=cache)


def cell(run: dict, bench: str, key: str = "mu_n") -> float:
    metric = run["results"][bench]
    if key == "mu_o":
        value = metric[metric["mu_n_metric"]]
        return 10 * value if bench == "MT-Bench" else value
    return metric["mu_n"]


def main_table(groups, baselines, splits, candidates, boot, cache) -> tuple[list[str], dict]:
    benches = list(splits.test)
    header = ["router", *[SHORT.get(b, b) for b in benches], "Avg µn", "seeds: Avg µn mean ± sd", "95% CI (items)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    per_resample = {}
    for label, runs in groups:
        evaluated = [evaluate(r.name, r.scores, splits, candidates, cache) for r in runs]
        cells = []
        for bench in benches:
            mu_o = statistics.mean(cell(e, bench, "mu_o") for e in evaluated)
            mu_n = statistics.mean(cell(e, bench) for e in evaluated)
            cells.append(f"{mu_o:.2f} / {mu_n:.1f}")
        avgs = [e["avg_mu_n"] for e in evaluated]
        resampled = np.mean([boot.avg_mu_n({b: decide(r.scores[b]) for b in benches}) for r in runs], axis=0)
        per_resample[label] = resampled
        spread = (
            f"{statistics.mean(avgs):.1f} ± {statistics.stdev(avgs):.1f} (n = {len(avgs)})"
            if len(avgs) > 1
            else ("1 seed" if KINDS[runs[0].kind][1] else "fitted (no seed)")
        )
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | **{statistics.mean(avgs):.1f}** | {spread} | {interval(resampled)} |"
        )
    for label, choices in baselines:
        scores = {b: np.eye(len(candidates))[choices[b]] for b in benches}
        run = evaluate(label, scores, splits, candidates, cache)
        cells = [f"{cell(run, b, 'mu_o'):.2f} / {cell(run, b):.1f}" for b in benches]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {run['avg_mu_n']:.1f} | – | – |")
    return lines, per_resample


def paired_table(per_resample: dict[str, np.ndarray], pairs: list[tuple[str, str]]) -> list[str]:
    lines = ["| comparison | Δ Avg µn | 95% CI (paired, items) |", "|---|---|---|"]
    for a, b in pairs:
        if a in per_resample and b in per_resample:
            diff = per_resample[a] - per_resample[b]
            point = float(np.nanmean(diff))
            lines.append(f"| {a} − {b} | {point:+.1f} | {interval(diff)} |")
    return lines


def loss_table(runs: list[StudyRun], splits_for, candidates) -> list[str]:
    lines = [
        "| run | training prompts | validation routing loss | label prior | below the prior? |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        if not KINDS[run.kind][1]:
            continue
        loss_cfg = run.config["loss"]
        loss = routing_loss(
            loss_cfg["name"],
            threshold=loss_cfg["threshold"],
            temperature=loss_cfg["temperature"],
            score_norm=loss_cfg["score_norm"],
        )
        splits = splits_for(run.config["data"]["max_train_prompts"])
        report = routing_loss_vs_prior(
            loss,
            torch.as_tensor(run.scores["val"]),
            [list(e.scores) for e in splits.val],
            [list(e.scores) for e in splits.train],
        )
        below = "yes" if report["routing_loss"] < report["label_prior_loss"] else "**no**"
        lines.append(
            f"| {run.name} | {len(splits.train)} | {report['routing_loss']:.4f} | {report['label_prior_loss']:.4f} "
            f"| {below} |"
        )
    return lines


def study_markdown(folder: Path, data_dir: str) -> str:
    cache_splits: dict = {}

    def splits_for(cap: int | None) -> RoutingSplits:
        if cap not in cache_splits:
            cfg = compose("cpu/mlm_all", [f"data.data_dir={data_dir}", f"data.max_train_prompts={cap or 'null'}"])
            cache_splits[cap] = make_splits(cfg.data, Path(cfg.data.data_dir))
        return cache_splits[cap]

    splits = splits_for(3072)
    candidates = list(compose("cpu/mlm_all", []).data.candidates)
    runs = load_runs(folder, splits)
    if not runs:
        return "No study runs yet: `make study-fold0`.\n"
    boot = Bootstrap(splits, len(candidates))
    cache: dict = {}
    benches = list(splits.test)

    by_kind: dict[tuple[str, str], list[StudyRun]] = defaultdict(list)
    for run in runs:
        by_kind[(run.kind, run.size)].append(run)
    groups = [(KINDS[k][0], by_kind[(k, "3072")]) for k in KINDS if by_kind.get((k, "3072"))]

    best_j = int(
        np.argmax([validation_terms(splits.val, [j] * len(splits.val))[0].mean() for j in range(len(candidates))])
    )
    oracle = {b: decide([e.scores for e in splits.test[b]]) for b in benches}
    baselines = [("oracle", oracle)]
    baselines.append(
        (
            f"best single on validation ({candidates[best_j]})",
            {b: np.full(len(splits.test[b]), best_j) for b in benches},
        )
    )
    baselines += [
        (f"always {m}", {b: np.full(len(splits.test[b]), j) for b in benches})
        for j, m in enumerate(candidates)
        if j != best_j
    ]
    main, per_resample = main_table(groups, baselines, splits, candidates, boot, cache)

    mlm, norm, mlc = (KINDS[k][0] for k in ("mlm", "mlm_norm", "mlc"))
    pairs = [
        (mlm, norm),
        (mlm, mlc),
        (mlm, KINDS["hard_cluster100"][0]),
        (mlm, KINDS["knn100"][0]),
        (mlm, KINDS["domain"][0]),
    ]
    pairs += [(mlc, KINDS["hard_cluster100"][0]), (KINDS["mlm_warm"][0], KINDS["mlm_warm_norm"][0])]
    pairs += [(KINDS["mlm_warm"][0], mlm), (mlm, KINDS["mlm_fullloss"][0])]

    sizes = (
        f"train {len(splits.train)} (of the fold's {len(splits_for(None).train)}), validation {len(splits.val)}, test "
        + ", ".join(f"{b} {len(v)}" for b, v in splits.test.items())
    )
    out = [
        "Generated by `python benchmarks/study_tables.py` from `docs/results/runs/` (runs: `make study-fold0`).",
        "",
        f"Joint setting, kfold held-out fold 0. Items: {sizes}. Random row omitted: its µn is 0 by definition "
        "(the mean of the single models).",
        "",
        "#### Table 1, CPU scale: µo / µn per benchmark (3,072 training prompts)",
        "",
        *main,
        "",
        "#### Paired differences (seed means, the same item resamples for both sides)",
        "",
        *paired_table(per_resample, pairs),
        "",
        "#### Validation routing loss vs the label prior",
        "",
        "The label prior is the best constant logit per candidate fitted on the run's training labels (for BCE: the "
        "log-odds of each candidate's positive rate); a run learned from the prompts only where it is lower.",
        "",
        *loss_table(runs, splits_for, candidates),
        "",
        "#### Data efficiency (seed 42): Avg µn by training-set size",
        "",
        *efficiency_table(by_kind, splits, splits_for, candidates, cache),
        "",
        "#### The paper's rows (GPU, 59k training prompts, ModernBERT/SmolLM2; AlpacaEval by LC) — a different scale",
        "",
        "| router (paper) | "
        + " | ".join({**SHORT, "AlpacaEval": "AlpacaEval (LC)"}.get(b, b) for b in benches)
        + " | Avg µn |",
        "|" + "---|" * (len(benches) + 2),
        *[
            f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {avg:.1f} |"
            for label, values, avg in PAPER_ROWS
        ],
    ]
    return "\n".join(out) + "\n"


def efficiency_table(by_kind, splits, splits_for, candidates, cache) -> list[str]:
    sizes = sorted({size for (_, size) in by_kind}, key=lambda s: float("inf") if s == "all" else int(s))
    lines = ["| training prompts | " + " | ".join(KINDS[k][0] for k in ("mlm", "mlm_norm")) + " |", "|---|---|---|"]
    for size in sizes:
        n = len(splits_for(None if size == "all" else int(size)).train)
        row = []
        for kind in ("mlm", "mlm_norm"):
            run = next((r for r in by_kind.get((kind, size), []) if r.seed == 42), None)
            row.append(
                "–" if run is None else f"{evaluate(run.name, run.scores, splits, candidates, cache)['avg_mu_n']:.1f}"
            )
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "docs" / "results" / "runs")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", str(ROOT / "data")))
    args = parser.parse_args()
    section = study_markdown(args.runs, args.data_dir)
    print(section)
    if replace_section(args.results, "study", section):
        print(f"wrote the study section of {args.results}")


if __name__ == "__main__":
    main()
