"""The tables of the 5-fold study, from the committed run files and the data alone.

    python benchmarks/kfold_tables.py [--runs docs/results/kfold] [--out docs/results/kfold.md] [--data-dir data]

Reads every ``docs/results/kfold/<arm>/fold<k>/scores.npz`` (test score matrices with their prompt ids), rebuilds the
5 folds' splits exactly as ``benchmarks/study_kfold.py`` composes them, checks that the folds' test items together are
each benchmark's full item set with no item twice, and that each run's prompt ids are its fold's test items. Then:

- each arm's test decisions (argmax of its scores) pooled over its folds, scored per benchmark (µo / µn) and Avg µn
  by the project's own metric code (``evaluation.evaluate_scores``), beside the oracle, random and every single model
  on the same pooled items; an arm with fewer than 5 folds is scored on its folds' items only, and marked;
- item-bootstrap 95% intervals of Avg µn (10,000 resamples, items resampled per benchmark, the same resampled items
  for every router, the oracle and the single models, so µn's normalisation moves with the resample);
- paired differences of Avg µn on the same resamples;
- the per-fold spread: each arm's Avg µn on every fold separately, and the mean ± sd over folds.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import study_kfold
from markdown_section import replace_section

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.data.splits import RoutingSplits
from lightning_lookahead.evaluation import evaluate_scores
from lightning_lookahead.metrics.benchmarks import decide
from lightning_lookahead.metrics.bootstrap import item_terms

ROOT = Path(__file__).resolve().parents[1]
FOLDS = study_kfold.FOLDS
RESAMPLES = 10_000
SHORT = {"AlpacaEval": "AlpacaEval (WR)", "ArenaHard": "Arena-Hard", "MT-Bench": "MT-Bench ×10"}

#: Arm directory → table label. Order = row order; arms not named here follow, under their directory name.
LABELS: dict[str, str] = {
    "mlm": "Lookahead-MLM (MiniLM-L6, tuned)",
    "mlm_norm": "Lookahead-MLM w/o response modeling (tuned)",
    "mlc": "MLC (MiniLM-L6, query only, tuned)",
    "routerdc": "RouterDC (MiniLM-L6, tuned)",
    "zooter": "ZOOTER (MiniLM-L6, tuned)",
    "clm": "Lookahead-CLM (SmolLM2-135M, 6 layers)",
    "smoothie": "SMOOTHIE (label-free, MiniLM embeddings)",
    "knn100": "kNN (k = 100, MiniLM embeddings)",
    "kmeans100": "k-means (k = 100)",
    "domain": "domain (reference: knows each prompt's benchmark)",
}
#: Paired comparisons (a − b) by arm directory: the study's questions, then the references among themselves.
PAIRS: list[tuple[str, str, str]] = [
    ("mlm", "mlm_norm", "MLM − w/o RM"),
    ("mlm", "mlc", "MLM − MLC"),
    ("mlm", "knn100", "MLM − kNN"),
    ("mlm", "domain", "MLM − domain"),
    ("mlc", "knn100", "MLC − kNN"),
    ("knn100", "kmeans100", "kNN − k-means"),
    ("domain", "knn100", "domain − kNN"),
    ("smoothie", "knn100", "SMOOTHIE − kNN"),
]


# --------------------------------------------------------------------------- the folds


def fold_splits(data_dir: str, folds: Sequence[int] = FOLDS) -> dict[int, RoutingSplits]:
    """The folds' splits as the runner composes them (cpu/mlm_all, fold k, the whole training part)."""
    return {k: study_kfold.fold_splits(k, data_dir) for k in folds}


_FULL: dict[tuple[str, str], list[RoutingExample]] = {}


def full_benchmarks(data_dir: str, benchmarks: Sequence[str]) -> dict[str, list[RoutingExample]]:
    """Every item of each benchmark, as the data holds it (the candidates of the runner's composition; cached)."""
    from lightning_lookahead.config.compose import compose
    from lightning_lookahead.data.benchmarks import load_benchmark

    candidates = list(compose(study_kfold.BASE_EXPERIMENT, []).data.candidates)
    for b in benchmarks:
        if (data_dir, b) not in _FULL:
            _FULL[(data_dir, b)] = load_benchmark(b, Path(data_dir), candidates)
    return {b: _FULL[(data_dir, b)] for b in benchmarks}


def check_coverage(splits: Mapping[int, RoutingSplits], full: Mapping[str, Sequence[RoutingExample]]) -> None:
    """The folds' test items are, per benchmark, the full item set with every item exactly once (else raise)."""
    for bench, items in full.items():
        expected = Counter(e.prompt_id for e in items)
        if len(expected) != len(items):
            raise AssertionError(f"{bench}: the data holds duplicate prompt ids")
        pooled = Counter(e.prompt_id for s in splits.values() for e in s.test.get(bench, []))
        twice = sorted(p for p, c in pooled.items() if c > 1)
        if twice:
            raise AssertionError(f"{bench}: {len(twice)} item(s) tested in more than one fold, e.g. {twice[:3]}")
        if pooled != expected:
            absent, extra = expected - pooled, pooled - expected
            raise AssertionError(f"{bench}: {len(absent)} item(s) never tested, {len(extra)} not in the benchmark")
    for k, s in splits.items():
        if set(s.test) != set(full):
            raise AssertionError(f"fold {k} tests {sorted(s.test)}, expected {sorted(full)}")


def pooled_items(splits: Mapping[int, RoutingSplits], folds: Sequence[int]) -> dict[str, list[RoutingExample]]:
    """Each benchmark's test items of ``folds``, concatenated in fold order."""
    benches = list(splits[folds[0]].test)
    return {b: [e for k in folds for e in splits[k].test[b]] for b in benches}


# --------------------------------------------------------------------------- the committed runs


@dataclass
class ArmRuns:
    """One arm's committed folds: test score matrices per fold and benchmark, plus its JSON files."""

    name: str
    label: str
    scores: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    results: dict[int, dict] = field(default_factory=dict)
    run: dict[int, dict] = field(default_factory=dict)

    @property
    def folds(self) -> tuple[int, ...]:
        return tuple(sorted(self.scores))

    @property
    def complete(self) -> bool:
        return self.folds == tuple(FOLDS)

    def pooled(self, folds: Sequence[int]) -> dict[str, np.ndarray]:
        benches = list(self.scores[folds[0]])
        return {b: np.concatenate([self.scores[k][b] for k in folds]) for b in benches}


def arm_label(name: str, results: Mapping[int, dict]) -> str:
    """The table label; ``<arm>-f25`` is the arm on 25% of the training prompts; SMOOTHIE names its n0."""
    base, _, share = name.partition("-f")
    label = LABELS.get(base, base)
    if base == "smoothie":
        n0 = sorted({str(r.get("experiment", "")).partition(":")[2] for r in results.values()} - {""})
        label = label.replace("(", f"(n0 = {'/'.join(n0)}, ", 1) if n0 else label
    return f"{label}, {share}% of the training prompts" if share.isdigit() else label


def load_arms(folder: Path, splits: Mapping[int, RoutingSplits]) -> list[ArmRuns]:
    """Every ``<arm>/fold<k>`` with its files, checked against fold k's test items; known arms first, in order."""
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.endswith(".tmp")]
    order = {name: i for i, name in enumerate(LABELS)}
    names.sort(key=lambda n: (order.get(n.partition("-f")[0], len(order)), n))
    arms = []
    for name in names:
        arm = ArmRuns(name, name)
        for k in splits:
            path = folder / name / f"fold{k}"
            if not (path / "results.json").exists() or not (path / "scores.npz").exists():
                continue
            if (path / "config.yaml").exists():
                config = yaml.safe_load((path / "config.yaml").read_text())
                fold = config["data"]["kfold"]["fold"]
                if fold != k or config["data"]["family"] != "all" or config["data"]["protocol"] != "kfold":
                    raise AssertionError(f"{path}: config.yaml is fold {fold} of {config['data']['family']}")
            with np.load(path / "scores.npz") as npz:
                arm.scores[k] = {}
                for bench, items in splits[k].test.items():
                    ids = [str(i) for i in npz[f"test/{bench}/prompt_ids"]]
                    if ids != [e.prompt_id for e in items]:
                        raise AssertionError(f"{path}: {bench} prompt ids are not fold {k}'s test items")
                    arm.scores[k][bench] = np.asarray(npz[f"test/{bench}/scores"], dtype=np.float64)
            arm.results[k] = _json(path / "results.json")
            arm.run[k] = _json(path / "run.json") if (path / "run.json").exists() else {}
        if arm.scores:
            arm.label = arm_label(name, arm.results)
            arms.append(arm)
    return arms


def _json(path: Path) -> dict:
    import json

    data = json.loads(path.read_text())
    return data[0] if isinstance(data, list) else data


# --------------------------------------------------------------------------- the bootstrap


class PooledBootstrap:
    """Avg µn on item resamples, vectorised: one resample = a count per item, sums = counts @ per-item terms.

    Every metric is ``scale · Σ num_i / Σ den_i`` (:func:`item_terms`). Per benchmark, the resample counts come from
    one seeded stream (``[seed, benchmark position]``), so every router, the oracle and the single models see the
    same resampled items — also across calls. Identical term columns are summed once, so a router that equals the
    oracle or a single model gets exactly its µn on every resample, and a router's difference with itself is 0.
    """

    def __init__(
        self,
        items: Mapping[str, Sequence[RoutingExample]],
        n_candidates: int,
        *,
        resamples: int = RESAMPLES,
        seed: int = 0,
        block: int = 2_500_000,
    ) -> None:
        self.items, self.n_candidates = items, n_candidates
        self.resamples, self.seed, self.block = resamples, seed, block
        self._refs: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {}
        self._counts: dict[int, np.ndarray] = {}

    def _references(self, bench: str) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Terms of the oracle, then of each single model (computed once per benchmark)."""
        if bench not in self._refs:
            items = self.items[bench]
            oracle = decide([e.scores for e in items])
            fixed = [np.full(len(items), j) for j in range(self.n_candidates)]
            self._refs[bench] = [item_terms(bench, items, c) for c in [oracle, *fixed]]
        return self._refs[bench]

    def counts(self, position: int) -> np.ndarray:
        """(resamples, n) how often each item of the benchmark at ``position`` is drawn in each resample.

        Drawn once (seeded by ``[seed, position]``) and kept, as uint8 (uint16 if some count ever exceeds 255):
        10,000 resamples of all 8,124 pooled items take 81 MB.
        """
        if position not in self._counts:
            n = len(list(self.items.values())[position])
            rng = np.random.default_rng([self.seed, position])
            out = np.empty((self.resamples, n), dtype=np.uint8)
            step = max(1, self.block // max(n, 1))
            for start in range(0, self.resamples, step):
                m = min(step, self.resamples - start)
                idx = rng.integers(0, n, size=(m, n))
                drawn = np.bincount((idx + (np.arange(m) * n)[:, None]).ravel(), minlength=m * n).reshape(m, n)
                if out.dtype == np.uint8 and drawn.max() > 255:
                    out = out.astype(np.uint16)
                out[start : start + m] = drawn
            self._counts[position] = out
        return self._counts[position]

    def _sums(self, position: int, columns: np.ndarray, full: bool) -> np.ndarray:
        """(resamples, columns) sums of each column over each resample's items (full: the items once, (1, columns))."""
        if full:
            return columns.sum(0, keepdims=True)
        counts = self.counts(position)
        out = np.empty((self.resamples, columns.shape[1]))
        step = max(1, self.block // max(columns.shape[0], 1))
        for start in range(0, self.resamples, step):
            out[start : start + step] = counts[start : start + step].astype(np.float64) @ columns
        return out

    def mu_n(self, routers: Mapping[str, Mapping[str, np.ndarray]], *, full: bool = False) -> dict[str, np.ndarray]:
        """Per router, µn on every resample and benchmark, (resamples, benchmarks); NaN where oracle = random."""
        names = list(routers)
        out = {name: np.empty((1 if full else self.resamples, len(self.items))) for name in names}
        for position, (bench, items) in enumerate(self.items.items()):
            terms = self._references(bench) + [item_terms(bench, items, routers[r][bench]) for r in names]
            scale = terms[0][2]
            columns = np.stack([t[0] for t in terms] + [t[1] for t in terms], axis=1).astype(np.float64)
            unique, inverse = np.unique(columns, axis=1, return_inverse=True)
            sums = self._sums(position, unique, full)[:, np.asarray(inverse).reshape(-1)]
            width = len(terms)
            ratio = scale * sums[:, :width] / np.maximum(sums[:, width:], 1e-12)
            oracle, random = ratio[:, 0], ratio[:, 1 : 1 + self.n_candidates].mean(axis=1)
            span = oracle - random
            ok = np.abs(span) > 1e-12
            safe = np.where(ok, span, 1.0)
            for i, name in enumerate(names):
                value = ratio[:, 1 + self.n_candidates + i]
                out[name][:, position] = np.where(ok, 100.0 * ((value - random) / safe), np.nan)
        return out

    def avg_mu_n(self, routers: Mapping[str, Mapping[str, np.ndarray]], *, full: bool = False) -> dict[str, np.ndarray]:
        """Per router, Avg µn (the mean over benchmarks that have a µn) on every resample."""
        with np.errstate(all="ignore"):
            return {name: np.nanmean(v, axis=1) for name, v in self.mu_n(routers, full=full).items()}


def interval(values: np.ndarray) -> tuple[float, float]:
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


# --------------------------------------------------------------------------- the tables


def mu_o(result: Mapping[str, Any], bench: str) -> float:
    metric = result["results"][bench]
    value = metric[metric["mu_n_metric"]]
    return 10 * value if bench == "MT-Bench" else value


@dataclass
class Scored:
    """A router's evaluation on a fold set's pooled items, its bootstrap Avg µn and its per-fold Avg µn."""

    label: str
    folds: tuple[int, ...]
    result: dict
    resampled: np.ndarray | None
    per_fold: dict[int, float]
    marker: str = ""


class Study:
    """The pooled evaluation: fold sets → pooled items, reference caches and bootstraps, built on first use."""

    def __init__(self, splits: Mapping[int, RoutingSplits], candidates: Sequence[str], resamples: int = RESAMPLES):
        self.splits, self.candidates, self.resamples = splits, list(candidates), resamples
        self._items: dict[tuple[int, ...], dict[str, list[RoutingExample]]] = {}
        self._caches: dict[tuple[int, ...], dict] = {}
        self._boots: dict[tuple[int, ...], PooledBootstrap] = {}
        self._resampled: dict[tuple[tuple[int, ...], str], np.ndarray] = {}
        self.boot_seconds = 0.0

    def items(self, folds: tuple[int, ...]) -> dict[str, list[RoutingExample]]:
        if folds not in self._items:
            self._items[folds] = pooled_items(self.splits, folds)
        return self._items[folds]

    def evaluate(self, label: str, scores: Mapping[str, np.ndarray], folds: tuple[int, ...]) -> dict:
        cache = self._caches.setdefault(folds, {})  # one per fold set: references are keyed by benchmark only
        return evaluate_scores(label, scores, self.items(folds), self.candidates, reference_cache=cache)

    def resample(self, routers: Mapping[str, Mapping[str, np.ndarray]], folds: tuple[int, ...]) -> dict:
        """Avg µn per resample of every router (choices per benchmark) on the fold set's pooled items.

        Kept per (fold set, router name): a router's decisions on a fold set never change within a run.
        """
        if folds not in self._boots:
            self._boots[folds] = PooledBootstrap(self.items(folds), len(self.candidates), resamples=self.resamples)
        todo = {name: r for name, r in routers.items() if (folds, name) not in self._resampled}
        if todo:
            start = time.perf_counter()
            for name, values in self._boots[folds].avg_mu_n(todo).items():
                self._resampled[(folds, name)] = values
            self.boot_seconds += time.perf_counter() - start
        return {name: self._resampled[(folds, name)] for name in routers}

    def check_point(self, routers: Mapping[str, Mapping[str, np.ndarray]], results: Mapping[str, dict], folds) -> None:
        """The bootstrap's terms on the items once give evaluate_scores' Avg µn (one metric definition)."""
        boot = self._boots.get(folds) or PooledBootstrap(self.items(folds), len(self.candidates), resamples=1)
        for name, value in boot.avg_mu_n(routers, full=True).items():
            expected = results[name]["avg_mu_n"]
            if expected is not None and abs(float(value[0]) - expected) > 1e-6:
                raise AssertionError(f"{name}: bootstrap terms give Avg µn {value[0]:.6f}, evaluation {expected:.6f}")


def one_hot(choices: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {b: np.eye(n)[np.asarray(c, dtype=int)] for b, c in choices.items()}


def score_arms(study: Study, arms: Sequence[ArmRuns]) -> tuple[list[Scored], list[Scored]]:
    """Arms and references scored on pooled items: (arms, references)."""
    everything = tuple(FOLDS)
    n = len(study.candidates)
    decisions = {arm.name: {b: decide(m) for b, m in arm.pooled(arm.folds).items()} for arm in arms}
    # the references: oracle and every single model, on every item
    full_items = study.items(everything)
    refs = {"oracle": {b: decide([e.scores for e in items]) for b, items in full_items.items()}}
    refs.update(
        {f"always {m}": {b: np.full(len(v), j) for b, v in full_items.items()} for j, m in enumerate(study.candidates)}
    )

    resampled: dict[str, np.ndarray] = {}
    by_folds: dict[tuple[int, ...], list[str]] = {}
    for arm in arms:
        by_folds.setdefault(arm.folds, []).append(arm.name)
    for folds, names in by_folds.items():
        routers = {name: decisions[name] for name in names}
        if folds == everything:
            routers.update(refs)
        resampled.update(study.resample(routers, folds))
    if everything not in by_folds:
        resampled.update(study.resample(refs, everything))

    scored_arms = []
    for arm in arms:
        result = study.evaluate(arm.label, one_hot(decisions[arm.name], n), arm.folds)
        study.check_point({arm.name: decisions[arm.name]}, {arm.name: result}, arm.folds)
        per_fold = {
            k: study.evaluate(arm.label, one_hot({b: decide(m) for b, m in arm.scores[k].items()}, n), (k,))
            for k in arm.folds
        }
        marker = "" if arm.complete else "†"
        scored_arms.append(
            Scored(
                arm.label,
                arm.folds,
                result,
                resampled[arm.name],
                {k: r["avg_mu_n"] for k, r in per_fold.items()},
                marker,
            )
        )
    scored_refs = []
    for name, choices in refs.items():
        result = study.evaluate(name, one_hot(choices, n), everything)
        per_fold = {}
        for k in FOLDS:
            sub = {b: np.asarray(c)[_fold_slice(study, k, b)] for b, c in choices.items()}
            per_fold[k] = study.evaluate(name, one_hot(sub, n), (k,))["avg_mu_n"]
        scored_refs.append(Scored(name, everything, result, resampled[name], per_fold))
    return scored_arms, scored_refs


def _fold_slice(study: Study, fold: int, bench: str) -> slice:
    """Where fold ``fold``'s items of ``bench`` sit in the all-fold pooled order."""
    start = sum(len(study.splits[k].test[bench]) for k in FOLDS if k < fold)
    return slice(start, start + len(study.splits[fold].test[bench]))


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main_table(study: Study, arms: Sequence[Scored], refs: Sequence[Scored]) -> list[str]:
    benches = list(study.items(tuple(FOLDS)))
    header = ["router", "folds", *[SHORT.get(b, b) for b in benches], "Avg µn", "95% CI (items)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(s: Scored, bold: bool) -> str:
        cells = [f"{mu_o(s.result, b):.2f} / {fmt(s.result['results'][b]['mu_n'])}" for b in benches]
        avg = fmt(s.result["avg_mu_n"])
        low, high = interval(s.resampled) if s.resampled is not None else (None, None)
        ci = "–" if low is None else f"[{low:.1f}, {high:.1f}]"
        folds = ",".join(map(str, s.folds)) + s.marker
        return f"| {s.label} | {folds} | " + " | ".join(cells) + f" | {'**' + avg + '**' if bold else avg} | {ci} |"

    lines += [row(s, True) for s in arms]
    oracle, singles = refs[0], refs[1:]
    lines.append(row(oracle, False))
    random_cells = [f"{statistics.mean(mu_o(s.result, b) for s in singles):.2f} / 0.0" for b in benches]
    lines.append(
        f"| random (mean of the single models) | {','.join(map(str, FOLDS))} | "
        + " | ".join(random_cells)
        + " | 0.0 | – |"
    )
    lines += [row(s, False) for s in singles]
    return lines


def fold_table(arms: Sequence[Scored], refs: Sequence[Scored]) -> list[str]:
    header = ["router", *[f"fold {k}" for k in FOLDS], "mean ± sd over folds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in [*arms, *refs[1:]]:
        values = [s.per_fold[k] for k in s.folds if s.per_fold.get(k) is not None]
        cells = [fmt(s.per_fold.get(k)) for k in FOLDS]
        if len(values) > 1:
            spread = f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} (n = {len(values)})"
        else:
            spread = f"{values[0]:.1f} (1 fold)" if values else "–"
        lines.append(f"| {s.label}{s.marker} | " + " | ".join(cells) + f" | {spread} |")
    return lines


def paired(study: Study, by_name: Mapping[str, ArmRuns], a: str, b: str) -> tuple[tuple[int, ...], float, float, float]:
    """(common folds, Δ Avg µn, 95% low, 95% high) of arm ``a`` − arm ``b`` on their common folds' pooled items."""
    folds = tuple(k for k in FOLDS if k in by_name[a].folds and k in by_name[b].folds)
    if not folds:
        return folds, math.nan, math.nan, math.nan
    routers = {name: {bench: decide(m) for bench, m in by_name[name].pooled(folds).items()} for name in (a, b)}
    point = {
        name: study.evaluate(name, one_hot(ch, len(study.candidates)), folds)["avg_mu_n"]
        for name, ch in routers.items()
    }
    resampled = study.resample(routers, folds)
    low, high = interval(resampled[a] - resampled[b])
    return folds, point[a] - point[b], low, high


def _folds_cell(folds: Sequence[int]) -> str:
    return ",".join(map(str, folds)) + ("" if tuple(folds) == tuple(FOLDS) else "†")


def paired_table(study: Study, arms: Sequence[ArmRuns]) -> list[str]:
    by_name = {a.name: a for a in arms}
    lines = ["| comparison | folds | Δ Avg µn | 95% CI (paired, items) | CI excludes 0? |", "|---|---|---|---|---|"]
    for a, b, title in PAIRS:
        if a not in by_name or b not in by_name:
            absent = " and ".join(x for x in (a, b) if x not in by_name)
            lines.append(f"| {title} | – | – | – | not yet: no {absent} runs |")
            continue
        folds, delta, low, high = paired(study, by_name, a, b)
        if not folds:
            lines.append(f"| {title} | – | – | – | no fold in common |")
            continue
        excludes = "**yes**" if low > 0 or high < 0 else "no"
        lines.append(f"| {title} | {_folds_cell(folds)} | {delta:+.1f} | [{low:+.1f}, {high:+.1f}] | {excludes} |")
    return lines


#: The data-size trend: (directory suffix, share of each fold's training prompts).
SIZES: list[tuple[str, str]] = [("-f25", "¼"), ("-f50", "½"), ("", "all")]


def size_table(study: Study, arms: Sequence[ArmRuns], scored: Sequence[Scored]) -> list[str]:
    """Tuned MLM and w/o RM trained on ¼, ½ and all of each fold's training prompts: pooled Avg µn and the paired
    response-modeling effect at each size (the trend the issue asks for where the method still loses)."""
    by_name = {a.name: a for a in arms}
    by_label = {s.label: s for s in scored}
    lines = [
        "| training prompts per fold | MLM Avg µn [95% CI] | w/o RM Avg µn [95% CI] | MLM − w/o RM [paired 95% CI] |",
        "|---|---|---|---|",
    ]

    def cell(name: str) -> str:
        if name not in by_name:
            return "not yet"
        s = by_label[by_name[name].label]
        low, high = interval(s.resampled)
        return f"{fmt(s.result['avg_mu_n'])} [{low:.1f}, {high:.1f}] ({_folds_cell(s.folds)})"

    for suffix, share in SIZES:
        mlm, norm = f"mlm{suffix}", f"mlm_norm{suffix}"
        if mlm in by_name and norm in by_name:
            folds, delta, low, high = paired(study, by_name, mlm, norm)
            diff = f"{delta:+.1f} [{low:+.1f}, {high:+.1f}] ({_folds_cell(folds)})" if folds else "no fold in common"
        else:
            diff = "not yet"
        lines.append(f"| {share} | {cell(mlm)} | {cell(norm)} | {diff} |")
    return lines


def runs_table(arms: Sequence[ArmRuns]) -> list[str]:
    lines = [
        "| arm | router / experiment | folds | time per fold (runner wall, s) | training / fit s per fold |",
        "|---|---|---|---|---|",
    ]
    for arm in arms:
        what = sorted({str(r.get("experiment", "")) for r in arm.results.values()})
        walls = [r["wall_seconds"] for r in arm.run.values() if "wall_seconds" in r]
        inner = [
            t.get("train_seconds", t.get("fit_seconds"))
            for t in (r.get("timing", {}) for r in arm.results.values())
            if t.get("train_seconds", t.get("fit_seconds")) is not None
        ]
        wall = f"{statistics.mean(walls):.0f} (max {max(walls):.0f})" if walls else "–"
        fit = f"{statistics.mean(inner):.0f}" if inner else "–"
        lines.append(f"| {arm.name} | {', '.join(what)} | {','.join(map(str, arm.folds))} | {wall} | {fit} |")
    return lines


LEGEND = [
    "Columns: **folds** — the folds whose test items the row is scored on († fewer than all 5: not every item, so the "
    "row is not comparable with the pooled ones). Per benchmark **µo / µn**: µo is AlpacaEval's raw weighted win rate "
    "vs gpt4_1106_preview (offline: no LC), Arena-Hard's Bradley–Terry score vs gpt-4-0314, MT-Bench's mean judge "
    "score ×10, else accuracy / pass@1 (%); µn = 100 · (µo − random) / (oracle − random) on the same items, random = "
    "the mean of the single models' µo. **Avg µn**: the mean of the 7 µn. **95% CI (items)**: 2.5th–97.5th "
    "percentile of Avg µn over 10,000 item resamples (per benchmark, with replacement; the oracle and the single "
    "models are recomputed on each resample, so the normalisation moves with it). Paired Δ: the same resamples for "
    "both routers. The fold table scores each fold's test items alone (µn normalised on that fold's items).",
]


def kfold_markdown(folder: Path, data_dir: str, resamples: int = RESAMPLES) -> tuple[str, dict[str, float]]:
    """The Markdown section and timings (seconds)."""
    from lightning_lookahead.config.compose import compose

    start = time.perf_counter()
    splits = fold_splits(data_dir)
    benches = list(splits[FOLDS[0]].test)
    full = full_benchmarks(data_dir, benches)
    check_coverage(splits, full)
    candidates = list(compose(study_kfold.BASE_EXPERIMENT, []).data.candidates)
    arms = load_arms(folder, splits)
    timings = {"data_seconds": time.perf_counter() - start}
    sizes = ", ".join(f"{b} {len(v)}" for b, v in full.items())
    train = ", ".join(str(len(s.train)) for s in splits.values())
    head = [
        "Generated by `python benchmarks/kfold_tables.py` from `docs/results/kfold/` "
        "(runs: `python benchmarks/study_kfold.py`).",
        "",
        f"Joint setting (`data.family=all`), `data.protocol=kfold`, k = 5, each fold's whole training part "
        f"({train} prompts for folds 0–4), one seed (42) per fold. Pooled test items: {sizes} — checked: the 5 folds' "
        "test items are each benchmark's full item set, every item exactly once, and every run's prompt ids are its "
        "fold's test items.",
        "",
    ]
    if not arms:
        return "\n".join([*head, "No runs yet under `docs/results/kfold/`."]) + "\n", timings
    study = Study(splits, candidates, resamples)
    scored_arms, scored_refs = score_arms(study, arms)
    paired_rows = paired_table(study, arms)
    sizes = size_table(study, arms, scored_arms)
    timings["bootstrap_seconds"] = study.boot_seconds
    timings["total_seconds"] = time.perf_counter() - start
    partial = [a.name for a in arms if not a.complete]
    note = (
        f"Arms with fewer than 5 folds (†, scored on their folds' items only): {', '.join(partial)}."
        if partial
        else "Every arm has all 5 folds."
    )
    out = [
        *head,
        "#### Pooled over the folds: µo / µn per benchmark",
        "",
        note,
        "",
        *main_table(study, scored_arms, scored_refs),
        "",
        "#### Paired differences in Avg µn (the same item resamples for both sides)",
        "",
        *paired_rows,
        "",
        "#### Data size: tuned MLM and w/o RM on ¼, ½ and all of each fold's training prompts",
        "",
        *sizes,
        "",
        "#### Per fold: Avg µn on each fold's test items",
        "",
        *fold_table(scored_arms, scored_refs),
        "",
        "#### Runs",
        "",
        *runs_table(arms),
        "",
        *LEGEND,
    ]
    return "\n".join(out) + "\n", timings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "docs" / "results" / "kfold")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "kfold.md")
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", str(ROOT / "data")))
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results.md",
                        help="also refresh its <!-- kfold:begin/end --> section")  # fmt: skip
    args = parser.parse_args(argv)
    text, timings = kfold_markdown(args.runs, args.data_dir, args.resamples)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# The 5-fold study\n\n" + text, encoding="utf-8")
    if replace_section(args.results, "kfold", text):
        print(f"wrote the kfold section of {args.results}", file=sys.stderr)
    print(f"wrote {args.out}; " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
