"""The rest of a bundle's runtime on the core install (no torch): ``calibrate`` fits the same knob the torch router
fits, bulk ``route --file --out`` writes the torch router's decisions and resumes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from test_bundle_inputs import real_prompts
from test_bundle_route import _INSTALL_ONLY, _ROUTE, ROOT, _install_env

from lightning_lookahead.bundle.router import BundleRouter
from lightning_lookahead.cli import main
from lightning_lookahead.costs.calibrate_log import serve_costs
from lightning_lookahead.data.lengths import feature_length, longest_first
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import TrainedRouter
from lightning_lookahead.inference.bulk.parts import Parts
from lightning_lookahead.inference.calibrations import load_calibrations


def _core(*args: str) -> tuple[dict, subprocess.CompletedProcess]:
    """``lookahead ARGS`` in a subprocess that sees only the core install; its status and the process."""
    out = subprocess.run(
        [sys.executable, "-c", _INSTALL_ONLY + _ROUTE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_install_env(),
        timeout=180,
    )
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr[-2000:]
    return json.loads(lines[-1]), out


@pytest.fixture
def prompt_log(tmp_path):
    prompts = real_prompts() * 8  # enough for calibrate's held-out part (≥ 10)
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    return path, prompts


def test_calibrate_a_bundle_without_torch_fits_what_the_torch_router_fits(tiny_runs, bundles, prompt_log, tmp_path):
    log, prompts = prompt_log
    bundle, run = tmp_path / "bundle", tmp_path / "run"
    shutil.copytree(bundles["mlc"], bundle)
    shutil.copytree(tiny_runs["mlc"], run)
    # Prices that make the argmax's favourite expensive, so a budget below the argmax's cost is reachable.
    torch_router = TrainedRouter.from_checkpoint(run)
    argmax = torch_router.score(prompts).argmax(axis=1)
    favourite = PAPER_CANDIDATES[int(np.bincount(argmax).argmax())]
    prices = tmp_path / "prices.yaml"
    table = {c: {"input": 1.0, "output": 100.0 if c == favourite else 10.0} for c in PAPER_CANDIDATES}
    prices.write_text(yaml.safe_dump({"models": table}), encoding="utf-8")
    costs, _ = serve_costs(PAPER_CANDIDATES, torch_router.response_tokens, None, prices, None)
    target = (costs.min() + costs[argmax].mean()) / 2
    args = ["--prompts", str(log), "--prices", str(prices), "--target-cost", f"{target:.6g}", "--name", "half"]
    status, done = _core("calibrate", "--checkpoint", str(bundle), *args)
    assert status == {"rc": 0, "heavy": []}, done.stderr[-2000:]
    assert "wrote calibration 'half'" in done.stdout
    assert main(["calibrate", "--checkpoint", str(run), *args, "--engine", "fp32"]) == 0
    light = load_calibrations(bundle, PAPER_CANDIDATES)["half"]
    heavy = load_calibrations(run, PAPER_CANDIDATES)["half"]
    assert light.decision.rule == heavy.decision.rule == "penalty"
    assert light.decision.lam > 0 and light.decision.lam == pytest.approx(heavy.decision.lam, rel=1e-3)
    held = (light.achieved["heldout"], heavy.achieved["heldout"])
    assert held[0]["shares"] == held[1]["shares"] and held[0]["mean_cost"] == held[1]["mean_cost"]
    assert "cheap" in load_calibrations(bundle, PAPER_CANDIDATES)  # the bundle's own calibration is kept

    status, routed = _core("route", "--checkpoint", str(bundle), "--calibration", "half", "write a sort function")
    assert status == {"rc": 0, "heavy": []}, routed.stderr[-2000:]


def test_bulk_route_of_a_bundle_writes_the_torch_decisions_and_resumes(
    tiny_runs, bundles, prompt_log, tmp_path, monkeypatch
):
    log, prompts = prompt_log
    out = tmp_path / "routed.jsonl"
    argv = ["route", "--checkpoint", str(bundles["mlm"]), "--file", str(log), "--out", str(out), "--shard-size", "16"]
    status, done = _core(*argv)
    assert status == {"rc": 0, "heavy": []}, done.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [d["prompt_index"] for d in lines] == list(range(len(prompts)))
    expected = TrainedRouter.from_checkpoint(tiny_runs["mlm"]).route(prompts)
    assert [d["model"] for d in lines] == [d.model for d in expected]
    assert len({d["model"] for d in lines}) > 1  # the tiny router really tells prompts apart

    # Interrupted after its first shard, the run resumes from the parts it kept and writes the same bytes.
    whole, out2 = out.read_bytes(), tmp_path / "again.jsonl"
    write = Parts.write

    def one_shard_then_stop(self, shard, text):
        if self.done():
            raise KeyboardInterrupt
        write(self, shard, text)

    monkeypatch.setattr(Parts, "write", one_shard_then_stop)
    assert main([*argv[:-4], "--out", str(out2), "--shard-size", "16"]) == 130  # as Ctrl-C
    assert len(list((tmp_path / "again.jsonl.parts").glob("0*.jsonl"))) == 1 and not out2.exists()
    status, resumed = _core(*argv[:-4], "--out", str(out2), "--shard-size", "16")
    assert status == {"rc": 0, "heavy": []} and "resuming" in resumed.stderr
    assert out2.read_bytes() == whole


def test_bulk_route_of_a_bundle_refuses_several_processes(bundles, prompt_log, tmp_path, capsys):
    log, _ = prompt_log
    out = tmp_path / "routed.jsonl"
    argv = ["route", "--checkpoint", str(bundles["mlc"]), "--file", str(log), "--out", str(out), "--devices", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an ONNX bundle" in err[0] and "drop --devices" in err[0]
    assert not out.exists() and not (tmp_path / "routed.jsonl.parts").exists()


def test_calibrate_refuses_a_hub_id_before_loading_anything(capsys):
    assert main(["calibrate", "--checkpoint", "acme/tiny-router", "--prompts", "log.jsonl", "--target-cost", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "acme/tiny-router does not exist; if it is a Hub id" in err[0]
    assert "--local-dir DIR" in err[0]


@pytest.mark.parametrize("kind", ["mlm", "mlc"])
def test_both_routers_batch_prompts_in_the_same_order(tiny_runs, bundles, kind):
    prompts = real_prompts()
    torch_rows = TrainedRouter.from_checkpoint(tiny_runs[kind]).featurize_prompts(prompts)
    bundle_rows = BundleRouter(bundles[kind]).featurize_prompts(prompts)
    order = longest_first(torch_rows)
    assert order == longest_first(bundle_rows) and order != list(range(len(prompts)))
    lengths = [feature_length(torch_rows[i]) for i in order]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
