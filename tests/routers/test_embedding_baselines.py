"""kNN / hard-cluster / soft-cluster baselines: known answers on hand-made embeddings, the cache, the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from routers_testkit import TableEmbedder

from lightning_lookahead.cli import main
from lightning_lookahead.data.benchmarks import load_benchmark
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample
from lightning_lookahead.data.splits import RoutingSplits, make_splits
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.embeddings import CachedEmbedder
from lightning_lookahead.routers.embedding_baselines import (
    HardClusterRouter,
    KNNRouter,
    SoftClusterRouter,
    normalized_scores,
)
from lightning_lookahead.routers.fitted import fit_and_score, fit_data_config, fit_for_evaluation
from lightning_lookahead.routers.registry import parse_router

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
CANDS = ["m0", "m1", "m2"]


def _ex(prompt: str, scores: Sequence[float]) -> RoutingExample:
    return RoutingExample(prompt, prompt, ("r",) * len(scores), tuple(scores), "t")


# Four training prompts on the unit circle, each with a distinct best model; scores on different raw scales.
TRAIN = [_ex("east", [0.0, 5.0, 10.0]), _ex("north", [2.0, 1.0, 0.0]), _ex("west", [3.0, 3.0, 3.0])]
TRAIN += [_ex("south", [1.0, 4.0, 2.0])]
VECTORS = {"east": (1.0, 0.0), "north": (0.0, 1.0), "west": (-1.0, 0.0), "south": (0.0, -1.0)}


def test_normalized_scores_are_per_prompt_min_max() -> None:
    values = normalized_scores(TRAIN)
    np.testing.assert_allclose(values, [[0, 0.5, 1], [1, 0.5, 0], [0, 0, 0], [0, 1, 1 / 3]])


def test_knn_k1_is_the_nearest_neighbour_and_kn_the_mean() -> None:
    table = {**VECTORS, "q-north-east": (0.6, 0.8), "q-west": (-0.9, 0.1)}
    values = normalized_scores(TRAIN)
    one = KNNRouter(1, TableEmbedder(table)).fit(TRAIN)
    got = one.score_matrix([_ex("q-north-east", [0, 0, 0]), _ex("q-west", [0, 0, 0])], CANDS)
    np.testing.assert_allclose(got, values[[1, 2]])  # north (0.8 > 0.6), west
    two = KNNRouter(2, TableEmbedder(table)).fit(TRAIN)
    np.testing.assert_allclose(two.score_matrix([_ex("q-north-east", [0, 0, 0])], CANDS), [values[[0, 1]].mean(0)])
    every = KNNRouter(4, TableEmbedder(table)).fit(TRAIN)
    np.testing.assert_allclose(every.score_matrix([_ex("q-west", [0, 0, 0])], CANDS), [values.mean(0)])
    assert every.fit_seconds is not None and every.n_train == 4 and every.name == "knn:4"


BLOBS = {"a0": (10.0, 1.0), "a1": (10.0, -1.0), "a2": (13.0, 0.0), "b0": (-10.0, 0.0), "b1": (-12.0, 0.0)}
BLOB_TRAIN = [_ex("a0", [1, 0, 0]), _ex("a1", [1, 1, 0]), _ex("a2", [0, 0, 1]), _ex("b0", [0, 1, 0])]
BLOB_TRAIN += [_ex("b1", [0, 0, 1])]


def test_hard_cluster_gives_each_blob_its_mean() -> None:
    table = {**BLOBS, "qa": (11.0, 0.5), "qb": (-9.0, 0.0)}
    router = HardClusterRouter(2, TableEmbedder(table)).fit(BLOB_TRAIN)
    got = router.score_matrix([_ex("qa", [0, 0, 0]), _ex("qb", [0, 0, 0])], CANDS)
    values = normalized_scores(BLOB_TRAIN)
    np.testing.assert_allclose(got, [values[:3].mean(0), values[3:].mean(0)])


def test_soft_cluster_follows_the_formula() -> None:
    table = {**BLOBS, "q": (1.0, 0.0)}
    router = SoftClusterRouter(2, TableEmbedder(table)).fit(BLOB_TRAIN)
    values = normalized_scores(BLOB_TRAIN)
    points = np.array([BLOBS[ex.prompt] for ex in BLOB_TRAIN])

    def softmax(x: np.ndarray) -> np.ndarray:
        return np.exp(x - x.max()) / np.exp(x - x.max()).sum()

    vectors, centres = [], []
    for members in ([0, 1, 2], [3, 4]):
        centre = points[members].mean(0)  # k-means centre of a well-separated blob
        weights = softmax(-np.linalg.norm(points[members] - centre, axis=1))
        vectors.append(weights @ values[members])
        centres.append(centre)
    w = softmax(-np.linalg.norm(np.array(centres) - np.array([1.0, 0.0]), axis=1))
    expected = w[0] * vectors[0] + w[1] * vectors[1]
    got = router.score_matrix([_ex("q", [0, 0, 0])], CANDS)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert not np.allclose(vectors[0], values[:3].mean(0))  # the member weighting matters in this fixture


def test_cache_is_hit_the_second_time(tmp_path: Path) -> None:
    texts = ["write a function", "solve for x"]
    first = TableEmbedder()
    cache = CachedEmbedder(first, tmp_path)
    a = cache.encode(texts)
    assert (cache.misses, cache.hits, len(first.calls)) == (1, 0, 1)
    assert cache.path(texts).is_file() and not list(tmp_path.glob("*.tmp"))

    second = TableEmbedder()
    again = CachedEmbedder(second, tmp_path)
    np.testing.assert_array_equal(again.encode(texts), a)
    assert second.calls == [] and again.hits == 1  # read from disk, encoder never called

    again.encode([*texts, "one more"])
    assert len(second.calls) == 1  # other texts: a new key
    other = TableEmbedder(name="other-encoder")
    CachedEmbedder(other, tmp_path).encode(texts)
    assert len(other.calls) == 1  # another encoder fingerprint: a new key


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("knn:0", "k must be a positive integer, got '0'"),
        ("knn:abc", "k must be a positive integer, got 'abc'"),
        ("soft_cluster:-2", "k must be a positive integer"),
        ("hard_cluster", "give k after the colon, e.g. hard_cluster:10"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(LookaheadError, match=message):
        parse_router(spec, CANDS)


def test_parse_and_k_larger_than_the_training_set() -> None:
    (router,) = parse_router("soft_cluster:8", CANDS)
    assert isinstance(router, SoftClusterRouter) and router.k == 8 and router.score_kind == "probabilities"
    router.embedder = TableEmbedder(VECTORS)
    with pytest.raises(LookaheadError, match="k = 8 exceeds the 4 training prompts"):
        router.fit(TRAIN)
    with pytest.raises(LookaheadError, match="not fitted"):
        router.score_matrix(TRAIN, CANDS)


def test_fit_and_score_returns_matrices_and_times(tmp_path: Path) -> None:
    splits = RoutingSplits(train=TRAIN, val=TRAIN[:2], test={"A": TRAIN[1:], "B": TRAIN[:1]})
    embedder = TableEmbedder(VECTORS)
    out = fit_and_score("knn:1", splits, CANDS, tmp_path, embedder=embedder)
    assert out["router"] == "knn:1" and out["n_train"] == 4 and out["routed_prompts"] == 6
    np.testing.assert_allclose(out["val"], normalized_scores(TRAIN[:2]))  # each prompt is its own neighbour
    assert {k: v.shape for k, v in out["test"].items()} == {"A": (3, 3), "B": (1, 3)}
    assert out["fit_seconds"] >= 0 and out["route_seconds"] >= 0
    # Training prompts went through the cache; routed prompts were embedded afresh (honest routing time).
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 1 and len(embedder.calls) == 4


def test_kfold_fit_never_scores_its_own_prompts() -> None:
    embedder = TableEmbedder()
    router = KNNRouter(2, embedder)
    bench = {name: load_benchmark(name, FIXTURES, PAPER_CANDIDATES) for name in ("HumanEval", "AlpacaEval")}
    where = {"family": "code", "protocol": "kfold", "fold": 1, "overrides": ["data.kfold.k=3"]}
    cfg = fit_data_config(FIXTURES, PAPER_CANDIDATES, **where)
    out = fit_for_evaluation([router], bench, cfg)
    held_out = make_splits(cfg, FIXTURES).test["HumanEval"]
    assert [e.prompt_id for e in out["HumanEval"]] == [e.prompt_id for e in held_out] and len(held_out) == 1
    assert not {e.prompt for e in held_out} & set(embedder.calls[0])  # the fit embedded training prompts only
    assert len(out["AlpacaEval"]) == len(bench["AlpacaEval"])  # outside the family: evaluated whole
    assert router.fit_info()["fold"] == 1 and router.fit_info()["protocol"] == "kfold"


def _evaluate(tmp_path: Path, tiny_mlm_dir: Path, *args: str) -> int:
    return main(
        [
            "evaluate",
            "--data-dir",
            str(FIXTURES),
            "--embedder",
            str(tiny_mlm_dir),
            "--fit-set",
            f"cache_dir={tmp_path / 'cache'}",
            "--no-lc",
            *args,
        ]
    )


def test_cli_evaluates_fitted_baselines(tmp_path: Path, tiny_mlm_dir: Path, capsys) -> None:
    out = tmp_path / "r.json"
    routers = ["--router", "knn:2", "--router", "hard_cluster:2", "--router", "soft_cluster:2", "--router", "oracle"]
    assert _evaluate(tmp_path, tiny_mlm_dir, *routers, "--benchmarks", "HumanEval,MBPP", "--json", str(out)) == 0
    printed = capsys.readouterr()
    assert "| knn:2 |" in printed.out and "| soft_cluster:2 |" in printed.out
    assert "knn:2: fitted on 2 training prompts (family code, protocol paper)" in printed.err
    runs = json.loads(out.read_text())
    assert [r["router"] for r in runs] == ["knn:2", "hard_cluster:2", "soft_cluster:2", "oracle"]
    assert runs[0]["fit"]["n_train"] == 2 and runs[0]["fit"]["family"] == "code"
    assert runs[0]["results"]["HumanEval"]["n"] == runs[3]["results"]["HumanEval"]["n"] == 3
    cached = sorted((tmp_path / "cache" / "embeddings").glob("*.npy"))
    assert len(cached) == 3  # training prompts, HumanEval, MBPP; shared by the three routers

    # kfold on the all family: every router, the oracle included, is scored on the held-out fold only.
    fold = ["--fit-family", "all", "--fit-protocol", "kfold", "--fold", "1", "--fit-set", "kfold.k=3"]
    assert _evaluate(tmp_path, tiny_mlm_dir, "--router", "knn:1", "--router", "oracle", *fold, "--json", str(out)) == 0
    runs = json.loads(out.read_text())
    assert {b: m["n"] for b, m in runs[1]["results"].items() if b != "AlpacaEval"} == {
        "ArenaHard": 1,
        "MT-Bench": 1,
        "GSM8k": 1,
        "MATH": 1,
        "HumanEval": 1,
        "MBPP": 1,
    }
    assert runs[0]["fit"] == {**runs[0]["fit"], "fold": 1, "k": 3, "protocol": "kfold"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--router", "knn:0"], "k must be a positive integer"),
        (["--router", "knn:5"], "k = 5 exceeds the 2 training prompts"),
        (["--router", "knn:1", "--fold", "1"], "--fold 1 needs --fit-protocol kfold"),
        (["--router", "knn:1", "--fit-set", "max_train_prompt=3"], "did you mean 'max_train_prompts'?"),
        (
            ["--router", "knn:1", "--fit-protocol", "kfol"],
            "data.protocol: 'kfol' is not one of paper, kfold; did you mean 'kfold'?",
        ),
        (["--router", "knn:1", "--fit-family", "maths"], "did you mean 'math'?"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, tiny_mlm_dir: Path, capsys, args: list[str], message: str) -> None:
    assert _evaluate(tmp_path, tiny_mlm_dir, "--benchmarks", "HumanEval", *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ")
    assert err.count("\n") == 1
