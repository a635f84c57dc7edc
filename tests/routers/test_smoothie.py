"""SMOOTHIE: the triplet estimator on known noise levels, the n0 restriction, label-freeness, specs and the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from routers_testkit import TableEmbedder

from lightning_lookahead.cli import main
from lightning_lookahead.data.benchmarks import load_benchmark
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample
from lightning_lookahead.data.splits import RoutingSplits
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.fitted import fit_and_score, fit_data_config, fit_for_evaluation, parse_fitted_router
from lightning_lookahead.routers.registry import parse_router
from lightning_lookahead.routers.smoothie import (
    DEFAULT_N0,
    SmoothieRouter,
    pairwise_sq_distances,
    triplet_noise,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
CANDS = ["m0", "m1", "m2", "m3"]
DIM = 32


def synthetic(
    n: int, sigmas: Sequence[float], *, centre: np.ndarray, tag: str, seed: int
) -> tuple[list[RoutingExample], dict[str, np.ndarray]]:
    """``n`` prompts near ``centre``; candidate j's response embedding = a random latent + N(0, sigma_j²) noise."""
    rng = np.random.default_rng(seed)
    table: dict[str, np.ndarray] = {}
    examples = []
    for i in range(n):
        prompt = f"{tag}-prompt-{i}"
        table[prompt] = centre + 0.01 * rng.standard_normal(centre.shape)
        latent = rng.standard_normal(DIM)
        responses = []
        for j, sigma in enumerate(sigmas):
            text = f"{tag}-{i}-response-{j}"
            table[text] = latent + sigma * rng.standard_normal(DIM)
            responses.append(text)
        scores = tuple(float(s) for s in rng.random(len(sigmas)))  # unrelated to the noise: must not matter
        examples.append(RoutingExample(prompt, prompt, tuple(responses), scores, "t"))
    return examples, table


def unit(axis: int) -> np.ndarray:
    v = np.zeros(DIM)
    v[axis] = 1.0
    return v


SIGMAS = (0.8, 0.2, 1.2, 0.5)  # candidate 1 is the least noisy, then 3, 0, 2


def test_triplet_estimate_recovers_the_noise_levels() -> None:
    examples, table = synthetic(400, SIGMAS, centre=unit(0), tag="a", seed=0)
    x = np.stack([[table[r] for r in ex.responses] for ex in examples])
    delta = triplet_noise(pairwise_sq_distances(x).mean(axis=0))
    expected = DIM * np.square(SIGMAS)  # E‖ε_j‖² = d σ_j²
    np.testing.assert_allclose(delta, expected, rtol=0.1)
    assert list(np.argsort(delta)) == [1, 3, 0, 2]


def test_triplet_formula_on_exact_distances() -> None:
    delta = np.array([1.0, 2.0, 3.0, 4.0])
    d = delta[:, None] + delta[None, :]
    np.fill_diagonal(d, 0.0)
    np.testing.assert_allclose(triplet_noise(d), delta)
    with pytest.raises(LookaheadError, match="at least 3 candidates"):
        triplet_noise(d[:2, :2])


def test_router_routes_to_the_least_noisy_candidate() -> None:
    examples, table = synthetic(60, SIGMAS, centre=unit(0), tag="a", seed=1)
    router = SmoothieRouter(50, TableEmbedder(table, dim=DIM)).fit(examples)
    scores = router.score_matrix(examples[:5], CANDS)
    assert scores.shape == (5, 4) and (scores.argmax(axis=1) == 1).all()
    assert router.n_train == 60 and router.fit_seconds is not None and router.score_kind == "true_scores"


def test_only_the_n0_nearest_training_prompts_count() -> None:
    near_a, table_a = synthetic(30, (0.2, 0.8, 1.0), centre=unit(0), tag="a", seed=2)  # candidate 0 best near a
    near_b, table_b = synthetic(30, (1.0, 0.8, 0.2), centre=unit(1), tag="b", seed=3)  # candidate 2 best near b
    table = {**table_a, **table_b, "query-a": unit(0), "query-b": unit(1)}
    train = near_a + near_b
    queries = [RoutingExample(q, q, ("", "", ""), (0.0, 0.0, 0.0), "t") for q in ("query-a", "query-b")]
    router = SmoothieRouter(30, TableEmbedder(table, dim=DIM)).fit(train)
    scores = router.score_matrix(queries, CANDS[:3])
    assert list(scores.argmax(axis=1)) == [0, 2]
    x = np.stack([[table[r] for r in ex.responses] for ex in near_a])
    # The estimate for query-a uses exactly its 30 neighbours (cluster a), none of cluster b.
    np.testing.assert_allclose(scores[0], -triplet_noise(pairwise_sq_distances(x).mean(axis=0)), rtol=1e-5)
    everyone = SmoothieRouter(60, TableEmbedder(table, dim=DIM)).fit(train).score_matrix(queries, CANDS[:3])
    np.testing.assert_allclose(everyone[0], everyone[1])  # n0 = all: the same estimate for every prompt


def test_scores_are_never_read() -> None:
    examples, table = synthetic(40, SIGMAS, centre=unit(0), tag="a", seed=4)
    rng = np.random.default_rng(0)
    zeroed = [replace(ex, scores=(0.0,) * 4) for ex in examples]
    shuffled = [replace(ex, scores=tuple(rng.permutation(ex.scores))) for ex in examples]
    runs = [
        SmoothieRouter(10, TableEmbedder(table, dim=DIM)).fit(train).score_matrix(examples, CANDS)
        for train in (examples, zeroed, shuffled)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_the_routed_prompts_responses_are_never_read() -> None:
    examples, table = synthetic(20, SIGMAS, centre=unit(0), tag="a", seed=5)
    embedder = TableEmbedder(table, dim=DIM)
    router = SmoothieRouter(5, embedder).fit(examples)
    blank = [replace(ex, responses=("",) * 4) for ex in examples[:3]]
    np.testing.assert_array_equal(router.score_matrix(blank, CANDS), router.score_matrix(examples[:3], CANDS))
    assert all(not any("response" in t for t in call) for call in embedder.calls[2:])


def test_specs_and_errors() -> None:
    [default] = parse_router("smoothie", PAPER_CANDIDATES)
    [small] = parse_router("smoothie:7", PAPER_CANDIDATES)
    assert isinstance(default, SmoothieRouter) and default.n0 == DEFAULT_N0 and default.name == "smoothie:1000"
    assert small.n0 == 7 and small.name == "smoothie:7"
    assert parse_fitted_router("smoothie:3").name == "smoothie:3"
    for spec in ("smoothie:0", "smoothie:x", "smoothie:"):
        with pytest.raises(LookaheadError, match="n0 must be a positive integer"):
            parse_router(spec, PAPER_CANDIDATES)
    examples, table = synthetic(5, SIGMAS, centre=unit(0), tag="a", seed=6)
    with pytest.raises(LookaheadError, match="n0 = 7 exceeds the 5 training prompts"):
        SmoothieRouter(7, TableEmbedder(table, dim=DIM)).fit(examples)
    two = [replace(ex, responses=ex.responses[:2], scores=ex.scores[:2]) for ex in examples]
    with pytest.raises(LookaheadError, match="at least 3 candidates"):
        SmoothieRouter(2, TableEmbedder(table, dim=DIM)).fit(two)
    with pytest.raises(LookaheadError, match="not fitted"):
        SmoothieRouter(2).score_matrix(examples, CANDS)


def test_fit_for_evaluation_gives_it_the_shared_embedder_and_the_held_out_fold() -> None:
    [router] = parse_router("smoothie:4", PAPER_CANDIDATES)
    router.embedder = TableEmbedder(dim=DIM)
    bench = {name: load_benchmark(name, FIXTURES, PAPER_CANDIDATES) for name in ("HumanEval", "GSM8k")}
    where = {"family": "all", "protocol": "kfold", "fold": 1, "overrides": ["data.kfold.k=3"]}
    out = fit_for_evaluation([router], bench, fit_data_config(FIXTURES, PAPER_CANDIDATES, **where))
    assert router.n_train == 13 and router.fit_info()["fold"] == 1
    scores = router.score_matrix(out["HumanEval"], PAPER_CANDIDATES)
    assert scores.shape == (len(out["HumanEval"]), 5) and np.isfinite(scores).all()


def test_fit_and_score(tmp_path: Path) -> None:
    examples, table = synthetic(12, SIGMAS, centre=unit(0), tag="a", seed=7)
    splits = RoutingSplits(train=examples, val=examples[:2], test={"A": examples[2:5]})
    out = fit_and_score("smoothie:6", splits, CANDS, tmp_path, embedder=TableEmbedder(table, dim=DIM))
    assert out["router"] == "smoothie:6" and out["val"].shape == (2, 4) and out["test"]["A"].shape == (3, 4)
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 2  # training prompts and training responses


def test_cli_evaluates_smoothie(tmp_path: Path, tiny_mlm_dir: Path, capsys) -> None:
    out = tmp_path / "r.json"
    args = ["evaluate", "--data-dir", str(FIXTURES), "--embedder", str(tiny_mlm_dir), "--no-lc"]
    args += ["--fit-set", f"cache_dir={tmp_path / 'cache'}", "--fit-family", "all", "--fit-protocol", "kfold"]
    args += ["--fold", "1", "--fit-set", "kfold.k=3", "--router", "smoothie:5", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "| smoothie:5 |" in printed.out and "smoothie:5: fitted on 13 training prompts" in printed.err
    run = json.loads(out.read_text())  # one router: the object itself
    assert run["router"] == "smoothie:5" and run["fit"]["n_train"] == 13 and "avg_mu_n" in run


def test_cli_evaluates_smoothie_on_an_own_dataset(tmp_path: Path, tiny_mlm_dir: Path, monkeypatch, capsys) -> None:
    from own_dataset_kit import rows, write_jsonl

    monkeypatch.chdir(tmp_path)  # the dataset's embedding cache (.cache/lookahead) goes here

    dataset = write_jsonl(tmp_path / "mine.jsonl", rows(12))
    args = ["evaluate", "--dataset", str(dataset), "--embedder", str(tiny_mlm_dir), "--no-lc"]
    assert main([*args, "--router", "smoothie:5", "--router", "oracle"]) == 0
    printed = capsys.readouterr()
    assert "| smoothie:5 |" in printed.out and "smoothie:5: fitted on" in printed.err
