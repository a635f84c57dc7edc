"""The legends under the results tables describe only the benchmarks or domains the tables show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from own_dataset_kit import rows, write_jsonl

from lightning_lookahead.data.dataset_file import read_dataset
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.evaluation import evaluate_router, markdown_table, validation_mu_n
from lightning_lookahead.routers.base import FixedRouter, OracleRouter

PAPER_WORDS = ("AlpacaEval", "Arena-Hard", "MT-Bench", "gpt-4", "GSM8k", "HumanEval", "pass@1", "accuracy")
FILE_SCALE = "mean raw score of the chosen candidate on the file's scale"


def _own_runs(tmp_path: Path) -> tuple[list[dict], list[RoutingExample], list[str]]:
    data = read_dataset(write_jsonl(tmp_path / "mine.jsonl", rows(6)))
    by_domain: dict[str, list[RoutingExample]] = {}
    for example in data.examples:
        by_domain.setdefault(example.benchmark, []).append(example)
    candidates = list(data.candidates)
    runs = [evaluate_router(r, by_domain, candidates) for r in (OracleRouter(), FixedRouter(candidates[0]))]
    return runs, data.examples, candidates


def _legend(table: str) -> str:
    return "\n".join(line for line in table.splitlines() if not line.startswith("|"))


def test_an_own_dataset_table_explains_its_domains_only(tmp_path: Path) -> None:
    runs, _, _ = _own_runs(tmp_path)
    legend = _legend(markdown_table(runs))
    assert f"domains code, math, chat: {FILE_SCALE}" in legend
    assert "Avg µn: mean µn over the domains" in legend
    assert not [word for word in PAPER_WORDS if word in legend], legend


def test_a_paper_table_explains_only_the_benchmarks_present() -> None:
    items = {
        bench: [RoutingExample(f"{bench}-{i}", "p", ("a", "b"), (float(i % 2), 1.0 - i % 2), bench) for i in range(4)]
        for bench in ("HumanEval", "MBPP")
    }
    legend = _legend(markdown_table([evaluate_router(OracleRouter(), items, ["a", "b"])]))
    assert "HumanEval, MBPP: pass@1 (%)" in legend
    assert not [word for word in ("AlpacaEval", "Arena-Hard", "MT-Bench", "GSM8k", "file's scale") if word in legend]


def test_results_md_of_an_own_dataset_run_names_no_paper_benchmark(tmp_path: Path) -> None:
    from lightning_lookahead.training.report import results_markdown, validation_rows

    runs, examples, candidates = _own_runs(tmp_path)
    val = examples[:9]
    scores = np.random.default_rng(0).normal(size=(len(val), len(candidates)))
    results = {
        "experiment": "cpu_mlm_code_mine",
        "family": "code",
        "protocol": "paper",
        "dataset": str(tmp_path / "mine.jsonl"),
        "validation": validation_rows(val, scores, candidates, "cpu_mlm_code_mine"),
        "validation_mu_n": validation_mu_n(val, scores, candidates),
        "selection": None,
        "validation_loss": None,
        "test": runs,
        "timing": {"train_seconds": None, "route_seconds": 0.0, "routed_prompts": 0},
    }
    text = results_markdown(results)
    assert text.splitlines()[0] == f"# cpu_mlm_code_mine (dataset {tmp_path / 'mine.jsonl'}, domains code, math, chat)"
    assert FILE_SCALE in text
    prose = _legend(text)
    assert not [word for word in PAPER_WORDS if word in prose], prose
