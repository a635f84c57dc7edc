"""The reward-model scorer on tiny random models saved locally (a BERT without and a Llama with a chat template)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny_models import save_tiny_bert, save_tiny_llama

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.scorers import parse_scorer
from lightning_lookahead.scorers.base import ScoreItem
from lightning_lookahead.scorers.reward_model import RewardModelScorer

WORDS = "what is the capital of france paris it a city in europe tell me joke cat dog sum two numbers".split()
TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}{{ eos_token }}{% endfor %}"
ITEMS = [
    ScoreItem("r1", "a", "what is the capital of france", "paris"),
    ScoreItem("r1", "b", "what is the capital of france", "it is a city in europe , the capital is paris"),
    ScoreItem("r2", "a", [{"role": "user", "content": "tell me a joke"}], "cat"),
    ScoreItem("r2", "b", [{"role": "user", "content": "tell me a joke"}], "a dog"),
    ScoreItem("r3", "a", "sum two numbers", "two"),
]


def _save_bert(out: Path, labels: int) -> Path:
    out.mkdir()
    return save_tiny_bert(out, [*WORDS, ","], dropout=0.0, num_labels=labels)


def _save_llama(out: Path) -> Path:
    out.mkdir()
    words = [*WORDS, "<|user|>", "<|assistant|>", ","]
    return save_tiny_llama(out, words, max_positions=128, num_labels=1, chat_template=TEMPLATE)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reward-models")
    return {
        "bert": _save_bert(root / "bert", 1),
        "llama": _save_llama(root / "llama"),
        "two": _save_bert(root / "two", 2),
    }


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_scores_are_finite_deterministic_and_batching_does_not_change_them(models, kind: str) -> None:
    one_by_one = RewardModelScorer(str(models[kind]), batch_size=1).score(ITEMS)
    done: list[int] = []
    batched = RewardModelScorer(str(models[kind]), batch_size=4).score(ITEMS, done.append)
    assert sum(done) == len(ITEMS)
    values = [r.value for r in batched]
    assert all(r.error is None and math.isfinite(r.value) for r in batched)
    assert values == pytest.approx([r.value for r in one_by_one], abs=1e-5)
    assert len({round(v, 6) for v in values}) > 1  # the response matters
    assert [r.value for r in RewardModelScorer(str(models[kind]), batch_size=4).score(ITEMS)] == values


def test_the_input_text_uses_the_chat_template_when_there_is_one(models) -> None:
    llama = RewardModelScorer(str(models["llama"]))
    assert llama.text(ITEMS[2]) == "<|user|> tell me a joke<|endoftext|><|assistant|> cat<|endoftext|>"
    bert = RewardModelScorer(str(models["bert"]))
    assert bert.text(ITEMS[0]) == "what is the capital of france\n\nparis"


def test_a_head_with_more_than_one_output_is_refused(models) -> None:
    with pytest.raises(LookaheadError, match="2-output head"):
        RewardModelScorer(str(models["two"])).score(ITEMS[:1])


def test_a_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    scorer = parse_scorer(f"reward:{tmp_path / 'nowhere'}")
    assert scorer.name.startswith("reward:")
    with pytest.raises(LookaheadError, match="cannot load it") as info:
        scorer.score(ITEMS[:1])
    assert "\n" not in str(info.value)
