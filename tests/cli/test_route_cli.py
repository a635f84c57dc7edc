"""`lookahead route`, `lookahead export` and `lookahead evaluate --checkpoint` on a tiny, untrained router."""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_models import save_tiny_bert

from lightning_lookahead.cli import main
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE
from lightning_lookahead.models.registry import build_predictor
from lightning_lookahead.typed import config_to_dict

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"
WORDS = "def return list sort sum count write function number value story cat dog solve equation".split()
PROMPTS = ["write a function to sort a list", "tell a story about a cat", "solve the equation", "count"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding only an export of a freshly initialised MLC router (no training needed)."""
    root = tmp_path_factory.mktemp("route-cli")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", WORDS, dropout=0.0)
    torch.manual_seed(0)
    predictor = build_predictor({"kind": "mlc", "backbone": str(backbone), "max_length": 64}, PAPER_CANDIDATES)
    run = root / "run"
    export_router(predictor, run / "export", name="tiny_mlc")
    # What Lightning wrote before networks were separate modules, minus the trainer state: the network's keys at the
    # top level. Enough for the weights_only fallback and `lookahead export`, and old checkpoints keep loading.
    (run / "checkpoints").mkdir()
    hparams = {"model": config_to_dict(predictor.config), "candidates": list(PAPER_CANDIDATES)}
    state = {"hyper_parameters": hparams, "state_dict": predictor.network.state_dict()}
    torch.save(state, run / "checkpoints/best.ckpt")
    return run


def _decisions(text: str) -> list[dict]:
    rows = [json.loads(line) for line in text.splitlines()]
    for row in rows:
        assert set(row) == {"prompt_index", "model", "index", "scores", "probabilities"}
        assert row["model"] == PAPER_CANDIDATES[row["index"]] == max(row["scores"], key=row["scores"].get)
        for name, score in row["scores"].items():
            assert row["probabilities"][name] == pytest.approx(1 / (1 + math.exp(-score)))
    return rows


def test_route_prompts_given_as_arguments(run_dir, capsys):
    assert main(["route", "--checkpoint", str(run_dir), *PROMPTS, "--batch-size", "3"]) == 0
    rows = _decisions(capsys.readouterr().out)
    assert [r["prompt_index"] for r in rows] == [0, 1, 2, 3]
    expected = TrainedRouter.from_checkpoint(run_dir, engine=DEFAULT_ENGINE).score(PROMPTS)  # route's default
    got = np.array([[r["scores"][c] for c in PAPER_CANDIDATES] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_route_reads_plain_and_json_lines_files_and_writes_out(run_dir, tmp_path, capsys):
    plain = tmp_path / "prompts.txt"
    plain.write_text("\n".join(PROMPTS[:2]) + "\n\n")
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("".join(json.dumps({"prompt": p, "id": i}) + "\n" for i, p in enumerate(PROMPTS[:2])))
    outputs = []
    for source in (plain, jsonl):
        out = tmp_path / f"{source.stem}{source.suffix}.out"
        assert main(["route", "--checkpoint", str(run_dir), "--file", str(source), "--out", str(out)]) == 0
        outputs.append(_decisions(out.read_text()))
        assert "wrote 2 routing decisions" in capsys.readouterr().err
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2
    multi = tmp_path / "multi.jsonl"
    multi.write_text(json.dumps({"prompt": "first line\nsecond line"}) + "\n")
    assert main(["route", "--checkpoint", str(run_dir), "--file", str(multi)]) == 0
    assert len(_decisions(capsys.readouterr().out)) == 1


def test_route_reads_stdin(run_dir, monkeypatch, capsys):
    for args in ([], ["-"]):
        monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(PROMPTS) + "\n"))
        assert main(["route", "--checkpoint", str(run_dir), *args]) == 0
        assert len(_decisions(capsys.readouterr().out)) == len(PROMPTS)


def test_route_as_a_subprocess_pipes_json_lines(run_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_lookahead.cli", "route", "--checkpoint", str(run_dir / "export")],
        input="sort a list\nwrite a story\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["prompt_index"] for r in _decisions(proc.stdout)] == [0, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "{tmp}/missing", "x"], "does not exist"),
        (["--checkpoint", "{tmp}", "x"], "holds no router"),
        (["--checkpoint", "{run}", "--file", "{tmp}/nope.txt"], "not found"),
        (["--checkpoint", "{run}", "--file", "{tmp}/bad.jsonl"], "bad.jsonl:2"),
        (["--checkpoint", "{run}", "--file", "{tmp}/empty.txt"], "no prompts"),
        (["--checkpoint", "{run}", "--file", "{tmp}/bad.jsonl", "x"], "not both"),
        (["--checkpoint", "{run}", "--rule", "penalty", "--lam", "1", "x"], "pass --output-tokens N"),
    ],
)
def test_route_errors_are_one_line_and_exit_2(run_dir, tmp_path, capsys, args, message):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{"text": "no prompt key"}\n')
    (tmp_path / "empty.txt").write_text("\n\n")
    argv = ["route", *(a.format(tmp=tmp_path, run=run_dir) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_route_with_a_cost_rule_prefers_cheap_candidates(run_dir, capsys):
    args = ["route", "--checkpoint", str(run_dir), *PROMPTS, "--rule", "penalty", "--output-tokens", "1000"]
    assert main([*args, "--lam", "1000"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Shipped prices: the two 7–8B models cost least (0.20 USD per 1M tokens); with a huge λ only they are picked.
    assert {r["model"] for r in rows} <= {"Llama-3.1-8B-Instruct", "Qwen2.5-Coder-7B-Instruct"}


def test_cost_rules_default_to_the_response_lengths_recorded_in_the_export(run_dir, tmp_path, capsys):
    lengths = {name: 100_000.0 for name in PAPER_CANDIDATES} | {"Phi-3-medium-4k-instruct": 1.0}
    run = tmp_path / "run"
    export_router(
        TrainedRouter.from_checkpoint(run_dir).predictor, run / "export", name="tiny", response_tokens=lengths
    )
    assert TrainedRouter.from_checkpoint(run).response_tokens == lengths
    assert main(["route", "--checkpoint", str(run), *PROMPTS, "--rule", "penalty", "--lam", "1000"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Phi-3 is not among the cheapest per token, but its recorded responses are 10^5 times shorter.
    assert {r["model"] for r in rows} == {"Phi-3-medium-4k-instruct"}


def test_export_command_rebuilds_the_export_from_a_checkpoint(run_dir, tmp_path, capsys):
    out = tmp_path / "re-export"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert "exported the mlc router" in capsys.readouterr().out
    meta = json.loads((out / "router.json").read_text())
    assert meta["kind"] == "mlc" and meta["source_checkpoint"].endswith("checkpoints/best.ckpt")
    card = (out / "README.md").read_text(encoding="utf-8")  # the torch export is a Hub-style folder too
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "lightning-lookahead" and "llm-router" in front["tags"]
    assert all(name in card for name in PAPER_CANDIDATES)
    np.testing.assert_allclose(
        TrainedRouter.from_checkpoint(out).score(PROMPTS),
        TrainedRouter.from_checkpoint(run_dir).score(PROMPTS),
        atol=1e-6,
    )
    assert main(["export", str(tmp_path)]) == 2
    assert "checkpoints/best.ckpt does not exist" in capsys.readouterr().err


def test_evaluate_checkpoint_adds_one_row_per_run_beside_baselines(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--data-dir", str(FIXTURE_DATA), "--benchmarks", "HumanEval,MBPP"]
    argv += ["--checkpoint", str(run_dir), "--router", "oracle", "--json", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    runs = json.loads(out.read_text())
    assert [r["router"] for r in runs] == ["tiny_mlc", "oracle"]
    assert "| tiny_mlc |" in table
    from lightning_lookahead.data.benchmarks import load_benchmark
    from lightning_lookahead.metrics.benchmarks import decide

    items = load_benchmark("HumanEval", FIXTURE_DATA, PAPER_CANDIDATES)
    picks = decide(TrainedRouter.from_checkpoint(run_dir).score([e.prompt for e in items]))
    expected = 100 * np.mean([items[i].scores[j] for i, j in enumerate(picks)])
    assert runs[0]["results"]["HumanEval"]["accuracy"] == pytest.approx(expected)


def test_evaluate_checkpoint_rejects_a_foreign_candidate_pool(run_dir, capsys):
    argv = ["evaluate", "--data-dir", str(FIXTURE_DATA), "--benchmarks", "HumanEval", "--checkpoint", str(run_dir)]
    argv += ["--candidates", ",".join(PAPER_CANDIDATES[:3])]
    assert main(argv) == 2
    assert "was trained on candidates" in capsys.readouterr().err


def test_run_config_that_disagrees_is_reported(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir / "export", run / "export")
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "x", "model": {"kind": "mlm"}}))
    assert main(["route", "--checkpoint", str(run), "x"]) == 2
    assert "trains a 'mlm' router" in capsys.readouterr().err
