"""The 5-fold study's runner (benchmarks/study_kfold.py) and tables (benchmarks/kfold_tables.py).

The bootstrap is checked on constructed items where the answer is known exactly; fold coverage on the fixture tree
(k = 3: its benchmarks hold 3 items) and on the real data (k = 5, when present); the runner's listing and skipping
without running anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import kfold_tables
import study_kfold

from lightning_lookahead.data.benchmarks import load_benchmark
from lightning_lookahead.data.config import DataConfig, KFoldConfig
from lightning_lookahead.data.families import FAMILY_BENCHMARKS
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.evaluation import evaluate_scores
from lightning_lookahead.metrics.benchmarks import decide

FIXTURE_ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "data"
CANDIDATES = ["a", "b", "c", "d"]


def accuracy_items(bench: str, n: int, seed: int) -> list[RoutingExample]:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 2, size=(n, len(CANDIDATES))).astype(float)
    return [
        RoutingExample(f"{bench}-{i}", f"prompt {i}", ("",) * len(CANDIDATES), tuple(row), bench)
        for i, row in enumerate(scores)
    ]


@pytest.fixture(scope="module")
def constructed() -> dict[str, list[RoutingExample]]:
    return {"GSM8k": accuracy_items("GSM8k", 300, 1), "MBPP": accuracy_items("MBPP", 57, 2)}


# --------------------------------------------------------------------------- (a) the bootstrap, exactly


def test_bootstrap_oracle_single_models_and_self_difference_are_exact(constructed) -> None:
    boot = kfold_tables.PooledBootstrap(constructed, len(CANDIDATES), resamples=500)
    oracle = {b: decide([e.scores for e in items]) for b, items in constructed.items()}
    singles = {f"always {j}": {b: np.full(len(v), j) for b, v in constructed.items()} for j in range(len(CANDIDATES))}
    rng = np.random.default_rng(3)
    router = {b: rng.integers(0, len(CANDIDATES), len(v)) for b, v in constructed.items()}
    copy_of_1 = {b: np.full(len(v), 1) for b, v in constructed.items()}

    first = boot.avg_mu_n({"oracle": oracle, "router": router, **singles})
    assert first["oracle"].shape == (500,)
    assert np.all(first["oracle"] == 100.0)  # exactly, on every resample

    # separate calls see the same resampled items: a router equal to a single model gets exactly its µn,
    # and a router's paired difference with itself is exactly 0
    second = boot.avg_mu_n({"copy of 1": copy_of_1, "router": router})
    np.testing.assert_array_equal(second["copy of 1"], first["always 1"])
    assert np.all(second["router"] - first["router"] == 0.0)
    per_bench = boot.mu_n({"copy of 1": copy_of_1, **singles})
    np.testing.assert_array_equal(per_bench["copy of 1"], per_bench["always 1"])

    # the single models' µn average to 0 on every resample (random is their mean), and resamples differ
    mean_single = np.mean([first[name] for name in singles], axis=0)
    np.testing.assert_allclose(mean_single, 0.0, atol=1e-9)
    assert np.std(first["router"]) > 0


def test_bootstrap_terms_on_the_items_once_equal_the_evaluation(constructed) -> None:
    boot = kfold_tables.PooledBootstrap(constructed, len(CANDIDATES), resamples=10)
    rng = np.random.default_rng(5)
    choices = {b: rng.integers(0, len(CANDIDATES), len(v)) for b, v in constructed.items()}
    point = boot.avg_mu_n({"r": choices}, full=True)["r"]
    result = evaluate_scores("r", kfold_tables.one_hot(choices, len(CANDIDATES)), constructed, CANDIDATES)
    assert point.shape == (1,) and point[0] == pytest.approx(result["avg_mu_n"], abs=1e-9)


def test_bootstrap_on_every_benchmark_kind_of_the_fixtures() -> None:
    """Arena-Hard, MT-Bench and AlpacaEval terms too: the oracle is 100 wherever µn is defined."""
    items = kfold_tables.pooled_items({0: make_splits(DataConfig(family="all"), FIXTURE_ROOT)}, (0,))
    n = len(DataConfig().candidates)
    boot = kfold_tables.PooledBootstrap(items, n, resamples=50)
    oracle = {b: decide([e.scores for e in v]) for b, v in items.items()}
    values = boot.mu_n({"oracle": oracle})["oracle"]
    assert np.all((values == 100.0) | np.isnan(values)) and np.any(values == 100.0)


# --------------------------------------------------------------------------- (b) pooling covers every item once


def fixture_folds(k: int = 3) -> dict[int, object]:
    return {
        fold: make_splits(DataConfig(family="all", protocol="kfold", kfold=KFoldConfig(k=k, fold=fold)), FIXTURE_ROOT)
        for fold in range(k)
    }


def test_pooled_folds_cover_every_fixture_item_exactly_once() -> None:
    splits = fixture_folds()
    full = {b: load_benchmark(b, FIXTURE_ROOT) for b in FAMILY_BENCHMARKS["all"]}
    kfold_tables.check_coverage(splits, full)
    pooled = kfold_tables.pooled_items(splits, (0, 1, 2))
    for bench, items in full.items():
        assert sorted(e.prompt_id for e in pooled[bench]) == sorted(e.prompt_id for e in items)

    twice = {0: splits[0], 1: splits[1], 2: splits[1]}  # fold 1 twice, fold 2 never
    with pytest.raises(AssertionError, match="more than one fold"):
        kfold_tables.check_coverage(twice, full)
    with pytest.raises(AssertionError, match="never tested"):
        kfold_tables.check_coverage({0: splits[0], 1: splits[1]}, full)


def write_run(folder: Path, arm: str, fold: int, splits, scores: dict[str, np.ndarray]) -> None:
    path = folder / arm / f"fold{fold}"
    path.mkdir(parents=True)
    arrays = {
        "val/scores": np.zeros((len(splits.val), 5)),
        "val/prompt_ids": np.array([e.prompt_id for e in splits.val]),
    }
    for bench, items in splits.test.items():
        arrays[f"test/{bench}/scores"] = scores[bench]
        arrays[f"test/{bench}/prompt_ids"] = np.array([e.prompt_id for e in items])
    np.savez(path / "scores.npz", **arrays)
    (path / "results.json").write_text(json.dumps({"experiment": arm, "timing": {"fit_seconds": 1.0}}))
    (path / "run.json").write_text(json.dumps({"wall_seconds": 2.0}))
    config = {"data": {"family": "all", "protocol": "kfold", "kfold": {"fold": fold}, "data_dir": "data"}}
    (path / "config.yaml").write_text(json.dumps(config))  # JSON is YAML


@pytest.mark.real_data
def test_real_folds_pool_every_item_once_and_the_tables_pool_runs(real_data: Path, tmp_path: Path) -> None:
    splits = kfold_tables.fold_splits(str(real_data))
    full = kfold_tables.full_benchmarks(str(real_data), list(splits[0].test))
    kfold_tables.check_coverage(splits, full)
    sizes = {b: sum(len(s.test[b]) for s in splits.values()) for b in full}
    assert sizes["MT-Bench"] == 80 and sizes["HumanEval"] == 164 and sizes["MBPP"] == 257
    assert sizes == {b: len(v) for b, v in full.items()}

    # an oracle-scored arm on all 5 folds, a single-model arm on 2: pooled, marked, checked against the folds
    for k, s in splits.items():
        write_run(tmp_path, "oracle_arm", k, s, {b: np.asarray([e.scores for e in v]) for b, v in s.test.items()})
        if k < 2:
            write_run(tmp_path, "knn100", k, s, {b: np.eye(5)[np.zeros(len(v), int)] for b, v in s.test.items()})
        # the data-size trend: "MLM" = the oracle on every fold, "w/o RM" = one model; a quarter-size MLM on fold 0
        write_run(tmp_path, "mlm", k, s, {b: np.asarray([e.scores for e in v]) for b, v in s.test.items()})
        write_run(tmp_path, "mlm_norm", k, s, {b: np.eye(5)[np.full(len(v), 2)] for b, v in s.test.items()})
        if k == 0:
            write_run(tmp_path, "mlm-f25", k, s, {b: np.asarray([e.scores for e in v]) for b, v in s.test.items()})
    arms = kfold_tables.load_arms(tmp_path, splits)
    assert [(a.name, a.folds) for a in arms] == [
        ("mlm", (0, 1, 2, 3, 4)),
        ("mlm-f25", (0,)),
        ("mlm_norm", (0, 1, 2, 3, 4)),
        ("knn100", (0, 1)),
        ("oracle_arm", (0, 1, 2, 3, 4)),
    ]
    text, timings = kfold_tables.kfold_markdown(tmp_path, str(real_data), resamples=200)
    oracle_row = next(line for line in text.splitlines() if line.startswith("| oracle_arm | 0,1,2,3,4 |"))
    assert "**100.0** | [100.0, 100.0] |" in oracle_row
    assert "| kNN (k = 100, MiniLM embeddings) | 0,1† |" in text
    assert timings["bootstrap_seconds"] < 30
    sizes = text.split("#### Data size")[1].split("####")[0]
    quarter = next(line for line in sizes.splitlines() if line.startswith("| ¼ |"))
    assert quarter.startswith("| ¼ | 100.0 [100.0, 100.0] (0†) | not yet | not yet |")
    whole = next(line for line in sizes.splitlines() if line.startswith("| all |"))
    single = next(line for line in text.splitlines() if line.startswith("| Lookahead-MLM w/o response modeling"))
    single_avg = float(single.split("**")[1])
    assert f"| all | 100.0 [100.0, 100.0] (0,1,2,3,4) | {single_avg:.1f} [" in whole
    assert f"| {100 - single_avg:+.1f} [" in whole and "| ½ | not yet | not yet | not yet |" in sizes

    bad = tmp_path / "oracle_arm" / "fold3" / "scores.npz"
    with np.load(bad) as npz:
        arrays = dict(npz)
    arrays["test/MBPP/prompt_ids"] = arrays["test/MBPP/prompt_ids"][::-1]
    np.savez(bad, **arrays)
    with pytest.raises(AssertionError, match="MBPP prompt ids are not fold 3's test items"):
        kfold_tables.load_arms(tmp_path, splits)


# --------------------------------------------------------------------------- (c) the runner: list, skip, resume


def test_list_and_skip_a_run_whose_results_are_committed(tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "out"
    (out / "domain" / "fold0").mkdir(parents=True)
    (out / "domain" / "fold0" / "results.json").write_text("{}")

    assert study_kfold.main(["--list", "--only", "domain", "--folds", "0,1", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("domain/fold0") and lines[0].endswith(" done")
    assert lines[1].startswith("domain/fold1") and lines[1].endswith(" todo")

    def no_fit(*args, **kwargs):
        raise AssertionError("a committed run was run again")

    monkeypatch.setattr(study_kfold, "run_fit", no_fit)
    args = ["--only", "domain", "--folds", "0", "--out", str(out), "--work", str(tmp_path / "work")]
    assert study_kfold.main(args) == 0
    assert "[skip] domain/fold0: already in" in capsys.readouterr().out


def test_an_arm_whose_experiment_is_missing_is_reported_and_skipped(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(study_kfold, "ROOT", tmp_path)  # no experiments/ there
    monkeypatch.setattr(study_kfold, "run_training", lambda *a: pytest.fail("ran an arm without its experiment"))
    out = tmp_path / "out"
    assert study_kfold.main(["--list", "--only", "mlm", "--folds", "2", "--out", str(out)]) == 0
    assert "todo: experiments/cpu/tuned/mlm_all.yaml not there yet" in capsys.readouterr().out
    assert study_kfold.main(["--only", "mlm,mlc", "--folds", "2", "--out", str(out), "--work", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "[skip] mlm: todo: experiments/cpu/tuned/mlm_all.yaml not there yet" in printed
    assert "[skip] mlc: todo: experiments/cpu/tuned/mlc_all.yaml not there yet" in printed


def test_plan_order_fractions_and_clm_folds() -> None:
    jobs = study_kfold.plan(study_kfold.study_arms(), (0, 1))
    names = [j.name for j in jobs]
    assert names[:2] == ["domain/fold0", "domain/fold1"]  # fitted first, arm by arm
    assert names[8:] == [
        *[f"{a}/fold0" for a in ("mlm", "mlm_norm", "mlc", "routerdc", "zooter", "clm")],
        *[f"{a}/fold1" for a in ("mlm", "mlm_norm", "mlc", "routerdc", "zooter")],  # clm: fold 0 only by default
    ]
    arms = study_kfold.study_arms([0.25, 0.5])
    assert [(a.name, a.fraction) for a in arms] == [
        ("mlm-f25", 0.25),
        ("mlm_norm-f25", 0.25),
        ("mlm-f50", 0.5),
        ("mlm_norm-f50", 0.5),
    ]
    assert study_kfold.smoothie_n0(3072) == 52 and study_kfold.smoothie_n0(5850) == 99


def test_train_command_resumes_from_last_checkpoint(tmp_path: Path) -> None:
    job = study_kfold.Job(study_kfold.Arm("mlm", experiment="cpu/tuned/mlm_all"), 3)
    args = study_kfold.train_command(job, tmp_path, "data")
    assert args[3:5] == ["train", "cpu/tuned/mlm_all"]
    assert "data.kfold.fold=3" in args and "data.max_train_prompts=null" in args and "seed=42" in args
    assert not any(a.startswith("resume=") for a in args)
    last = tmp_path / "mlm" / "fold3" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    assert study_kfold.train_command(job, tmp_path, "data")[-1] == "resume=last"


def test_committed_config_and_overrides_have_portable_paths(tmp_path: Path) -> None:
    root, home = Path("/somewhere/repo"), Path("/users/ada")
    text = (
        "run_dir: /somewhere/repo/runs/kfold/mlm/fold0\nmodel:\n  backbone: /users/ada/.cache/m\n"
        "data:\n  data_dir: /elsewhere/data\n  cache_dir: .cache/x\n  other: /opt/x\n"
    )
    fixed = study_kfold.portable_config(text, root, home)
    assert "/somewhere" not in fixed and "/elsewhere" not in fixed and "/users" not in fixed
    for line in ("run_dir: runs/kfold/mlm/fold0", "backbone: ~/.cache/m", "data_dir: data", "cache_dir: .cache/x"):
        assert line in fixed
    assert "other: /opt/x" in fixed  # neither the checkout nor the home folder: unchanged
    assert study_kfold.portable_override("data.data_dir=/mnt/d", root, home) == "data.data_dir=data"
    assert study_kfold.portable_override("run_dir=/somewhere/repo/runs/x", root, home) == "run_dir=runs/x"
    assert study_kfold.portable_override("seed=42", root, home) == "seed=42"


class CountingEncoder:
    fingerprint = "test-encoder"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += list(texts)
        return np.array([[len(t), sum(map(ord, t)) % 97] for t in texts], dtype=np.float32)


def test_text_table_encodes_each_text_once_across_calls_and_processes(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    table = study_kfold.TextTable(encoder, tmp_path, chunk=2)
    first = table.encode(["x", "yy", "x", "zzz"])
    assert encoder.seen == ["x", "yy", "zzz"]
    np.testing.assert_array_equal(first[0], first[2])
    again = study_kfold.TextTable(CountingEncoder(), tmp_path)  # a later process reads the parts
    np.testing.assert_array_equal(again.encode(["zzz", "yy"]), first[[3, 1]])
    assert again.encoder.seen == []
