"""Readers on the authors' shipped data: item counts and per-model scores that the files state themselves.

Each benchmark is loaded once per module. The reference values are read here straight from the
files with gzip/json/csv (not through the readers), so a reader bug cannot confirm itself.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from lightning_lookahead.data.benchmarks import (
    benchmark_models,
    load_benchmark,
    load_eval_ids,
    load_train_set,
    missing_files,
    split_train_val,
)
from lightning_lookahead.data.readers import alpacaeval, arenahard
from lightning_lookahead.data.schema import BENCHMARKS, PAPER_CANDIDATES, RoutingExample
from lightning_lookahead.errors import DataError

pytestmark = pytest.mark.real_data

SELFOSS = "SelfOSSInstructSC2_filtered2"
COUNTS = {
    "AlpacaEval": 805,
    "ArenaHard": 499,
    "MT-Bench": 80,
    "GSM8k": 1319,
    "MATH": 5000,
    "HumanEval": 164,
    "MBPP": 257,
}
#: Where each OpenCompass benchmark states a model's score, as a path of keys into its results file.
STATED = {
    "GSM8k": ("{m}.json", "accuracy"),
    "MATH": ("{m}.json", "accuracy"),
    "HumanEval": ("results/{m}.json", "humaneval_pass@1"),
    "MBPP": ("results/{m}.json", "score"),
}


def gz_json(path: Path):
    with gzip.open(path.with_name(path.name + ".gz"), "rt", encoding="utf-8") as fh:
        return json.load(fh)


def pool_for(name: str, root: Path) -> list[str]:
    """The paper pool, plus every extra model on disk (AlpacaEval's 16, MT-Bench's 13, gemma-2-9b-it elsewhere)."""
    return [*PAPER_CANDIDATES, *(m for m in benchmark_models(name, root) if m not in PAPER_CANDIDATES)]


@pytest.fixture(scope="module")
def loaded(real_data: Path) -> dict[str, tuple[list[str], list[RoutingExample]]]:
    """Every benchmark loaded once with every model it ships."""
    out = {}
    for name in BENCHMARKS:
        pool = pool_for(name, real_data)
        out[name] = (pool, load_benchmark(name, real_data, pool))
    return out


def mean_x100(examples: list[RoutingExample], j: int) -> float:
    return 100 * sum(e.scores[j] for e in examples) / len(examples)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_item_counts_and_shape(loaded, name: str) -> None:
    pool, examples = loaded[name]
    assert len(examples) == COUNTS[name]
    assert len({e.prompt_id for e in examples}) == COUNTS[name]
    for e in examples:
        assert e.benchmark == name
        assert len(e.scores) == len(e.responses) == len(pool)
        assert e.prompt and e.prompt == e.prompt.strip()


def test_models_on_disk(loaded) -> None:
    assert len(loaded["AlpacaEval"][0]) == 16
    assert len(loaded["MT-Bench"][0]) == 13
    assert loaded["ArenaHard"][0] == list(PAPER_CANDIDATES)
    for name in STATED:
        assert loaded[name][0] == [*PAPER_CANDIDATES, "gemma-2-9b-it"]


@pytest.mark.parametrize("name", list(STATED))
def test_mean_score_equals_stated_accuracy(loaded, real_data: Path, name: str) -> None:
    pool, examples = loaded[name]
    file_pattern, field = STATED[name]
    for j, model in enumerate(pool):
        stated = gz_json(real_data / "test" / name / file_pattern.format(m=model))[field]
        assert mean_x100(examples, j) == pytest.approx(stated, abs=1e-6), model


def test_alpacaeval_win_rate_equals_leaderboard(loaded, real_data: Path) -> None:
    pool, examples = loaded["AlpacaEval"]
    checked = []
    for j, model in enumerate(pool):
        if not (real_data / "test/AlpacaEval" / (alpacaeval.leaderboard_file(model) + ".gz")).exists():
            continue
        win_rate = 100 * sum(e.scores[j] - 1 for e in examples) / len(examples)
        assert win_rate == pytest.approx(alpacaeval.read_leaderboard_row(real_data, model)["win_rate"], abs=1e-6), model
        checked.append(model)
    assert len(checked) == 14  # all but Meta-Llama-3-70B/8B-Instruct ship a leaderboard


def test_alpacaeval_leaderboard_read_independently(real_data: Path) -> None:
    path = real_data / "test/AlpacaEval" / (alpacaeval.leaderboard_file("Yi-1.5-34B-Chat") + ".gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = {row[""]: row for row in csv.DictReader(io.StringIO(fh.read()))}
    row = alpacaeval.read_leaderboard_row(real_data, "Yi-1.5-34B-Chat")
    assert row["win_rate"] == float(rows["Yi-1.5-34B-Chat"]["win_rate"])
    assert row["length_controlled_winrate"] == pytest.approx(37.548493600463615)


def test_mtbench_yi_and_minus_one_scores(loaded) -> None:
    pool, examples = loaded["MT-Bench"]
    assert 10 * sum(e.scores[0] for e in examples) / len(examples) == pytest.approx(78.125)
    minus_one = sorted(
        (pool[j], int(e.prompt_id), turn + 1)
        for e in examples
        for j in range(5)
        for turn, score in enumerate(e.extras["turn_scores"][j])
        if score == -1
    )
    assert minus_one == [
        ("Phi-3-medium-4k-instruct", 100, 2),
        ("internlm2_5-20b-chat", 81, 2),
        ("internlm2_5-20b-chat", 92, 2),
        ("internlm2_5-20b-chat", 150, 2),
    ]
    # every turn-1 judge prompt of every model quotes an answer that the parser finds
    assert all(r for e in examples for r in e.responses)


def test_arenahard_drops_one_question(loaded) -> None:
    _, examples = loaded["ArenaHard"]
    assert arenahard.DROPPED_QUESTION not in {e.prompt_id for e in examples}
    assert all(-6 <= s <= 6 for e in examples for s in e.scores)
    # 9 null verdicts (Yi 3, InternLM 2, Llama 3, Qwen-Coder 1) in 7 (question, model) pairs, each scored -6
    assert sum(g.count(None) for e in examples for g in e.extras["games"]) == 9
    null_pairs = [(e, j) for e in examples for j, g in enumerate(e.extras["games"]) if None in g]
    assert len(null_pairs) == 7
    assert all(e.scores[j] == arenahard.NULL_SCORE for e, j in null_pairs)


def test_selfoss_split(real_data: Path) -> None:
    examples = load_train_set(SELFOSS, real_data)
    assert len(examples) == 4335
    train, val = split_train_val(examples, load_eval_ids(SELFOSS, real_data))
    assert (len(train), len(val)) == (3335, 1000)
    means = [sum(e.scores[j] for e in examples) / len(examples) for j in range(5)]
    assert means == pytest.approx([0.360, 0.554, 0.486, 0.496, 0.572], abs=5e-4)
    assert all(max(e.scores) - min(e.scores) >= 0.5 for e in examples)  # "filtered2"


def test_absent_training_labels_are_reported(real_data: Path) -> None:
    assert len(load_eval_ids("OpenMathInstruct2_filtered2", real_data)) == 1354
    assert len(load_eval_ids("UltraFeedback", real_data)) == 4862
    assert len(missing_files("OpenMathInstruct2_filtered2", real_data)) == 5
    assert len(missing_files("UltraFeedback", real_data)) == 6  # instructions.jsonl too
    with pytest.raises(DataError, match=r"run `lookahead data fetch`"):
        load_train_set("OpenMathInstruct2_filtered2", real_data)


def test_arenahard_token_counts_where_the_answer_files_record_them(loaded) -> None:
    _, examples = loaded["ArenaHard"]
    # conv_metadata.token_len exists in the Yi, InternLM and Qwen-Coder answer files only (Phi-3 and Llama lack it),
    # so the cost code falls back to one tokenizer for every Arena-Hard item rather than mixing two.
    counted = [j for j in range(5) if all(e.extras["response_tokens"][j] is not None for e in examples)]
    assert counted == [0, 1, 4]
    assert all(e.extras["response_tokens"][j] is None for e in examples for j in (2, 3))
