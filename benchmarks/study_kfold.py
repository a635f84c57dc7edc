"""The 5-fold study: every arm on each of the joint setting's 5 k-fold folds, so every benchmark item is tested once.

    python benchmarks/study_kfold.py [--only ARM[,ARM...]] [--folds 0,1,2,3,4] [--list] [--data-dir data]
    python benchmarks/study_kfold.py --fraction 0.25        # mlm and mlm_norm on 25% of each fold's training prompts
    python benchmarks/study_kfold.py --only knn100,kmeans100,domain,smoothie

The setting is ``data.family=all``, ``data.protocol=kfold``, ``data.kfold.fold=k`` (k = 0..4) and the whole training
part of each fold (``data.max_train_prompts=null``, ~5,850 prompts); the fold is the replication, so each trained arm
has one seed (42) per fold. ``benchmarks/kfold_tables.py`` pools the 5 folds' test predictions.

Arms, in the order they run (the fitted references first: they are cheap; then the trained arms fold by fold):

- fitted references (:func:`lightning_lookahead.routers.fitted.fit_and_score` on the same training prompts as the
  trained arms of that fold): ``domain``, ``knn100`` (``knn:100``), ``kmeans100`` (``hard_cluster:100``) and
  ``smoothie`` (``smoothie:N0`` with the paper's share of neighbours, N0 = round(1,000 · n_train / 59,281), as the
  CPU study's ``smoothie52-n3072`` took 52 of 3,072);
- trained (``lookahead train`` in a subprocess): ``mlm``, ``mlm_norm``, ``mlc``, ``routerdc``, ``zooter`` (the tuned
  experiments ``cpu/tuned/<x>_all``; an arm whose file is not there yet is reported and skipped) and ``clm``
  (``cpu/clm_all``, fold 0 only unless ``--clm-folds`` says otherwise);
- with ``--fraction F``: ``mlm`` and ``mlm_norm`` on round(F · the fold's training prompts) (``mlm-f25`` etc.).

Each finished run's small files (``results.json``, ``config.yaml`` with repository-relative paths, ``scores.npz``,
``results.md`` if present, and ``run.json``: the runner's wall time) are copied atomically to
``docs/results/kfold/<arm>/fold<k>/``; checkpoints and logs stay in ``runs/kfold/<arm>/fold<k>/``. A run whose
``results.json`` is already committed is skipped; an interrupted training resumes from its ``last.ckpt``.

The fitted references embed prompts (and, for SMOOTHIE, the training responses) with MiniLM through a per-text
table (``runs/kfold/cache/text_embeddings``): every distinct text is encoded once over all folds, so the timings in
their ``results.json`` exclude the encoding except for the run that first met a text (``run.json`` says so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_cpu import portable_config, portable_path  # one rule for every committed config's paths

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "kfold"
WORK = ROOT / "runs" / "kfold"
EXPERIMENTS = ROOT / "experiments"
KEEP = ("results.json", "results.md", "config.yaml", "scores.npz")
FOLDS = (0, 1, 2, 3, 4)
SEED = 42
#: The split every arm is composed on (fitted references take its data section); the fold and cap are overrides.
BASE_EXPERIMENT = "cpu/mlm_all"
#: SMOOTHIE's n0 in the paper (1,000 neighbours) and the paper's training-set size it is a share of.
PAPER_N0, PAPER_TRAIN = 1000, 59_281

#: Trained arms: directory name → experiment. Order = run order within a fold.
TRAINED: dict[str, str] = {
    "mlm": "cpu/tuned/mlm_all",
    "mlm_norm": "cpu/tuned/mlm_norm_all",
    "mlc": "cpu/tuned/mlc_all",
    "routerdc": "cpu/tuned/routerdc_all",
    "zooter": "cpu/tuned/zooter_all",
    "clm": "cpu/clm_all",
}
#: Fitted references: directory name → router spec (``smoothie``: n0 scaled to the fold's training size).
FITTED: dict[str, str] = {
    "domain": "domain",
    "knn100": "knn:100",
    "kmeans100": "hard_cluster:100",
    "smoothie": "smoothie",
}
#: Arms the ``--fraction`` option trains on a share of each fold's training prompts.
FRACTION_ARMS = ("mlm", "mlm_norm")


@dataclass(frozen=True)
class Arm:
    """One row of the study: a trained experiment or a fitted router spec, on ``fraction`` of the training prompts."""

    name: str
    experiment: str | None = None
    spec: str | None = None
    fraction: float | None = None

    @property
    def trained(self) -> bool:
        return self.experiment is not None

    def missing(self) -> str | None:
        """Why the arm cannot run yet (its experiment file is absent), else None."""
        if self.experiment is None:
            return None
        relative = f"experiments/{self.experiment}.yaml"
        return None if (ROOT / relative).exists() else f"todo: {relative} not there yet"


@dataclass(frozen=True)
class Job:
    arm: Arm
    fold: int

    @property
    def name(self) -> str:
        return f"{self.arm.name}/fold{self.fold}"

    def committed(self, out: Path) -> Path:
        return out / self.arm.name / f"fold{self.fold}"

    def work_dir(self, work: Path) -> Path:
        return work / self.arm.name / f"fold{self.fold}"

    def done(self, out: Path) -> bool:
        return (self.committed(out) / "results.json").exists()


def fraction_suffix(fraction: float) -> str:
    """0.25 → ``-f25``."""
    return f"-f{round(100 * fraction)}"


def base_name(arm: Arm) -> str:
    """``mlm-f25`` → ``mlm``; other arms: their name."""
    return arm.name.rsplit("-f", 1)[0] if arm.fraction is not None else arm.name


def study_arms(fractions: Sequence[float] = ()) -> list[Arm]:
    """The fitted references, then the trained arms; with ``fractions``, only those arms' data-size variants."""
    if fractions:
        return [
            Arm(f"{name}{fraction_suffix(f)}", experiment=TRAINED[name], fraction=f)
            for f in fractions
            for name in FRACTION_ARMS
        ]
    return [Arm(name, spec=spec) for name, spec in FITTED.items()] + [
        Arm(name, experiment=exp) for name, exp in TRAINED.items()
    ]


def plan(arms: Sequence[Arm], folds: Sequence[int], clm_folds: Sequence[int] = (0,)) -> list[Job]:
    """Fitted references arm by arm (each over the folds), then the trained arms fold by fold."""
    fitted = [Job(arm, k) for arm in arms if not arm.trained for k in folds]
    trained = [Job(arm, k) for k in folds for arm in arms if arm.trained and (arm.name != "clm" or k in clm_folds)]
    return fitted + trained


def job_status(job: Job, out: Path) -> str:
    """``done``, ``todo`` or ``todo: experiments/<x>.yaml not there yet``."""
    if job.done(out):
        return "done"
    return job.arm.missing() or "todo"


# --------------------------------------------------------------------------- configs and splits


def fold_overrides(fold: int, cap: int | None = None) -> list[str]:
    return [
        "data.family=all",
        "data.protocol=kfold",
        f"data.kfold.fold={fold}",
        f"data.max_train_prompts={'null' if cap is None else cap}",
        f"seed={SEED}",
    ]


def common_overrides(data_dir: str) -> list[str]:
    return [f"data.data_dir={data_dir}", "logger.wandb.enabled=false", "trainer.enable_progress_bar=false"]


_SPLITS: dict[tuple[int, str], Any] = {}


@contextmanager
def benchmarks_loaded_once() -> Iterator[None]:
    """While inside, ``make_splits`` reads each benchmark file once: the 5 folds split the same loaded items.

    The split itself stays the library's (``make_splits``); only its reader is memoised (the items are frozen).
    """
    from lightning_lookahead.data import splits as module

    original = module.load_benchmark
    memo: dict[tuple, list] = {}

    def load_once(name: str, root: Path, candidates: Sequence[str] = ()) -> list:
        key = (name, str(root), tuple(candidates))
        if key not in memo:
            memo[key] = original(name, root, candidates)
        return list(memo[key])

    module.load_benchmark = load_once
    try:
        yield
    finally:
        module.load_benchmark = original


def fold_splits(fold: int, data_dir: str) -> Any:
    """The fold's splits on its whole training part (cached in-process; every fold is made on the first call)."""
    if (fold, data_dir) not in _SPLITS:
        from lightning_lookahead.config.compose import compose
        from lightning_lookahead.data.splits import make_splits

        with benchmarks_loaded_once():
            for k in FOLDS:
                cfg = compose(BASE_EXPERIMENT, [*fold_overrides(k), *common_overrides(data_dir)])
                _SPLITS[(k, data_dir)] = make_splits(cfg.data, Path(cfg.data.data_dir))
    return _SPLITS[(fold, data_dir)]


def train_cap(arm: Arm, fold: int, data_dir: str) -> int | None:
    """None (the whole training part) or round(fraction · the fold's training prompts)."""
    if arm.fraction is None:
        return None
    return round(arm.fraction * len(fold_splits(fold, data_dir).train))


def smoothie_n0(n_train: int) -> int:
    """The paper's share of neighbours (1,000 of 59,281) at ``n_train`` training prompts."""
    return max(1, round(PAPER_N0 * n_train / PAPER_TRAIN))


def portable_override(item: str, root: Path = ROOT, home: Path | None = None) -> str:
    """``key=value`` with a portable value (the overrides a run records)."""
    key, sep, value = item.partition("=")
    if not sep or not value.startswith("/"):
        return item
    return f"{key}{sep}{portable_path(key.rsplit('.', 1)[-1], value, root, home)}"


# --------------------------------------------------------------------------- embeddings: every text once


class TextTable:
    """An embedder that encodes each distinct text once and keeps it on disk (sha256 of the text → vector).

    The library's cache keys whole lists of texts, and every fold's training list differs; here the rows are shared
    across folds and arms. New vectors are appended as ``part-*.npz`` files (written to a temporary name, then
    renamed), so an interrupted encoding keeps what it finished.
    """

    def __init__(self, encoder: Any, folder: Path, chunk: int = 2048) -> None:
        self.encoder, self.chunk = encoder, chunk
        tag = hashlib.sha256(encoder.fingerprint.encode()).hexdigest()[:16]
        self.folder = folder / tag
        self.rows: dict[bytes, int] = {}
        self.parts: list[Any] = []
        self.encoded = 0
        self.encode_seconds = 0.0
        self._all: Any = None
        self._load()

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    def _load(self) -> None:
        import numpy as np

        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("part-*.npz")):
            with np.load(path) as part:
                self._add(part["keys"], part["vectors"])

    def _add(self, keys: Any, vectors: Any) -> None:
        offset = sum(len(p) for p in self.parts)
        self.parts.append(vectors)
        for i, key in enumerate(keys):
            self.rows.setdefault(bytes(key), offset + i)
        self._all = None

    def _matrix(self) -> Any:
        import numpy as np

        if self._all is None:
            self._all = np.concatenate(self.parts) if self.parts else np.zeros((0, 0), dtype=np.float32)
        return self._all

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        keys = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in self.rows}.items())
        for start in range(0, len(missing), self.chunk):
            block = missing[start : start + self.chunk]
            began = time.perf_counter()
            vectors = np.asarray(self.encoder.encode([t for _, t in block]), dtype=np.float32)
            self.encode_seconds += time.perf_counter() - began
            self.encoded += len(block)
            packed = np.frombuffer(b"".join(k for k, _ in block), dtype=np.uint8).reshape(len(block), 32)
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
            tmp = self.folder / f"{name}.npz.tmp"  # not matched by part-*.npz until complete
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=packed, vectors=vectors)
            tmp.replace(self.folder / f"{name}.npz")
            self._add(packed, vectors)
            print(
                f"    [embed] {min(start + len(block), len(missing))}/{len(missing)} new texts "
                f"({self.encode_seconds:.0f} s encoding so far)",
                flush=True,
            )
        matrix = self._matrix()
        return matrix[[self.rows[k] for k in keys]] if keys else np.zeros((0, matrix.shape[1]), dtype=np.float32)


_TABLE: TextTable | None = None


def text_table(work: Path) -> TextTable:
    global _TABLE
    if _TABLE is None:
        from lightning_lookahead.models.embeddings import DEFAULT_EMBEDDER, SentenceEncoder

        _TABLE = TextTable(SentenceEncoder(DEFAULT_EMBEDDER, progress_min=1 << 30), work / "cache" / "text_embeddings")
    return _TABLE


# --------------------------------------------------------------------------- running one job


def run_fit(job: Job, work: Path, data_dir: str) -> dict[str, Any]:
    """Fit the arm's reference router on the fold's training prompts; save its scores like a training run does."""
    import numpy as np

    from lightning_lookahead.config.compose import compose, to_yaml
    from lightning_lookahead.routers.fitted import fit_and_score
    from lightning_lookahead.training.report import save_scores

    cfg = compose(BASE_EXPERIMENT, [*fold_overrides(job.fold), *common_overrides(data_dir)])
    splits = fold_splits(job.fold, data_dir)
    spec = job.arm.spec or ""
    if spec == "smoothie":
        spec = f"smoothie:{smoothie_n0(len(splits.train))}"
    table = text_table(work)  # the encoder itself loads only when a text is new
    before = (table.encoded, table.encode_seconds)
    print(f"    [fit] {job.name}: {spec} on {len(splits.train)} training prompts", flush=True)
    # the library's list-keyed cache would only duplicate the table's rows on disk: give it a throwaway folder
    with tempfile.TemporaryDirectory(prefix="kfold-fit-") as scratch:
        result = fit_and_score(spec, splits, list(cfg.data.candidates), scratch, embedder=table)
    target = job.work_dir(work)
    target.mkdir(parents=True, exist_ok=True)
    save_scores(target / "scores.npz", result["test"], splits.test, np.asarray(result["val"]), splits.val)
    (target / "config.yaml").write_text(to_yaml(cfg))
    timing = {k: result[k] for k in ("fit_seconds", "route_seconds", "routed_prompts", "n_train")}
    payload = {"experiment": spec, "fold": job.fold, "timing": timing}
    (target / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    if spec == "domain":  # no embeddings
        return {"spec": spec}
    return {
        "spec": spec,
        "new_texts_encoded": table.encoded - before[0],
        "encode_seconds": round(table.encode_seconds - before[1], 1),
        "embeddings": "per-text table: fit/route seconds include encoding only of texts no earlier run had met",
    }


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
    }


def train_command(job: Job, work: Path, data_dir: str) -> list[str]:
    """``python -m lightning_lookahead.cli train EXP overrides...`` for the job (``resume=last`` when it can)."""
    target = job.work_dir(work)
    resume = ["resume=last"] if (target / "checkpoints" / "last.ckpt").exists() else []
    cap = train_cap(job.arm, job.fold, data_dir)
    return [
        sys.executable,
        "-m",
        "lightning_lookahead.cli",
        "train",
        str(job.arm.experiment),
        *fold_overrides(job.fold, cap),
        *common_overrides(data_dir),
        f"run_dir={target}",
        *resume,
    ]


def run_training(job: Job, work: Path, data_dir: str) -> dict[str, Any]:
    target = job.work_dir(work)
    finished = (target / "results.json").exists() and (target / "scores.npz").exists()
    last = target / "checkpoints" / "last.ckpt"
    if finished and (not last.exists() or last.stat().st_mtime <= (target / "results.json").stat().st_mtime):
        print(f"    [train] {job.name}: finished in {target} before; committing it", flush=True)
        return {"experiment": job.arm.experiment, "note": "committed from an earlier finished run"}
    args = train_command(job, work, data_dir)
    target.mkdir(parents=True, exist_ok=True)
    log = target / "train.log"
    print(f"    [train] {job.name}: {' '.join(args[4:])}  (log {_shown(log)})", flush=True)
    with open(log, "a") as fh:
        code = subprocess.call(args, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=_env())
    if code:
        raise RuntimeError(f"training failed ({code}); see {log}")
    return {"experiment": job.arm.experiment, "overrides": [portable_override(a) for a in args[5:]]}


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def commit_files(job: Job, work: Path, out: Path, extra: dict[str, Any]) -> None:
    """Copy the run's small files next to the docs (atomically: the folder appears only when complete)."""
    source, target = job.work_dir(work), job.committed(out)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KEEP:
        if not (source / name).exists():
            continue
        if name == "config.yaml":
            (tmp / name).write_text(portable_config((source / name).read_text(encoding="utf-8")))
        else:
            shutil.copy2(source / name, tmp / name)
    (tmp / "run.json").write_text(json.dumps({"arm": job.arm.name, "fold": job.fold, **extra}, indent=2) + "\n")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


# --------------------------------------------------------------------------- command line


def parse_folds(text: str) -> list[int]:
    folds = sorted({int(x) for x in text.split(",") if x.strip()})
    if not folds or any(k not in FOLDS for k in folds):
        raise SystemExit(f"error: folds must be among {FOLDS}, got {text!r}")
    return folds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated arm names (default: every arm)")
    parser.add_argument("--folds", default=",".join(map(str, FOLDS)), help="comma-separated folds (default: all 5)")
    parser.add_argument("--clm-folds", default="0", help="folds the clm arm runs on (default: 0)")
    parser.add_argument("--fraction", default=None, help="0.25, 0.5 or both (comma-separated): the data-size arms")
    parser.add_argument("--list", action="store_true", help="print done/todo for every arm × fold, then exit")
    parser.add_argument("--work", type=Path, default=WORK, help="checkpoints, logs, embedding cache")
    parser.add_argument("--out", type=Path, default=OUT, help="where finished runs' small files go")
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", str(ROOT / "data")))
    args = parser.parse_args(argv)

    fractions = [float(f) for f in args.fraction.split(",")] if args.fraction else []
    if any(not 0 < f < 1 for f in fractions):
        raise SystemExit(f"error: --fraction must be in (0, 1), got {args.fraction!r}")
    arms = study_arms(fractions)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        # with --fraction, the base names (mlm, mlm_norm) pick their variants too
        chosen = [a for a in arms if a.name in wanted or base_name(a) in wanted]
        unknown = wanted - {a.name for a in chosen} - {base_name(a) for a in chosen}
        if unknown:
            raise SystemExit(f"error: unknown arm(s) {sorted(unknown)}; known: {[a.name for a in arms]}")
        arms = chosen
    jobs = plan(arms, parse_folds(args.folds), parse_folds(args.clm_folds))

    if args.list:
        for job in jobs:
            what = job.arm.experiment or job.arm.spec
            share = f" on {round(100 * job.arm.fraction)}% of the training prompts" if job.arm.fraction else ""
            print(f"{job.name:22s} {what + share:56s} {job_status(job, args.out)}")
        return 0

    for arm in dict.fromkeys(job.arm for job in jobs):
        if arm.missing():
            print(f"[skip] {arm.name}: {arm.missing()}", flush=True)
    runnable = [job for job in jobs if not job.arm.missing()]
    start_all = time.perf_counter()
    failures: list[str] = []
    for i, job in enumerate(runnable, 1):
        head = f"[{i}/{len(runnable)}]"
        if job.done(args.out):
            print(f"{head} [skip] {job.name}: already in {args.out}", flush=True)
            continue
        print(f"{head} {job.name} ...", flush=True)
        start = time.perf_counter()
        try:
            extra = (run_training if job.arm.trained else run_fit)(job, args.work, args.data_dir)
        except Exception as exc:  # one failed run does not stop the others; the exit status says so
            failures.append(f"{job.name}: {exc}")
            print(f"{head} [failed] {job.name} after {time.perf_counter() - start:.0f} s: {exc}", flush=True)
            continue
        wall = time.perf_counter() - start
        commit_files(job, args.work, args.out, {**extra, "wall_seconds": round(wall, 1)})
        total = time.perf_counter() - start_all
        print(f"{head} [done] {job.name} in {wall:.0f} s (elapsed {total / 60:.1f} min)", flush=True)
    if failures:
        print("failed:\n  " + "\n  ".join(failures), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
