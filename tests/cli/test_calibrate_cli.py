"""`lookahead calibrate` end to end on a tiny, untrained router, and `route --calibration` applying its result."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from tiny_models import save_tiny_bert

from lightning_lookahead.cli import main
from lightning_lookahead.costs.calibrate import split
from lightning_lookahead.costs.request_costs import price_table_costs
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.inference.calibrations import load_calibrations
from lightning_lookahead.models.registry import build_predictor

WORDS = "def return list sort sum count write function number value story cat dog solve equation".split()
N_PROMPTS = 60


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run holding an export of a fresh MLC router, a prompt log, and a price table without input prices.

    The candidate the untrained router picks most often is made the dearest (long responses), so lowering the
    budget has to move prompts away from the argmax.
    """
    root = tmp_path_factory.mktemp("calibrate-cli")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", WORDS, dropout=0.0)
    torch.manual_seed(0)
    predictor = build_predictor({"kind": "mlc", "backbone": str(backbone), "max_length": 64}, PAPER_CANDIDATES)
    rng = np.random.default_rng(0)
    prompts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) for _ in range(N_PROMPTS)]
    log = root / "log.jsonl"
    log.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    scores = TrainedRouter(predictor).score(prompts)
    favourite = PAPER_CANDIDATES[int(np.bincount(scores.argmax(axis=1)).argmax())]
    lengths = {c: 1000.0 if c == favourite else 100.0 for c in PAPER_CANDIDATES}
    export_router(predictor, root / "run" / "export", name="tiny_mlc", response_tokens=lengths)
    # Output prices only, so `route --rule penalty` (prompt + response tokens) prices exactly as serve/calibrate do.
    prices = root / "prices.yaml"
    table = {"models": {c: {"input": 0.0, "output": 0.1 * (j + 1)} for j, c in enumerate(PAPER_CANDIDATES)}}
    prices.write_text(yaml.safe_dump(table))
    costs = price_table_costs(PAPER_CANDIDATES, lengths, prices)
    fit_idx, _ = split(N_PROMPTS, 0.2, 0)
    argmax_cost = float(costs[scores[fit_idx].argmax(axis=1)].mean())
    return {
        "run": root / "run",
        "log": log,
        "prompts": prompts,
        "prices": prices,
        "costs": costs,
        "argmax_cost": argmax_cost,
        "favourite": favourite,
    }


def _route(capsys, *args: str) -> list[str]:
    assert main(["route", *args]) == 0
    return [json.loads(line)["model"] for line in capsys.readouterr().out.splitlines()]


def test_calibrate_budget_then_share_and_route_applies_it(setup, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(setup["run"], run)
    target = 0.5 * (setup["costs"].min() + setup["argmax_cost"])
    report = tmp_path / "report.json"
    argv = ["calibrate", "--checkpoint", str(run), "--prompts", str(setup["log"]), "--prices", str(setup["prices"])]
    assert main([*argv, "--target-cost", str(target), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "held-out [95% interval]" in out and 'model "router:budget"' in out and "wrote calibration 'budget'" in out
    budget = load_calibrations(run, PAPER_CANDIDATES)["budget"]
    assert budget.decision.rule == "penalty" and budget.decision.lam > 0
    np.testing.assert_allclose(budget.costs, setup["costs"])
    assert budget.target == {"cost": target, "unit": "USD per 1,000 requests"}
    assert budget.achieved["n_fit"] == 48 and budget.achieved["n_heldout"] == 12
    full = json.loads(report.read_text())
    assert full["fitting"]["mean_cost"]["value"] <= target < full["fitting"]["argmax_cost"]["value"]
    held = full["heldout"]["mean_cost"]
    assert held["low"] <= held["value"] <= held["high"] and full["heldout"]["n"] == 12

    log = ["--checkpoint", str(run), "--file", str(setup["log"])]
    calibrated = _route(capsys, *log, "--calibration", "budget")
    by_hand = _route(
        capsys, *log, "--rule", "penalty", "--lam", repr(budget.decision.lam), "--prices", str(setup["prices"])
    )
    argmax = _route(capsys, *log)
    assert calibrated == by_hand and calibrated != argmax

    share = f"{setup['favourite']}=0.5"
    assert main([*argv, "--target-share", share, "--name", "half", "--rule", "threshold"]) == 0
    assert "router:half" in capsys.readouterr().out
    both = load_calibrations(run, PAPER_CANDIDATES)
    assert set(both) == {"budget", "half"} and both["budget"] == budget
    assert both["half"].decision.rule == "threshold" and both["half"].target == {
        "share": {"model": setup["favourite"], "p": 0.5}
    }
    fitted_share = both["half"].achieved["heldout"]["share"]
    assert fitted_share["model"] == setup["favourite"] and 0.0 <= fitted_share["value"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompts", "{tmp}/missing.jsonl", "--target-cost", "1"], "not found"),
        (["--prompts", "{tmp}/empty.txt", "--target-cost", "1"], "holds no prompts"),
        (["--prompts", "{tmp}/small.txt", "--target-cost", "1"], "too few to split"),
        (["--prompts", "{log}", "--target-share", "Yi-1.5-34B-Chat"], "expected MODEL=P"),
        (["--prompts", "{log}", "--target-share", "Nope=0.2"], "unknown candidate 'Nope'"),
        (["--prompts", "{log}", "--target-share", "Yi-1.5-34B-Chat=1.5"], "must be in [0, 1]"),
        (["--prompts", "{log}", "--target-cost", "1", "--target-share", "Yi-1.5-34B-Chat=0.2"], "exactly one"),
        (["--prompts", "{log}"], "exactly one"),
        (["--prompts", "{log}", "--target-cost", "cheap"], "expected a number ≥ 0"),
        (["--prompts", "{log}", "--target-cost", "0"], "cannot be met"),
        (["--prompts", "{log}", "--target-cost", "1", "--name", "router:x"], "must start with a letter"),
    ],
)
def test_calibrate_errors_are_one_line_exit_2_and_write_nothing(setup, tmp_path, capsys, args, message):
    run = tmp_path / "run"
    shutil.copytree(setup["run"], run)
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "small.txt").write_text("".join(f"prompt {i}\n" for i in range(20)))
    argv = ["calibrate", "--checkpoint", str(run), *(a.format(tmp=tmp_path, log=setup["log"]) for a in args)]
    assert main([*argv, "--json", str(tmp_path / "report.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (run / "calibrations.json").exists() and not (tmp_path / "report.json").exists()


def test_route_calibration_errors(setup, capsys):
    base = ["route", "--checkpoint", str(setup["run"]), "sort a list"]
    assert main([*base, "--calibration", "nope"]) == 2
    assert "no calibration 'nope'" in capsys.readouterr().err
    assert main([*base, "--calibration", "budget", "--lam", "1"]) == 2
    err = capsys.readouterr().err
    assert "drop --lam" in err and err.count("\n") == 1


def test_the_calibrate_command_imports_no_torch():
    heavy = "sorted(m for m in ('torch', 'lightning') if m in sys.modules)"
    code = f"import sys, lightning_lookahead.commands.calibrate; print({heavy})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
