"""Routing between your own models end to end: a 3-candidate dataset → train (shrunk) → export → route → serve."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from own_dataset_kit import BEST, CANDIDATES, rows, train_mlc_router

from lightning_lookahead.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))  # the stub backend of the server tests
from stub_backend import create_stub_app, running


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLC router trained on the synthetic 3-candidate dataset (the tiny BERT of the training tests)."""
    return train_mlc_router(tmp_path_factory.mktemp("own-dataset"), rows(24), epochs=12, lr=0.003)


def test_trains_over_the_files_candidates_and_reports_its_domains(trained: Path) -> None:
    results = json.loads((trained / "results.json").read_text())
    router = results["test"][0]
    assert router["candidates"] == CANDIDATES
    assert sorted(router["results"]) == ["chat", "code", "math"]
    assert all(m["mu_n"] is not None for m in router["results"].values())
    oracle = next(r for r in results["test"] if r["router"] == "oracle")
    assert oracle["results"]["code"]["score"] == pytest.approx(9.0)  # the file's own scale
    meta = json.loads((trained / "export" / "router.json").read_text())
    assert meta["candidates"] == CANDIDATES
    table = (trained / "results.md").read_text()
    assert "mine.jsonl" in table.splitlines()[0]
    assert "| Router | code | math | chat | Avg µn |" in table  # each domain is a column, scored on its scale


def test_the_trained_router_routes_each_domain_to_its_best_candidate(trained: Path, capsys) -> None:
    prompts = {"code": "implement a stack in code 99", "math": "compute the integral of x 99", "chat": "say hello 99"}
    assert main(["route", "--checkpoint", str(trained), *prompts.values()]) == 0
    picks = [json.loads(line)["model"] for line in capsys.readouterr().out.splitlines()]
    assert picks == [BEST[d] for d in prompts]


def test_serve_forwards_to_the_users_candidates(trained: Path) -> None:
    import openai

    from lightning_lookahead.backends import Backend
    from lightning_lookahead.inference import TrainedRouter
    from lightning_lookahead.serving import create_app

    router = TrainedRouter.from_checkpoint(trained)
    with running(create_stub_app()) as stub:
        backends = {c: Backend(c, f"{stub}/{c}/v1", f"upstream-{c}") for c in CANDIDATES}
        with running(create_app(router, backends)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            reply = client.chat.completions.create(
                model="router", messages=[{"role": "user", "content": "fix this python class 7"}]
            )
            listed = sorted(m.id for m in client.models.list().data)
    assert reply.choices[0].message.content.startswith("coder-7b|")
    assert set(CANDIDATES) <= set(listed)
    scores = router.score(["fix this python class 7"])
    assert scores.shape == (1, 3) and np.isfinite(scores).all()


def test_evaluate_dataset_scores_domains_mu_n_and_the_cost_sweep(trained: Path, tmp_path: Path, capsys) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n"
        "  frontier-api: {input: 3.0, output: 15.0}\n"
        "  local-llama: {input: 0.1, output: 0.1}\n"
        "  coder-7b: {input: 0.2, output: 0.2}\n"
    )
    dataset = trained.parent / "mine.jsonl"
    args = ["evaluate", "--dataset", str(dataset), "--checkpoint", str(trained), "--router", "oracle"]
    args += ["--router", "fixed:all", "--router", "domain", "--json", str(tmp_path / "r.json")]
    args += ["--cost-sweep", str(tmp_path / "cost"), "--prices", str(prices)]
    assert main(args) == 0
    runs = json.loads((tmp_path / "r.json").read_text())
    by_name = {r["router"]: r for r in runs}
    assert {"fixed:coder-7b", "oracle", "domain"} <= set(by_name)
    trained_run = runs[0]
    assert sorted(trained_run["results"]) == ["chat", "code", "math"]
    assert trained_run["avg_mu_n"] > 50  # it learned the domain → candidate mapping
    assert by_name["oracle"]["avg_mu_n"] == pytest.approx(100.0)
    assert (tmp_path / "cost" / "cost_quality.png").is_file()
    assert "| Router | code | math | chat | Avg µn |" in capsys.readouterr().out
