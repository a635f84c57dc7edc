"""`lookahead route --file LOG --out OUT`: sharded, resumable bulk routing on one process and on two (DDP, gloo)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_bert

from lightning_lookahead.cli import main
from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.inference.bulk import run as bulk_run
from lightning_lookahead.inference.bulk.source import read_shard, scan
from lightning_lookahead.inference.calibrations import Calibration, save_calibration
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE
from lightning_lookahead.inference.prompts import parse_prompts
from lightning_lookahead.models.registry import build_predictor

ROOT = Path(__file__).resolve().parents[2]
WORDS = "def return list sort sum count write function number value story cat dog solve equation".split()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding an export of a freshly initialised MLC router over a tiny BERT."""
    root = tmp_path_factory.mktemp("bulk-route")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", WORDS, dropout=0.0)
    torch.manual_seed(0)
    predictor = build_predictor({"kind": "mlc", "backbone": str(backbone), "max_length": 64}, PAPER_CANDIDATES)
    export_router(predictor, root / "run" / "export", name="tiny_mlc")
    return root / "run"


def _prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 24))) for _ in range(n)]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Eleven JSON-lines prompts of varied length with a blank line in the middle (skipped, as `route` does)."""
    path = tmp_path / "log.jsonl"
    lines = [json.dumps({"prompt": p, "id": i}) for i, p in enumerate(_prompts(11))]
    path.write_text("\n".join(lines[:5] + [""] + lines[5:]) + "\n")
    return path


def _bulk(run_dir: Path, log: Path, out: Path, *extra: str) -> int:
    argv = ["route", "--checkpoint", str(run_dir), "--file", str(log), "--out", str(out), "--batch-size", "3"]
    return main([*argv, "--shard-size", "4", *extra])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_process_routes_in_shards_like_route_does(run_dir, log, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert _bulk(run_dir, log, out) == 0
    assert "wrote 11 routing decisions" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl.parts").exists()
    rows = _rows(out)
    prompts = [json.loads(line)["prompt"] for line in log.read_text().splitlines() if line]
    expected = TrainedRouter.from_checkpoint(run_dir, engine=DEFAULT_ENGINE).route(prompts, batch_size=3)
    assert [r["prompt_index"] for r in rows] == list(range(11))
    assert [r["model"] for r in rows] == [d.model for d in expected]
    for row, decision in zip(rows, expected, strict=True):
        assert row["scores"] == pytest.approx(decision.scores, abs=1e-6)
    # One shard holding the whole log: the bytes `route` writes to stdout for the same prompts.
    whole = tmp_path / "whole.jsonl"
    assert _bulk(run_dir, log, whole, "--shard-size", "4096") == 0
    assert main(["route", "--checkpoint", str(run_dir), "--file", str(log), "--batch-size", "3"]) == 0
    assert capsys.readouterr().out == whole.read_text()


_SHARD_TEXT = bulk_run.shard_text


def _interrupt_after(monkeypatch, shards: int) -> list[int]:
    """Make routing die (like Ctrl-C or a kill) when shard number ``shards`` starts; returns the shards begun."""
    real, begun = _SHARD_TEXT, []

    def dying(routing, log, shard, on_batch):
        begun.append(shard)
        if len(begun) > shards:
            raise KeyboardInterrupt
        return real(routing, log, shard, on_batch)

    monkeypatch.setattr(bulk_run, "shard_text", dying)
    return begun


def test_a_killed_run_resumes_and_routes_only_the_missing_shards(run_dir, log, tmp_path, monkeypatch, capsys):
    reference = tmp_path / "reference.jsonl"
    assert _bulk(run_dir, log, reference) == 0
    out = tmp_path / "out.jsonl"
    _interrupt_after(monkeypatch, 1)
    assert _bulk(run_dir, log, out) == 130
    parts = tmp_path / "out.jsonl.parts"
    assert not out.exists() and sorted(p.name for p in parts.iterdir()) == ["00000.jsonl", "manifest.json"]
    assert "1 of 3 shards are kept in" in capsys.readouterr().err
    begun = _interrupt_after(monkeypatch, 99)
    assert _bulk(run_dir, log, out) == 0
    assert begun == [1, 2]
    assert "1 of 3 shards already routed, 7 prompts to go" in capsys.readouterr().err
    assert out.read_bytes() == reference.read_bytes() and not parts.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("input", "a different input file"),
        ("batch", "different routing settings (batch_size 3 vs 5)"),
        ("shard", "a different --shard-size (4 vs 3)"),
        ("router", "a different router (sha256"),
    ],
)
def test_parts_of_another_run_are_refused_until_restart(run_dir, log, tmp_path, monkeypatch, capsys, change, message):
    out = tmp_path / "out.jsonl"
    _interrupt_after(monkeypatch, 1)
    assert _bulk(run_dir, log, out) == 130
    monkeypatch.undo()
    router, extra = run_dir, []
    if change == "input":
        log.write_text(log.read_text() + json.dumps({"prompt": "one more"}) + "\n")
    elif change == "batch":
        extra = ["--batch-size", "5"]
    elif change == "shard":
        extra = ["--shard-size", "3"]
    else:
        torch.manual_seed(1)
        predictor = TrainedRouter.from_checkpoint(run_dir).predictor
        torch.nn.init.normal_(next(predictor.network.parameters()))
        export_router(predictor, tmp_path / "other" / "export", name="tiny_mlc")
        router = tmp_path / "other"
    capsys.readouterr()
    assert _bulk(router, log, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err and "remove" in err and "out.jsonl.parts or pass --restart" in err
    assert _bulk(router, log, out, *extra, "--restart") == 0
    fresh = tmp_path / "fresh.jsonl"
    assert _bulk(router, log, fresh, *extra) == 0
    assert out.read_bytes() == fresh.read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"prompt": "ok"}\n\n{"prompt": "fine"}\n{"text": "no prompt key"}\n',
            'log.jsonl:4: expected an object with a string "prompt"',
        ),
        (b'{"prompt": "ok"}\r\n{"prompt": "ok"\r\n', "log.jsonl:2: invalid JSON"),
        (b"plain prompt\n\xff\xfe broken\n", "log.jsonl:2: not UTF-8 text"),
        (b"\n  \n", "no prompts to route"),
    ],
)
def test_bad_or_empty_logs_are_one_line_errors_naming_file_and_line(run_dir, tmp_path, capsys, content, message):
    log = tmp_path / "log.jsonl"
    log.write_bytes(content)
    out = tmp_path / "out.jsonl"
    assert _bulk(run_dir, log, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "out.jsonl.parts").exists()


@pytest.mark.parametrize(
    "content",
    [
        "é one\r\ntwo\rthree\n\n  \nfour\rfive\r\rsix\nseven",  # every line end text mode knows, blanks between
        "".join(json.dumps({"prompt": f"p{i}\nline two", "n": i}) + ("\r\n" if i % 2 else "\n") for i in range(7)),
    ],
)
def test_shards_read_back_exactly_the_prompts_route_reads(tmp_path, content):
    path = tmp_path / "log.txt"
    path.write_bytes(content.encode("utf-8"))
    with open(path, encoding="utf-8") as fh:
        expected = parse_prompts(fh, str(path))
    assert len(expected) == 7
    for shard_size in (1, 2, 3, 7, 100):
        log = scan(path, shard_size)
        assert log.prompts == 7 and log.shards == -(-7 // shard_size) and log.size == len(content.encode())
        assert [p for k in range(log.shards) for p in read_shard(log, k)] == expected


def test_cost_rules_and_calibrations_decide_per_prompt_in_bulk_as_in_memory(run_dir, log, tmp_path, capsys):
    run = tmp_path / "run"
    export_router(TrainedRouter.from_checkpoint(run_dir).predictor, run / "export", name="tiny_mlc")
    save_calibration(
        run,
        Calibration(
            "cheap", tuple(PAPER_CANDIDATES), DecisionRule("penalty", lam=0.1, costs=(5.0, 4.0, 3.0, 0.5, 0.1))
        ),
    )
    for setting in (["--rule", "penalty", "--lam", "300", "--output-tokens", "500"], ["--calibration", "cheap"]):
        out = tmp_path / "out.jsonl"
        assert _bulk(run, log, out, *setting) == 0  # 3 shards, costs computed shard by shard
        assert main(["route", "--checkpoint", str(run), "--file", str(log), "--batch-size", "3", *setting]) == 0
        in_memory = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [r["model"] for r in _rows(out)] == [r["model"] for r in in_memory]
        argmax = [max(r["scores"], key=r["scores"].get) for r in in_memory]
        assert [r["model"] for r in in_memory] != argmax  # the rule changed decisions, so the check means something


def test_devices_need_a_file_and_an_out(run_dir, log, capsys):
    assert main(["route", "--checkpoint", str(run_dir), "--file", str(log), "--devices", "2"]) == 2
    assert "pass --file LOG and --out OUT" in capsys.readouterr().err


_LIGHT = """
import sys
from lightning_lookahead.cli import main
rc = main(sys.argv[1:])
print({"rc": rc, "lightning": "lightning" in sys.modules})
"""


def test_two_processes_resume_one_and_write_its_bytes(run_dir, log, tmp_path, monkeypatch, capsys):
    """DDP through the real command line, finishing what a killed 1-process run began; then the light path check."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two processes below: the BLAS splits its sums by thread count
    try:
        reference = tmp_path / "reference.jsonl"
        assert _bulk(run_dir, log, reference) == 0
        out = tmp_path / "out.jsonl"
        _interrupt_after(monkeypatch, 1)
        assert _bulk(run_dir, log, out) == 130
    finally:
        torch.set_num_threads(torch_threads)
    argv = ["route", "--checkpoint", str(run_dir), "--file", str(log), "--out", str(out)]
    argv += ["--batch-size", "3", "--shard-size", "4", "--devices", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_lookahead.cli", *argv], capture_output=True, text=True, env=env, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""  # Lightning's banners stay quiet; the decisions are in --out
    assert "7 prompts to go" in proc.stderr and "routing 7 prompts (2 shards) on 2 processes" in proc.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert not (tmp_path / "out.jsonl.parts").exists() and not list(tmp_path.glob("**/lightning_logs"))
    # One process keeps route's light path: no Lightning import for a sharded, resumable file run either.
    light = subprocess.run(
        [sys.executable, "-c", _LIGHT, *argv[:5], "--out", str(tmp_path / "light.jsonl")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert light.stdout.strip().splitlines()[-1] == "{'rc': 0, 'lightning': False}", light.stderr[-2000:]
