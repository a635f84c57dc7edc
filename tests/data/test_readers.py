"""Readers on the small fixture tree: values worked out by hand, and every malformed-input error located."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lightning_lookahead.data import benchmarks
from lightning_lookahead.data.benchmarks import (
    benchmark_models,
    load_benchmark,
    load_eval_ids,
    load_train_set,
    missing_files,
    required_files,
    split_train_val,
)
from lightning_lookahead.data.readers import alpacaeval, arenahard, mtbench
from lightning_lookahead.data.schema import BENCHMARKS, PAPER_CANDIDATES, TRAIN_SETS, RoutingExample
from lightning_lookahead.errors import DataError, LookaheadError

YI, INTERN, PHI, LLAMA, QWEN = PAPER_CANDIDATES
SELFOSS = "SelfOSSInstructSC2_filtered2"
OPENMATH = "OpenMathInstruct2_filtered2"
SELFOSS_YI = f"train/{SELFOSS}/responses/{YI}.jsonl"
QA, QB, QC = "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "1b2c3d4e5f60718293a4b5c6d7e8f90a", "2c3d4e5f60718293a4b5c6d7e8f90a1b"


def scores(examples: list[RoutingExample]) -> list[tuple[float, ...]]:
    return [ex.scores for ex in examples]


def edit_lines(path: Path, edit: Callable[[list[dict[str, Any]]], list[str]]) -> None:
    """Rewrite a JSON-lines file through ``edit(list_of_dicts) -> list_of_lines``."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(line + "\n" for line in edit(rows)))


def edit_json(path: Path, edit: Callable[[Any], object]) -> None:
    """Rewrite a JSON file in place through ``edit(obj)`` (mutating)."""
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))


# ---------------------------------------------------------------- AlpacaEval


def test_alpacaeval_records(fixture_root: Path) -> None:
    ex = load_benchmark("AlpacaEval", fixture_root)
    assert [e.prompt_id for e in ex] == ["alpacaeval-0", "alpacaeval-1", "alpacaeval-2"]
    assert scores(ex) == [(1.0, 1.25, 2.0, 1.5, 1.1), (2.0, 1.75, 1.0, 1.5, 1.9), (1.5, 1.0, 1.0, 1.5, 1.2)]
    assert ex[0].prompt == "What is the capital of France?"  # stripped
    assert ex[1].responses[2] == f"{PHI} answers instruction 1."
    assert ex[0].extras == {
        "instruction": "What is the capital of France?\n",
        "reference": "The capital of France is Paris.",
        "dataset": "helpful_base",
        "generator_1": "gpt4_1106_preview",
    }
    assert {e.benchmark for e in ex} == {"AlpacaEval"}


def test_alpacaeval_extra_model_selectable(fixture_root: Path) -> None:
    ex = load_benchmark("AlpacaEval", fixture_root, [YI, "DeepSeek-V2-Chat-0628"])
    assert scores(ex) == [(1.0, 2.0), (2.0, 2.0), (1.5, 1.0)]


def test_alpacaeval_leaderboard_row_matches_preferences(fixture_root: Path) -> None:
    prefs = [e.scores[0] for e in load_benchmark("AlpacaEval", fixture_root)]
    row = alpacaeval.read_leaderboard_row(fixture_root, YI)
    assert row["win_rate"] == pytest.approx(100 * sum(p - 1 for p in prefs) / len(prefs))  # = 50.0
    assert row["length_controlled_winrate"] == 47.5
    assert "mode" not in row  # non-numeric cells are left out


def test_alpacaeval_leaderboard_row_named_after_generator(fixture_root: Path) -> None:
    # DeepSeek's row is named like its generator ("deepseek-chat"), with its own column order and no lc_standard_error.
    row = alpacaeval.read_leaderboard_row(fixture_root, "DeepSeek-V2-Chat-0628")
    assert row["win_rate"] == pytest.approx(200 / 3)
    assert row["length_controlled_winrate"] == 61.25
    assert "lc_standard_error" not in row


def test_alpacaeval_leaderboard_missing_is_located(fixture_root: Path) -> None:
    with pytest.raises(DataError, match=r"Phi-3-medium-4k-instruct/weighted_alpaca_eval_gpt4_turbo/leaderboard\.csv"):
        alpacaeval.read_leaderboard_row(fixture_root, PHI)
    with pytest.raises(LookaheadError, match=r"did you mean 'gemma-2-9b-it'"):
        alpacaeval.read_leaderboard_row(fixture_root, "gemma-2-9b")


def test_alpacaeval_instruction_mismatch(data_copy: Path) -> None:
    path = data_copy / "test/AlpacaEval" / alpacaeval.annotations_file(PHI)
    edit_json(path, lambda anns: anns[1].update(instruction="Something else"))
    with pytest.raises(DataError) as err:
        load_benchmark("AlpacaEval", data_copy)
    assert f"{PHI}/weighted_alpaca_eval_gpt4_turbo/annotations.json [[1]]" in str(err.value)
    assert "instruction differs" in str(err.value)


def test_alpacaeval_wrong_length_and_missing_preference(data_copy: Path) -> None:
    path = data_copy / "test/AlpacaEval" / alpacaeval.annotations_file(LLAMA)
    edit_json(path, lambda anns: anns.pop())
    with pytest.raises(DataError, match=r"annotations\.json: has 2 annotations, expected 3"):
        load_benchmark("AlpacaEval", data_copy)
    path = data_copy / "test/AlpacaEval" / alpacaeval.annotations_file(QWEN)
    edit_json(path, lambda anns: anns[2].pop("preference"))
    with pytest.raises(DataError, match=r"annotations\.json \[\[2\]\.preference\]: missing field 'preference'"):
        load_benchmark("AlpacaEval", data_copy, [QWEN, YI])


def test_alpacaeval_nan_preference(data_copy: Path) -> None:
    path = data_copy / "test/AlpacaEval" / alpacaeval.annotations_file(INTERN)
    path.write_text(path.read_text().replace('"preference":1.75', '"preference":NaN'))
    with pytest.raises(
        DataError, match=r"internlm2_5-20b-chat/.*annotations\.json \[\[1\]\.preference\]: score is nan"
    ):
        load_benchmark("AlpacaEval", data_copy)


# ---------------------------------------------------------------- Arena-Hard


def test_arenahard_records(fixture_root: Path) -> None:
    ex = load_benchmark("ArenaHard", fixture_root)
    # question.jsonl order, with the constant dropped question removed; answer/judgment files are in another order.
    assert [e.prompt_id for e in ex] == [QA, QB, QC]
    assert scores(ex) == [(1, -6, 6, 0, -6), (-2, 2, 3, -6, 0), (-3, -1, 0, 0, 0)]
    assert ex[1].prompt == "Explain the difference between a list and a tuple in Python."
    assert ex[0].responses[0] == f"{YI} answers 0a1b."
    assert ex[0].extras == {
        "category": "arena-hard-v0.1",
        "games": (("B>A", "A=B"), ("A>>B", "B>>A"), ("B>>A", "A>>B"), ("A=B", "A=B"), (None, "A>B")),
        "response_tokens": (None, None, None, None, None),  # the fixture answers carry no conv_metadata.token_len
    }
    assert arenahard.DROPPED_QUESTION not in {e.prompt_id for e in ex}


def test_arenahard_score_games() -> None:
    assert arenahard.score_games("B>>A", "A>>B") == 6  # the model wins both games by far
    assert arenahard.score_games("A>>B", "B>>A") == -6
    assert arenahard.score_games("A>B", "A=B") == -1
    assert arenahard.score_games(None, "A>>B") == arenahard.score_games("A>B", None) == -6


def test_arenahard_missing_answer_is_error(data_copy: Path) -> None:
    edit_lines(
        data_copy / f"test/ArenaHard/model_answer/{YI}.jsonl",
        lambda rows: [json.dumps(r) for r in rows if r["question_id"] != QB],
    )
    with pytest.raises(DataError) as err:
        load_benchmark("ArenaHard", data_copy)
    assert f"model_answer/{YI}.jsonl [{QB}]: no answer for question" in str(err.value)


def test_arenahard_missing_judgment_and_bad_verdict(data_copy: Path) -> None:
    path = data_copy / f"test/ArenaHard/model_judgment/{QWEN}.jsonl"
    edit_lines(path, lambda rows: [json.dumps(r) for r in rows if r["question_id"] != QC])
    with pytest.raises(DataError, match=rf"model_judgment/{QWEN}\.jsonl \[{QC}\]: no judgment"):
        load_benchmark("ArenaHard", data_copy)

    def bad_verdict(rows):
        rows[1]["games"][0]["score"] = "A>>>B"
        return [json.dumps(r) for r in rows]

    path = data_copy / f"test/ArenaHard/model_judgment/{PHI}.jsonl"
    edit_lines(path, bad_verdict)
    with pytest.raises(
        DataError, match=rf"model_judgment/{PHI}\.jsonl:2 \[games\]: game 1 has unknown verdict 'A>>>B'"
    ):
        load_benchmark("ArenaHard", data_copy, [PHI, YI])


def test_arenahard_duplicate_question(data_copy: Path) -> None:
    edit_lines(
        data_copy / f"test/ArenaHard/model_judgment/{INTERN}.jsonl",
        lambda rows: [json.dumps(r) for r in rows + rows[:1]],
    )
    with pytest.raises(DataError, match=rf"{INTERN}\.jsonl:5: duplicate question_id '{QC}' \(first on line 1\)"):
        load_benchmark("ArenaHard", data_copy)


# ---------------------------------------------------------------- MT-Bench


def test_mtbench_records(fixture_root: Path) -> None:
    ex = load_benchmark("MT-Bench", fixture_root)
    assert [e.prompt_id for e in ex] == ["81", "111", "150"]
    assert scores(ex) == [(8.5, 3.5, 9.5, 7.0, 5.5), (10.0, 4.0, 2.0, 5.0, 9.0), (3.0, 6.0, 7.5, 8.5, 5.0)]
    # -1 (unparsed judge rating) is kept as a score, as in the paper
    assert ex[2].extras == {"category": "stem", "turn_scores": ((7, -1), (6, 6), (8, 7), (9, 8), (5, 5))}
    assert ex[0].extras["turn_scores"][1] == (8.0, -1.0)
    assert (
        ex[2].prompt == "How have the Alps and Rhine River influenced settlement in Western Europe? List three impacts."
    )
    yi_mean_x10 = 10 * sum(e.scores[0] for e in ex) / len(ex)
    assert yi_mean_x10 == pytest.approx((8.5 + 10 + 3) / 3 * 10)


def test_mtbench_responses_from_judge_prompts(fixture_root: Path) -> None:
    ex = {e.prompt_id: e for e in load_benchmark("MT-Bench", fixture_root)}
    assert ex["81"].responses[0] == f"{YI} answer to question 81.\nIt has two lines."
    # the math template quotes a reference answer first; the assistant's answer is what is returned
    assert ex["111"].responses[1] == f"{INTERN} answer to question 111.\nIt has two lines."
    assert ex["81"].responses[2].startswith(" Phi-3")  # the answer is returned verbatim, not stripped
    assert ex["150"].responses[4] == ""  # no answer markers in that prompt: empty, not an error


def test_mtbench_answer_parser() -> None:
    prompt = "[Question]\nQ\n\n[The Start of Assistant's Answer]\nline 1\nline 2\n[The End of Assistant's Answer]"
    assert mtbench.answer_from_judge_prompt(prompt) == "line 1\nline 2"
    assert mtbench.answer_from_judge_prompt("no markers") == ""


def test_mtbench_missing_turn_and_bad_score(data_copy: Path) -> None:
    path = data_copy / "test/MT-Bench" / mtbench.judgments_file(LLAMA)
    edit_lines(path, lambda rows: [json.dumps(r) for r in rows if (r["question_id"], r["turn"]) != (111, 2)])
    with pytest.raises(DataError, match=rf"judge_{LLAMA}_single\.jsonl \[111\]: no judgment for question 111 turn 2"):
        load_benchmark("MT-Bench", data_copy)

    path = data_copy / "test/MT-Bench" / mtbench.judgments_file(PHI)
    lines = path.read_text().splitlines()
    assert json.loads(lines[4])["question_id"] == 111 and '"score": 2,' in lines[4]
    lines[4] = lines[4].replace('"score": 2,', '"score": Infinity,')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"judge_{PHI}_single\.jsonl:5 \[score\]: score is inf"):
        load_benchmark("MT-Bench", data_copy, [PHI, YI])


# ---------------------------------------------------------------- OpenCompass: GSM8k, MATH, HumanEval, MBPP


def test_gsm8k_records(fixture_root: Path) -> None:
    ex = load_benchmark("GSM8k", fixture_root)
    assert [e.prompt_id for e in ex] == ["gsm8k-0", "gsm8k-1", "gsm8k-2", "gsm8k-3"]
    assert scores(ex) == [(1, 1, 0, 1, 0), (1, 0, 1, 1, 0), (0, 0, 0, 1, 0), (1, 1, 1, 1, 1)]
    assert (
        ex[0].prompt
        == "Janet has 3 apples and buys 2 more. How many apples does she have?\nLet's think step by step\nAnswer:"
    )
    assert ex[2].responses[0] == f"{YI} reasons about item 2. The answer is 2."
    assert ex[0].extras == {}


def test_gsm8k_extra_model_and_file_accuracy(fixture_root: Path) -> None:
    pool = [*PAPER_CANDIDATES, "gemma-2-9b-it"]
    ex = load_benchmark("GSM8k", fixture_root, pool)
    assert [e.scores[5] for e in ex] == [1, 0, 1, 0]
    for j, model in enumerate(pool):
        accuracy = json.loads((fixture_root / f"test/GSM8k/{model}.json").read_text())["accuracy"]
        assert 100 * sum(e.scores[j] for e in ex) / len(ex) == pytest.approx(accuracy)


def test_math_records(fixture_root: Path) -> None:
    ex = load_benchmark("MATH", fixture_root)
    assert [e.prompt_id for e in ex] == ["math-0", "math-1", "math-2"]
    assert scores(ex) == [(1, 1, 0, 0, 1), (0, 1, 0, 1, 1), (0, 0, 0, 1, 1)]
    assert ex[1].prompt == "Problem:\nSolve $2x = 6$ for $x$.\nSolution:"


def test_humaneval_records_join_results_by_id(fixture_root: Path) -> None:
    ex = load_benchmark("HumanEval", fixture_root)
    # results/*.json list their details in the order 2, 0, 1: scores must still follow the ids
    assert [e.prompt_id for e in ex] == ["humaneval-0", "humaneval-1", "humaneval-2"]
    assert scores(ex) == [(1, 1, 0, 1, 0), (1, 0, 0, 1, 1), (0, 0, 0, 1, 1)]
    assert ex[1].responses[3] == f"```python\n# {LLAMA} solution 1\n```"
    assert ex[0].prompt.endswith('"""Return a + b."""')


def test_mbpp_records(fixture_root: Path) -> None:
    ex = load_benchmark("MBPP", fixture_root)
    assert scores(ex) == [(0, 1, 1, 0, 1), (1, 1, 0, 0, 0), (1, 1, 0, 0, 1)]
    assert ex[1].prompt.startswith("Write a function to find the volume of a cube.")
    for j, model in enumerate(PAPER_CANDIDATES):
        score = json.loads((fixture_root / f"test/MBPP/results/{model}.json").read_text())["score"]
        assert 100 * sum(e.scores[j] for e in ex) / len(ex) == pytest.approx(score)


def test_opencompass_prompt_must_match_across_models(data_copy: Path) -> None:
    edit_json(data_copy / f"test/GSM8k/{INTERN}.json", lambda d: d["details"]["2"]["prompt"][0].update(prompt="other"))
    with pytest.raises(DataError, match=rf"GSM8k/{INTERN}\.json \[2\]: prompt differs from the one in {YI}\.json"):
        load_benchmark("GSM8k", data_copy)


def test_opencompass_id_sets_must_match(data_copy: Path) -> None:
    edit_json(data_copy / f"test/GSM8k/{PHI}.json", lambda d: d["details"].pop("3"))
    with pytest.raises(
        DataError, match=rf"GSM8k/{PHI}\.json: id sets differ: 1 id\(s\) of {YI}\.json missing here, e\.g\. '3'"
    ):
        load_benchmark("GSM8k", data_copy)


def test_opencompass_missing_correct_and_prediction_fallback(data_copy: Path) -> None:
    def use_prediction(d):
        detail = d["details"]["1"]
        detail["prediction"] = detail.pop("origin_prediction")

    edit_json(data_copy / f"test/MATH/{QWEN}.json", use_prediction)
    assert load_benchmark("MATH", data_copy)[1].responses[4] == f"{QWEN} reasons about item 1. The answer is 1."
    edit_json(data_copy / f"test/MATH/{QWEN}.json", lambda d: d["details"]["0"].pop("correct"))
    with pytest.raises(DataError, match=rf"MATH/{QWEN}\.json \[details\.0\]: missing field 'correct'"):
        load_benchmark("MATH", data_copy)


def test_code_results_keys_must_match_predictions(data_copy: Path) -> None:
    def rename(d):
        d["details"]["7"] = d["details"].pop("1")

    edit_json(data_copy / f"test/HumanEval/results/{LLAMA}.json", rename)
    with pytest.raises(DataError) as err:
        load_benchmark("HumanEval", data_copy)
    message = str(err.value)
    assert f"HumanEval/results/{LLAMA}.json: id sets differ" in message
    assert "'1'" in message and "'7'" in message


def test_code_results_must_describe_the_same_task(data_copy: Path) -> None:
    edit_json(
        data_copy / f"test/HumanEval/results/{YI}.json", lambda d: d["details"]["1"].update(task_id="HumanEval/5")
    )
    with pytest.raises(DataError, match=rf"results/{YI}\.json \[details\.1\]: task_id does not match"):
        load_benchmark("HumanEval", data_copy)


def test_code_missing_is_correct(data_copy: Path) -> None:
    edit_json(data_copy / f"test/MBPP/results/{PHI}.json", lambda d: d["details"]["2"].pop("is_correct"))
    with pytest.raises(DataError, match=rf"MBPP/results/{PHI}\.json \[details\.2\]: missing field 'is_correct'"):
        load_benchmark("MBPP", data_copy)


# ---------------------------------------------------------------- training sets


def test_selfoss_joined_by_prompt_id(fixture_root: Path) -> None:
    ids = ["self-oss-instruct-sc2-1", "self-oss-instruct-sc2-7", "self-oss-instruct-sc2-12", "self-oss-instruct-sc2-30"]
    first_lines = [
        json.loads((fixture_root / f"train/{SELFOSS}/responses/{m}.jsonl").read_text().splitlines()[0])["prompt_id"]
        for m in PAPER_CANDIDATES
    ]
    assert set(first_lines) != {ids[0]}, "fixture score files should not be in instruction order"
    ex = load_train_set(SELFOSS, fixture_root)
    assert [e.prompt_id for e in ex] == ids
    assert scores(ex) == [
        (1.0, 0.5, 0.0, 0.25, 0.75),
        (0.0, 1.0, 1.0, 0.5, 0.0),
        (0.2, 0.4, 0.6, 0.8, 1.0),
        (0.5, 0.0, 0.5, 1.0, 0.5),
    ]
    assert ex[1].prompt == "Write a function `clamp(x, lo, hi)`."
    assert ex[2].responses[3] == f"Here is {LLAMA}'s solution for self-oss-instruct-sc2-12."
    assert ex[3].responses[3] == ""
    assert {e.benchmark for e in ex} == {SELFOSS} and all(e.extras == {} for e in ex)


def test_selfoss_line_order_does_not_matter(data_copy: Path) -> None:
    before = load_train_set(SELFOSS, data_copy)
    for m in PAPER_CANDIDATES:
        edit_lines(data_copy / f"train/{SELFOSS}/responses/{m}.jsonl", lambda rows: [json.dumps(r) for r in rows[::-1]])
    assert load_train_set(SELFOSS, data_copy) == before


def test_split_train_val(fixture_root: Path) -> None:
    ex = load_train_set(SELFOSS, fixture_root)
    eval_ids = load_eval_ids(SELFOSS, fixture_root)
    assert eval_ids == ["self-oss-instruct-sc2-12"]
    train, val = split_train_val(ex, eval_ids)
    # sc2-30 has an empty Llama response: dropped from training
    assert [e.prompt_id for e in train] == ["self-oss-instruct-sc2-1", "self-oss-instruct-sc2-7"]
    assert [e.prompt_id for e in val] == ["self-oss-instruct-sc2-12"]


def test_split_keeps_empty_responses_in_validation() -> None:
    ex = [
        RoutingExample("a", "p", ("", "x"), (0.0, 1.0), "T"),
        RoutingExample("b", "p", ("y", "x"), (0.0, 1.0), "T"),
        RoutingExample("c", "p", ("y", ""), (0.0, 1.0), "T"),
    ]
    train, val = split_train_val(ex, ["a"])
    assert [e.prompt_id for e in train] == ["b"]
    assert [e.prompt_id for e in val] == ["a"]


def test_openmath_and_ultrafeedback(fixture_root: Path) -> None:
    ex = load_train_set(OPENMATH, fixture_root)
    assert [e.prompt_id for e in ex] == ["openmathinstruct2_871695", "openmathinstruct2_12", "openmathinstruct2_5000"]
    assert scores(ex) == [(12.5, 8.0, -6.5, 1.0, 15.75), (-3.25, 2.5, 0.0, 1.0, -10.5), (4.0, -1.75, 9.25, 1.0, 3.5)]
    assert ex[1].prompt.endswith("put your final answer within \\boxed{}.")
    assert load_eval_ids(OPENMATH, fixture_root) == ["openmathinstruct2_12"]
    uf = load_train_set("UltraFeedback", fixture_root)
    assert scores(uf) == [(3.5, 1.25, -0.75, 2.0, 0.0), (-2.0, 0.5, 4.0, 2.0, -1.5)]
    assert len(load_eval_ids("UltraFeedback", fixture_root)) == 1


def test_tags_and_clusters_not_required(data_copy: Path) -> None:
    path = data_copy / f"train/{SELFOSS}/instructions.jsonl"
    edit_lines(path, lambda rows: [json.dumps({"prompt_id": r["prompt_id"], "prompt": r["prompt"]}) for r in rows])
    assert len(load_train_set(SELFOSS, data_copy)) == 4


# ---------------------------------------------------------------- malformed files (on the training reader)


def test_truncated_gzip(data_copy: Path) -> None:
    plain = data_copy / SELFOSS_YI
    blob = gzip.compress(plain.read_bytes())
    plain.unlink()
    plain.with_name(plain.name + ".gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as err:
        load_train_set(SELFOSS, data_copy)
    assert f"{YI}.jsonl.gz: corrupt or truncated gzip file" in str(err.value)


def test_garbage_named_gz(data_copy: Path) -> None:
    plain = data_copy / SELFOSS_YI
    plain.unlink()
    gz = plain.with_name(plain.name + ".gz")
    gz.write_bytes(b"\xff\xfe\x00\x81 this is not gzip")
    with pytest.raises(DataError, match=rf"{YI}\.jsonl\.gz: not UTF-8 text"):
        load_train_set(SELFOSS, data_copy)
    gz.write_bytes(b"plain text that is not gzip either\n")
    with pytest.raises(DataError, match=rf"{YI}\.jsonl\.gz:1: invalid JSON line"):
        load_train_set(SELFOSS, data_copy)


def test_reads_gzipped_tree(data_copy: Path, fixture_root: Path) -> None:
    for path in [p for p in data_copy.rglob("*") if p.is_file()]:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    for name in BENCHMARKS:
        assert load_benchmark(name, data_copy) == load_benchmark(name, fixture_root)
    assert load_train_set(SELFOSS, data_copy) == load_train_set(SELFOSS, fixture_root)
    assert alpacaeval.read_leaderboard_row(data_copy, YI) == alpacaeval.read_leaderboard_row(fixture_root, YI)


def test_bad_json_line(data_copy: Path) -> None:
    path = data_copy / SELFOSS_YI
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{YI}\.jsonl:3: invalid JSON line"):
        load_train_set(SELFOSS, data_copy)


@pytest.mark.parametrize("field", ["score", "response", "prompt_id"])
def test_missing_field(data_copy: Path, field: str) -> None:
    def drop(rows):
        rows[1].pop(field)
        return [json.dumps(r) for r in rows]

    edit_lines(data_copy / SELFOSS_YI, drop)
    with pytest.raises(DataError, match=rf"{YI}\.jsonl:2 \[{field}\]: missing field '{field}'"):
        load_train_set(SELFOSS, data_copy)


def test_missing_prompt_in_instructions(data_copy: Path) -> None:
    def drop(rows):
        rows[3].pop("prompt")
        return [json.dumps(r) for r in rows]

    edit_lines(data_copy / f"train/{SELFOSS}/instructions.jsonl", drop)
    with pytest.raises(DataError, match=r"instructions\.jsonl:4 \[prompt\]: missing field 'prompt'"):
        load_train_set(SELFOSS, data_copy)


def test_duplicate_prompt_id(data_copy: Path) -> None:
    def duplicate(rows):
        rows[3]["prompt_id"] = rows[0]["prompt_id"]
        return [json.dumps(r) for r in rows]

    edit_lines(data_copy / SELFOSS_YI, duplicate)
    with pytest.raises(
        DataError, match=rf"{YI}\.jsonl:4: duplicate prompt_id 'self-oss-instruct-sc2-12' \(first on line 1\)"
    ):
        load_train_set(SELFOSS, data_copy)
    edit_lines(data_copy / f"train/{SELFOSS}/instructions.jsonl", duplicate)
    with pytest.raises(DataError, match=r"instructions\.jsonl:4: duplicate prompt_id 'self-oss-instruct-sc2-1'"):
        load_train_set(SELFOSS, data_copy)


def test_mismatched_prompt_ids(data_copy: Path) -> None:
    def rename(rows):
        for r in rows:
            if r["prompt_id"] == "self-oss-instruct-sc2-7":
                r["prompt_id"] = "self-oss-instruct-sc2-999"
        return [json.dumps(r) for r in rows]

    edit_lines(data_copy / f"train/{SELFOSS}/responses/{PHI}.jsonl", rename)
    with pytest.raises(DataError) as err:
        load_train_set(SELFOSS, data_copy)
    message = str(err.value)
    assert f"responses/{PHI}.jsonl: id sets differ" in message
    assert "'self-oss-instruct-sc2-7'" in message and "'self-oss-instruct-sc2-999'" in message


def test_missing_line(data_copy: Path) -> None:
    edit_lines(data_copy / SELFOSS_YI, lambda rows: [json.dumps(r) for r in rows[:-1]])
    with pytest.raises(DataError, match=r"id sets differ: 1 id\(s\) of instructions\.jsonl missing here"):
        load_train_set(SELFOSS, data_copy)


@pytest.mark.parametrize(
    ("literal", "problem"), [("NaN", "score is nan"), ("Infinity", "score is inf"), ("-Infinity", "score is -inf")]
)
def test_non_finite_score(data_copy: Path, literal: str, problem: str) -> None:
    path = data_copy / SELFOSS_YI
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    lines[1] = lines[1].replace(f'"score": {row["score"]}', f'"score": {literal}')
    assert literal in lines[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{YI}\.jsonl:2 \[score\]: {problem}"):
        load_train_set(SELFOSS, data_copy)


def test_non_numeric_score(data_copy: Path) -> None:
    def stringify(rows):
        rows[0]["score"] = "0.5"
        return [json.dumps(r) for r in rows]

    edit_lines(data_copy / SELFOSS_YI, stringify)
    with pytest.raises(DataError, match=rf"{YI}\.jsonl:1 \[score\]: expected a numeric score, got '0\.5'"):
        load_train_set(SELFOSS, data_copy)


def test_bad_eval_ids(data_copy: Path) -> None:
    path = data_copy / f"train/{SELFOSS}/eval_ids.json"
    path.write_text('{"ids": []}')
    with pytest.raises(DataError, match=r"eval_ids\.json: expected a JSON list"):
        load_eval_ids(SELFOSS, data_copy)
    path.write_text('["a", "a"]')
    with pytest.raises(DataError, match=r"eval_ids\.json \[\[1\]\]: duplicate prompt id 'a'"):
        load_eval_ids(SELFOSS, data_copy)
    path.write_text('["a",\n 3,')
    with pytest.raises(DataError, match=r"eval_ids\.json:2: invalid JSON"):
        load_eval_ids(SELFOSS, data_copy)


# ---------------------------------------------------------------- names, missing data, registry


def test_unknown_model_suggests_closest(fixture_root: Path) -> None:
    with pytest.raises(
        LookaheadError, match=r"unknown model for GSM8k 'Yi-1.5-34B-chat'; did you mean 'Yi-1.5-34B-Chat'\?"
    ):
        load_benchmark("GSM8k", fixture_root, ["Yi-1.5-34B-chat", INTERN])
    with pytest.raises(LookaheadError, match=r"did you mean 'Qwen2.5-Coder-7B-Instruct'"):
        load_train_set(SELFOSS, fixture_root, [YI, "Qwen2.5-Coder-7B"])
    with pytest.raises(LookaheadError, match=r"did you mean 'Llama-3.1-8B-Instruct'"):
        required_files("ArenaHard", [YI, "Llama-3.1-8B-Instruc"])


def test_unknown_benchmark_suggests_closest(fixture_root: Path) -> None:
    with pytest.raises(LookaheadError, match=r"unknown benchmark 'gsm8k'; did you mean 'GSM8k'\?"):
        load_benchmark("gsm8k", fixture_root)
    with pytest.raises(LookaheadError, match=r"unknown benchmark 'Arena-Hard'; did you mean 'ArenaHard'\?"):
        load_benchmark("Arena-Hard", fixture_root)
    with pytest.raises(LookaheadError, match=r"unknown training set 'SelfOSS'"):
        load_train_set("SelfOSS", fixture_root)
    with pytest.raises(LookaheadError, match=r"did you mean 'MT-Bench'"):
        benchmark_models("MTBench", fixture_root)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: data directory not found \(run `lookahead data fetch`"):
        load_benchmark("GSM8k", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"run `lookahead data fetch`"):
        load_train_set(SELFOSS, tmp_path / "nowhere")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_missing_benchmark_folder(data_copy: Path, name: str) -> None:
    shutil.rmtree(data_copy / "test" / name)
    with pytest.raises(DataError, match=r"file not found \(run `lookahead data fetch`"):
        load_benchmark(name, data_copy)


def test_missing_file(data_copy: Path) -> None:
    (data_copy / f"test/GSM8k/{PHI}.json").unlink()
    with pytest.raises(DataError, match=rf"GSM8k/{PHI}\.json: file not found \(run `lookahead data fetch`"):
        load_benchmark("GSM8k", data_copy)
    assert missing_files("GSM8k", data_copy) == [f"test/GSM8k/{PHI}.json"]
    (data_copy / f"train/{OPENMATH}/gt2-Skywork-Reward-Gemma-2-27B-v0.2/{QWEN}.jsonl").unlink()
    with pytest.raises(DataError, match=rf"{QWEN}\.jsonl: file not found"):
        load_train_set(OPENMATH, data_copy)


def test_registry_matches_schema() -> None:
    assert tuple(benchmarks._BENCHMARK_SOURCES) == BENCHMARKS
    assert tuple(benchmarks._TRAIN_SOURCES) == tuple(TRAIN_SETS)


def test_required_files(fixture_root: Path) -> None:
    assert required_files("GSM8k", [YI, PHI]) == [f"test/GSM8k/{YI}.json", f"test/GSM8k/{PHI}.json"]
    assert required_files("HumanEval", [YI, PHI], root_relative=False) == [
        f"predictions/{YI}.json",
        f"results/{YI}.json",
        f"predictions/{PHI}.json",
        f"results/{PHI}.json",
    ]
    assert (
        required_files("MT-Bench", [YI, QWEN])[1]
        == f"test/MT-Bench/judgments/gpt-4-0125-preview_judge_{YI}_single.jsonl"
    )
    assert required_files(SELFOSS, [YI, QWEN]) == [
        f"train/{SELFOSS}/instructions.jsonl",
        f"train/{SELFOSS}/eval_ids.json",
        f"train/{SELFOSS}/responses/{YI}.jsonl",
        f"train/{SELFOSS}/responses/{QWEN}.jsonl",
    ]
    assert len(required_files("AlpacaEval")) == 6
    assert len(required_files("ArenaHard")) == 11
    for name in (*BENCHMARKS, *TRAIN_SETS):
        assert missing_files(name, fixture_root) == [], name


def test_benchmark_models(fixture_root: Path, tmp_path: Path) -> None:
    assert benchmark_models("GSM8k", fixture_root) == sorted([*PAPER_CANDIDATES, "gemma-2-9b-it"])
    assert benchmark_models("AlpacaEval", fixture_root) == sorted([*PAPER_CANDIDATES, "DeepSeek-V2-Chat-0628"])
    for name in ("ArenaHard", "MT-Bench", "MATH", "HumanEval", "MBPP", *TRAIN_SETS):
        assert benchmark_models(name, fixture_root) == sorted(PAPER_CANDIDATES), name
    assert benchmark_models("MBPP", tmp_path) == []
    assert "gemma-2-27b-it" in benchmarks.known_models("MT-Bench")


def test_scores_are_finite_floats(fixture_root: Path) -> None:
    for name in BENCHMARKS:
        for ex in load_benchmark(name, fixture_root):
            assert len(ex.responses) == len(ex.scores) == 5
            assert all(isinstance(s, float) and math.isfinite(s) for s in ex.scores)
            assert ex.prompt == ex.prompt.strip() and ex.prompt
