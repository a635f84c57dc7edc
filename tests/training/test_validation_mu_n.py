"""Validation µn per benchmark and `val/avg_mu_n`: logged every validation, the default monitor on mixed splits."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from recipe_testkit import debug_run

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.evaluation import evaluate_scores, validation_mu_n
from lightning_lookahead.training.recipe import resolve_monitor, run_experiment

JOINT = ["data.protocol=kfold", "data.family=all", "data.kfold.k=3", "data.max_eval_prompts=24"]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_avg_mu_n_chooses_the_checkpoint_on_a_mixed_validation_split(tiny_backbone, real_data, tmp_path):
    overrides = [*debug_run(tiny_backbone, real_data, tmp_path), *JOINT, "trainer.max_epochs=3", "optim.lr=1e-3"]
    cfg = compose("debug", overrides)
    results = run_experiment(cfg)
    logged = [
        float(r["val/avg_mu_n"]) for r in _rows(tmp_path / "run" / "csv" / "metrics.csv") if r.get("val/avg_mu_n")
    ]
    assert len(logged) == 3  # one per validation
    selection = results["selection"]
    assert selection["monitor"] == "val/avg_mu_n" and selection["checkpoint"] == "best.ckpt"
    assert selection["best_score"] == pytest.approx(max(logged), abs=1e-6)
    # The tested checkpoint, rescored through the one scoring path, has the validation µn the callback logged.
    assert results["validation_mu_n"]["avg_mu_n"] == pytest.approx(selection["best_score"], abs=1e-3)
    assert "Checkpoint chosen by `val/avg_mu_n`" in (tmp_path / "run" / "results.md").read_text()


def test_a_single_domain_split_keeps_val_reward_and_monitor_is_selectable(tiny_backbone, real_data, tmp_path):
    cfg = compose("debug", debug_run(tiny_backbone, real_data, tmp_path))  # code family, paper protocol
    val = make_splits(cfg.data, real_data).val
    assert len({e.benchmark for e in val}) == 1 and resolve_monitor("auto", val) == "val/reward"
    mixed = make_splits(compose("debug", [*debug_run(tiny_backbone, real_data, tmp_path), *JOINT]).data, real_data).val
    assert resolve_monitor("auto", mixed) == "val/avg_mu_n"
    assert resolve_monitor("val/reward", mixed) == "val/reward"
    results = run_experiment(
        compose("debug", [*debug_run(tiny_backbone, real_data, tmp_path), *JOINT, "monitor=val/reward"])
    )
    assert results["selection"]["monitor"] == "val/reward"


def test_validation_mu_n_is_the_test_side_mu_n_per_benchmark(real_data, tiny_backbone, tmp_path):
    cfg = compose("debug", [*debug_run(tiny_backbone, real_data, tmp_path), *JOINT])
    val = make_splits(cfg.data, real_data).val
    candidates = list(cfg.data.candidates)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(len(val), len(candidates)))
    result = validation_mu_n(val, scores, candidates)
    by_bench: dict[str, list[int]] = {}
    for i, e in enumerate(val):
        by_bench.setdefault(e.benchmark, []).append(i)
    expected = evaluate_scores(
        "x",
        {b: scores[r] for b, r in by_bench.items()},
        {b: [val[i] for i in r] for b, r in by_bench.items()},
        candidates,
        compute_lc=False,
    )
    assert result["avg_mu_n"] == pytest.approx(expected["avg_mu_n"])
    assert set(result["mu_n"]) == set(by_bench)
    oracle = np.asarray([e.scores for e in val])
    assert validation_mu_n(val, oracle, candidates)["avg_mu_n"] == pytest.approx(100.0)
