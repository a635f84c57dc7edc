"""`lookahead evaluate --cost-sweep` on the fixture tree, and the W&B image logged after training."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from lightning_lookahead.cli import main
from lightning_lookahead.costs.report import log_cost_curve
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_CACHE_DIR", str(tmp_path / "cache"))


def _avg(results: dict) -> float:
    """The evaluate table's "Avg": AlpacaEval raw WR, Arena-Hard, MT-Bench ×10 and the four accuracies."""
    r = results
    values = [r["AlpacaEval"]["win_rate"], r["ArenaHard"]["score"], 10 * r["MT-Bench"]["score"]]
    values += [r[b]["accuracy"] for b in ("GSM8k", "MATH", "HumanEval", "MBPP")]
    return sum(values) / len(values)


def test_cost_sweep_cli_on_fixtures(tmp_path, capsys):
    out = tmp_path / "cost"
    args = ["evaluate", "--data-dir", str(FIXTURES), "--router", "oracle", "--router", "fixed:all", "--no-lc"]
    assert main([*args, "--json", str(tmp_path / "r.json"), "--cost-sweep", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AUC / oracle" in printed and "minilm tokenizer" in printed
    assert (out / "cost_quality.png").read_bytes().startswith(b"\x89PNG")
    assert "## Points" in (out / "cost_quality.md").read_text()
    sweep = json.loads((out / "cost_quality.json").read_text())
    table = {run["router"]: _avg(run["results"]) for run in json.loads((tmp_path / "r.json").read_text())}
    curves = {c["router"]: c for c in sweep["curves"]}
    assert set(curves) == {"oracle", "random:0", *(f"fixed:{m}" for m in PAPER_CANDIDATES)}
    for router, avg in table.items():  # the sweep's argmax point is the evaluate table's average
        assert curves[router]["points"][0]["quality"] == pytest.approx(avg, abs=1e-9), router
    assert curves["oracle"]["auc"] == pytest.approx(1.0)
    assert sweep["best_single"] == max((r for r in table if r.startswith("fixed:")), key=table.get)


def test_prices_missing_a_candidate_is_one_line_exit_2(tmp_path, capsys):
    prices = tmp_path / "p.yaml"
    prices.write_text("models:\n  Yi-1.5-34B-Chat: {input: 1, output: 1}\n")
    args = ["evaluate", "--data-dir", str(FIXTURES), "--benchmarks", "GSM8k", "--prices", str(prices)]
    assert main([*args, "--cost-sweep", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert str(prices) in err and "'internlm2_5-20b-chat'" in err
    assert not (tmp_path / "out").exists()
    assert main(args) == 2
    assert "--prices only applies with --cost-sweep" in capsys.readouterr().err


class FakeWandb(WandbLogger):
    """Records what would go to W&B, without starting a run."""

    def __init__(self):
        self.images, self.metrics = [], []

    def log_image(self, key, images, step=None, **kwargs):
        self.images.append((key, images))

    def log_metrics(self, metrics, step=None):
        self.metrics.append(metrics)


def _run_dir(tmp_path: Path) -> tuple[Path, dict[str, list[RoutingExample]]]:
    from lightning_lookahead.data.benchmarks import load_benchmark

    examples = {"GSM8k": load_benchmark("GSM8k", FIXTURES, PAPER_CANDIDATES)}
    n = len(examples["GSM8k"])
    np.savez(
        tmp_path / "scores.npz",
        **{
            "test/GSM8k/scores": np.random.default_rng(0).normal(size=(n, 5)),
            "test/GSM8k/prompt_ids": np.array([e.prompt_id for e in examples["GSM8k"]]),
        },
    )
    return tmp_path, examples


def test_log_cost_curve_logs_the_png_to_wandb_only(tmp_path):
    run_dir, examples = _run_dir(tmp_path)
    assert log_cost_curve([CSVLogger(str(tmp_path))], run_dir, examples, PAPER_CANDIDATES, "mlm") is None
    assert not (run_dir / "cost").exists()
    wandb = FakeWandb()
    result = log_cost_curve([wandb], run_dir, examples, PAPER_CANDIDATES, "mlm")
    assert result is not None and result.curve("mlm").role == "router"
    ((key, images),) = wandb.images
    assert key == "test/cost_quality" and Path(images[0]).read_bytes().startswith(b"\x89PNG")
    assert "test/cost_auc" in wandb.metrics[0]


def test_log_cost_curve_says_in_one_info_line_when_the_price_table_misses_candidates(tmp_path, info_lines):
    """Training over one's own models (not in the price table) ends with a plain info line, not a warning."""
    run_dir, examples = _run_dir(tmp_path)
    prices = tmp_path / "p.yaml"
    prices.write_text("models:\n  Yi-1.5-34B-Chat: {input: 1, output: 1}\n")
    wandb = FakeWandb()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert log_cost_curve([wandb], run_dir, examples, PAPER_CANDIDATES, "mlm", prices=prices) is None
    seen = info_lines
    (line,) = [m for m in seen if "cost–quality curve not logged" in m]
    assert f"{prices} has no price for 'internlm2_5-20b-chat'" in line and "--prices FILE" in line
    assert "\n" not in line
    assert wandb.images == []


def test_log_cost_curve_warns_instead_of_failing(tmp_path):
    run_dir, examples = _run_dir(tmp_path)
    (run_dir / "scores.npz").write_bytes(b"not an npz file")
    wandb = FakeWandb()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert log_cost_curve([wandb], run_dir, examples, PAPER_CANDIDATES, "mlm") is None
    assert any("cost–quality curve not logged" in str(w.message) for w in caught)
    assert wandb.images == []
