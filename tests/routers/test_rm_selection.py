"""Reward-model selection (upper bound): argmax of a tiny reward model's scores of the real responses, its cache,
its refusal to route new prompts, and ``--router rm:PATH`` through the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tiny_models import save_tiny_bert

from lightning_lookahead.cli import main
from lightning_lookahead.costs.rules import ARGMAX
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.registry import parse_router
from lightning_lookahead.routers.rm_selection import RewardModelRouter

WORDS = ["good", "bad", "fine", "answer", "question", "alpha", "beta", "gamma", "delta", "sort", "list"]
CANDS = ["m0", "m1", "m2"]


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-rm"), WORDS, dropout=0.0, num_labels=1)


def examples() -> list[RoutingExample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        responses = tuple(" ".join(rng.choice(WORDS, size=6)) for _ in CANDS)
        out.append(RoutingExample(f"p{i}", f"question {WORDS[i]} sort list", responses, (0.0, 0.0, 0.0), "t"))
    return out


def direct_rewards(model_dir: Path, items: list[RoutingExample]) -> np.ndarray:
    """The reward model run by hand on ``prompt + blank line + response`` (no chat template: a BERT tokenizer)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    rows = []
    for ex in items:
        with torch.inference_mode():
            batch = tokenizer([f"{ex.prompt}\n\n{r}" for r in ex.responses], return_tensors="pt", padding=True)
            rows.append(model(**batch).logits[:, 0].tolist())
    return np.asarray(rows)


def test_picks_the_argmax_of_the_reward_models_scores(tiny_rm: Path, tmp_path: Path) -> None:
    [router] = parse_router(f"rm:{tiny_rm}", CANDS)
    assert isinstance(router, RewardModelRouter) and "not deployable" in router.name
    router.cache_dir = tmp_path
    items = examples()
    scores = router.score_matrix(items, CANDS)
    expected = direct_rewards(tiny_rm, items)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert list(ARGMAX.choose(scores)) == list(expected.argmax(axis=1))
    assert len({tuple(row) for row in scores}) > 1 and router.score_kind == "true_scores"


def test_reads_the_real_responses(tiny_rm: Path) -> None:
    router = RewardModelRouter(str(tiny_rm), cache_dir=None)
    items = examples()[:2]
    swapped = [replace(ex, responses=ex.responses[::-1]) for ex in items]
    np.testing.assert_allclose(router.score_matrix(swapped, CANDS), router.score_matrix(items, CANDS)[:, ::-1])
    blank = [replace(items[0], responses=("", "", ""))]
    with pytest.raises(LookaheadError, match="lacks the candidates' responses"):
        router.score_matrix(blank, CANDS)


def test_cannot_route_new_prompts(tiny_rm: Path) -> None:
    router = RewardModelRouter(str(tiny_rm), cache_dir=None)
    assert router.needs_responses
    for call in (router.score, router.route):
        with pytest.raises(LookaheadError, match="cannot route new prompts"):
            call(["a new prompt"])


class Refuses:
    def score(self, items, progress=None):
        raise AssertionError("the cache should have answered")


def test_scores_are_cached_by_model_and_texts(tiny_rm: Path, tmp_path: Path) -> None:
    items = examples()
    first = RewardModelRouter(str(tiny_rm), cache_dir=tmp_path).score_matrix(items, CANDS)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again = RewardModelRouter(str(tiny_rm), cache_dir=tmp_path, scorer=Refuses()).score_matrix(items, CANDS)
    np.testing.assert_array_equal(first, again)
    changed = [replace(items[0], responses=("good", "bad", "fine")), *items[1:]]
    with pytest.raises(AssertionError, match="cache should have answered"):
        RewardModelRouter(str(tiny_rm), cache_dir=tmp_path, scorer=Refuses()).score_matrix(changed, CANDS)


def test_bad_spec() -> None:
    with pytest.raises(LookaheadError, match="name a reward model"):
        parse_router("rm:", CANDS)


def test_cli_evaluates_the_bound(tiny_rm: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from own_dataset_kit import rows, write_jsonl

    monkeypatch.setenv("HOME", str(tmp_path))  # the score cache's default folder
    monkeypatch.chdir(tmp_path)
    dataset = write_jsonl(tmp_path / "mine.jsonl", rows(6))
    out = tmp_path / "r.json"
    args = ["evaluate", "--dataset", str(dataset), "--no-lc", "--router", f"rm:{tiny_rm}", "--json", str(out)]
    assert main(args) == 0
    assert "not deployable" in capsys.readouterr().out
    assert "not deployable" in json.loads(out.read_text())["router"]
    assert list((tmp_path / ".cache" / "lightning_lookahead" / "reward_scores").glob("*.npy"))
