"""The router folder as a Hub repository: a model card from the run, loading a Hub id from the local cache
offline, and `lookahead push` up to the upload call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from lightning_lookahead.bundle.card import model_card
from lightning_lookahead.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _row(router: str, mu_n: dict[str, float], mu_o: dict[str, float]) -> dict:
    results = {b: {"accuracy": mu_o[b], "mu_n": mu_n[b], "mu_n_metric": "accuracy"} for b in mu_n}
    return {"router": router, "avg_mu_n": sum(mu_n.values()) / len(mu_n), "results": results}


def _results() -> dict:
    return {
        "protocol": "kfold",
        "family": "all",
        "test": [
            _row("tiny", {"GSM8k": 40.0, "MBPP": 20.0}, {"GSM8k": 88.5, "MBPP": 77.25}),
            _row("oracle", {"GSM8k": 100.0, "MBPP": 100.0}, {"GSM8k": 97.0, "MBPP": 84.0}),
            _row("random:0", {"GSM8k": 0.0, "MBPP": 0.0}, {"GSM8k": 85.0, "MBPP": 70.0}),
            _row("fixed:A", {"GSM8k": 10.0, "MBPP": 5.0}, {"GSM8k": 86.0, "MBPP": 71.0}),
            _row("fixed:B", {"GSM8k": 30.0, "MBPP": 15.0}, {"GSM8k": 87.0, "MBPP": 72.0}),
            _row("knn100", {"GSM8k": 25.0, "MBPP": 12.0}, {"GSM8k": 86.5, "MBPP": 71.5}),
        ],
    }


def test_model_card_front_matter_results_and_calibrations(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = {"name": "tiny", "data": {"protocol": "kfold", "family": "all", "kfold": {"k": 5, "fold": 2}}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "results.json").write_text(json.dumps(_results()))
    cals = {"calibrations": {"cheap": {"rule": "threshold", "tau": 0.7, "target": {"cost": 2.5}}}}
    card = model_card(name="tiny", kind="mlm", candidates=["A", "B"], backbone="minilm", run_dir=run, calibrations=cals)
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "lightning-lookahead"
    assert front["tags"] == ["llm-router", "lookahead-routing"]
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert front["candidates"] == ["A", "B"] and front["license"] is None
    rows = {line.split("|")[1].strip(): line for line in card.splitlines() if line.startswith("| ")}
    assert "88.5 / 40.0" in rows["tiny"] and "77.2 / 20.0" in rows["tiny"]  # µo / µn per benchmark
    assert "oracle" in rows and "knn100" in rows and "best single (B)" in rows  # B has the higher Avg µn
    assert "random:0" not in rows and "best single (A)" not in rows
    assert "fold 2 of 5" in card and "| cheap | threshold | τ = 0.7 |" in card


def test_bundle_readme_is_the_runs_card(bundles):
    card = (bundles["mlm"] / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: lightning-lookahead\n")
    assert "| cheap | penalty | λ = 0.05 |" in card and "agrees with the torch fp32 router on 100.0%" in card


def _hub_cache(cache: Path, repo: str, folder: Path) -> None:
    """The layout huggingface_hub's cache keeps: models--org--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)


def test_from_pretrained_loads_a_hub_id_from_the_cache_offline_without_torch(bundles, tmp_path):
    _hub_cache(tmp_path / "hub", "acme/tiny-router", bundles["mlc"])
    code = (
        "import sys, json\n"
        "from lightning_lookahead.bundle import BundleRouter\n"
        "r = BundleRouter.from_pretrained('acme/tiny-router')\n"
        "print(json.dumps({'model': r.route(['sort the list'])[0].model, 'torch': 'torch' in sys.modules}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    from lightning_lookahead.bundle.router import BundleRouter

    assert got == {"model": BundleRouter(bundles["mlc"]).route(["sort the list"])[0].model, "torch": False}
    # a Hub id absent from the cache: one line, offline
    code = (
        "from lightning_lookahead.cli import main; raise SystemExit(main(['route', '--checkpoint', 'acme/other', 'x']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "acme/other" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_push_uploads_the_bundle_folder(tiny_runs, bundles, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo, **kw: calls.append(("create", repo)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)))
    assert main(["push", str(tiny_runs["mlc"]), "--repo", "acme/tiny-router"]) == 0
    assert calls[0] == ("create", "acme/tiny-router")
    upload = calls[1][1]
    assert upload["repo_id"] == "acme/tiny-router" and Path(upload["folder_path"]) == bundles["mlc"]
    assert {"README.md", "model.onnx", "router.json", "tokenizer.json"} <= set(os.listdir(upload["folder_path"]))


def test_push_refuses_a_folder_without_a_router(tmp_path, capsys):
    assert main(["push", str(tmp_path), "--repo", "acme/x"]) == 2
    assert "holds no router folder" in capsys.readouterr().err
