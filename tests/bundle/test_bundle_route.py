"""Bundles route like the torch router (scores to 1e-5, identical decisions), without importing torch, and refuse
damaged folders with one line naming the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_bundle_inputs import real_prompts

from lightning_lookahead.bundle.router import BundleRouter
from lightning_lookahead.cli import main
from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.inference import TrainedRouter

ROOT = Path(__file__).resolve().parents[2]


#: Prepended to the subprocess scripts: imports behave as in a venv holding only the distributions named in
#: $LOOKAHEAD_ALLOWED_DISTS (with what they depend on). Any other installed package raises ModuleNotFoundError, as
#: if absent, so an optional import falls back as it would there and a required one fails the test.
_INSTALL_ONLY = """
import importlib.abc, importlib.metadata, json, os, re, sys
_allowed = set(json.loads(os.environ["LOOKAHEAD_ALLOWED_DISTS"]))
_owners = importlib.metadata.packages_distributions()
class _OnlyTheInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in _owners.get(top, ())}
        if top != "lightning_lookahead" and dists and not dists & _allowed:
            raise ModuleNotFoundError(f"No module named {top!r} (not in the simulated install)", name=top)
        return None
sys.meta_path.insert(0, _OnlyTheInstall())
"""


def _install_env(*extras: str) -> dict[str, str]:
    """The subprocess environment of ``pip install "lightning-lookahead[EXTRAS]"`` (core alone without extras)."""
    from test_packaging import installed_closure

    return {**ENV, "LOOKAHEAD_ALLOWED_DISTS": json.dumps(sorted(installed_closure(extras)))}


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("kind", ["mlm", "mlc", "routerdc"])
def test_bundle_scores_and_decisions_equal_the_torch_router(tiny_runs, bundles, kind):
    torch_router = TrainedRouter.from_checkpoint(tiny_runs[kind])
    bundle = BundleRouter(bundles[kind])
    prompts = real_prompts() * 2
    expected = torch_router.score(prompts, batch_size=4)
    got = bundle.score(prompts, batch_size=4)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert len({tuple(np.round(r, 3)) for r in expected}) > 3  # prompts really score differently
    assert [d.model for d in bundle.route(prompts)] == [d.model for d in torch_router.route(prompts)]
    cal = bundle.meta["check"]
    assert cal["agreement"] == 100.0 and cal["max_score_diff"] <= 1e-4
    assert (bundles[kind] / "calibrations.json").is_file() and (bundles[kind] / "README.md").is_file()


def test_from_pretrained_returns_the_light_router_for_a_bundle(tiny_runs, bundles):
    assert isinstance(TrainedRouter.from_pretrained(bundles["mlc"]), BundleRouter)
    assert isinstance(TrainedRouter.from_pretrained(tiny_runs["mlc"]), TrainedRouter)


_ROUTE = """
import json, sys
from lightning_lookahead.cli import main
from lightning_lookahead.costs.rules import DecisionRule
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "heavy": [m for m in ("torch", "transformers", "lightning") if m in sys.modules]}))
"""


def _cli(*args: str) -> tuple[dict, str]:
    out = subprocess.run(
        [sys.executable, "-c", _INSTALL_ONLY + _ROUTE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_install_env(),  # the core install alone: routing a bundle needs no extra
        timeout=120,
    )
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr[-2000:]
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def test_route_on_a_bundle_imports_neither_torch_nor_transformers(tiny_runs, bundles):
    prompt = "write a function to sort a list"
    status, stdout = _cli("route", "--checkpoint", str(bundles["mlm"]), prompt)
    assert status == {"rc": 0, "heavy": []}
    decision = json.loads(stdout)
    expected = TrainedRouter.from_checkpoint(tiny_runs["mlm"]).route([prompt])[0]
    assert decision["model"] == expected.model
    assert decision["scores"] == pytest.approx(expected.scores, abs=1e-5)
    # a calibration copied into the bundle applies without torch too
    status, stdout = _cli("route", "--checkpoint", str(bundles["mlm"]), "--calibration", "cheap", prompt)
    assert status == {"rc": 0, "heavy": []}
    costs = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    rule = DecisionRule("penalty", lam=0.05)
    want = TrainedRouter.from_checkpoint(tiny_runs["mlm"]).route([prompt], rule=rule, costs=costs)
    assert json.loads(stdout)["model"] == want[0].model


def test_int8_bundle_reports_its_agreement(tiny_runs, tmp_path, capsys):
    out = tmp_path / "int8"
    assert main(["export", str(tiny_runs["mlc"]), "--format", "onnx", "--quantize", "int8", "--out", str(out)]) == 0
    assert "decisions agree with the torch fp32 router" in capsys.readouterr().out
    bundle = BundleRouter(out)
    assert bundle.engine == "onnx-int8" and bundle.meta["precision"] == "int8"
    check = bundle.meta["check"]
    assert 0 < check["max_score_diff"] < 0.5 and check["agreement"] >= 75.0  # quantised: close, not equal
    fp32 = BundleRouter(tiny_runs["mlc"] / "bundle").score(real_prompts())
    assert np.abs(bundle.score(real_prompts()) - fp32).max() > 1e-6


def test_clm_run_is_refused_and_nothing_is_written(tmp_path, capsys):
    run = tmp_path / "clm_run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "c", "model": {"kind": "clm"}}), encoding="utf-8")
    assert main(["export", str(run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'clm'" in err and "--format onnx" in err
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


def _damaged(bundles, tmp_path, how: str) -> tuple[Path, str]:
    folder = tmp_path / how
    shutil.copytree(bundles["mlm"], folder)
    if how == "missing":
        (folder / "tokenizer.json").unlink()
        return folder, "tokenizer.json"
    if how == "truncated":
        data = (folder / "model.onnx").read_bytes()
        (folder / "model.onnx").write_bytes(data[: len(data) // 2])
        return folder, "model.onnx"
    if how == "newer":
        meta = json.loads((folder / "router.json").read_text())
        meta["format_version"] = 99
        (folder / "router.json").write_text(json.dumps(meta))
        return folder, "router.json"
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["model"]["vocab"]["zzzz"] = len(tok["model"]["vocab"]) + 100
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    return folder, "tokenizer.json"


@pytest.mark.parametrize(
    ("how", "says"),
    [("missing", "missing"), ("truncated", "truncated"), ("newer", "newer"), ("hash", "vocabulary hash")],
)
def test_damaged_bundles_are_refused_in_one_line(bundles, tmp_path, capsys, how, says):
    folder, name = _damaged(bundles, tmp_path, how)
    assert main(["route", "--checkpoint", str(folder), "sort the list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(folder / name) in err and says in err


_SERVE = """
import json, sys, time
from fastapi.testclient import TestClient
from lightning_lookahead.serving import ServeSpec
from lightning_lookahead.serving.app import create_app
from lightning_lookahead.serving.launch import load_router
loaded = load_router(ServeSpec(checkpoint=sys.argv[1], backends=sys.argv[2]))
with TestClient(create_app(loader=lambda: loaded)) as client:
    deadline = time.monotonic() + 20
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    health = client.get("/health").json()
heavy = [m for m in ("torch", "transformers", "lightning") if m in sys.modules]
kind = health["router_kind"]
router = type(loaded.router).__name__
print(json.dumps({"router": router, "models": models, "kind": kind, "heavy": heavy}))
"""


def test_serve_workers_load_a_bundle_without_torch(bundles):
    backends = str(ROOT / "examples" / "backends.yaml")
    out = subprocess.run(
        [sys.executable, "-c", _INSTALL_ONLY + _SERVE, str(bundles["mlm"]), backends],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_install_env("serve"),  # a serving replica: pip install "lightning-lookahead[serve]", no torch
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["router"] == "BundleRouter" and got["kind"] == "mlm" and got["heavy"] == []
    assert got["models"][:2] == ["router", "router:cheap"]  # the calibration the bundle carries
