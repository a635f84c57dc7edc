"""`lookahead data score` end to end: scores and score_errors written, other fields kept, bad input refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from judge_stub import JudgeLog, serve_judge

from lightning_lookahead.cli import main
from lightning_lookahead.scorers import OPEN_ENDED_WITHOUT_FALLBACK, route_of
from lightning_lookahead.scorers.base import ScoreItem

ROWS: list[dict[str, Any]] = [
    {
        "id": "gsm-1",
        "benchmark": "GSM8k",
        "prompt": "What is 6 * 7?",
        "responses": {"alpha": "6 * 7 = 42\n#### 42", "beta": "It is 41."},
        "reference": "#### 42",
        "tokens": {"alpha": 9, "beta": 4},
        "split": "test",
    },
    {
        "id": 2,
        "domain": "math",
        "prompt": [{"role": "user", "content": "Half of one?"}],
        "responses": {"alpha": r"$\boxed{\frac12}$", "beta": "No idea."},
        "reference": "0.5",
        "scores": {"alpha": 0.25},
        "cost": {"alpha": 0.001},
    },
    {
        "id": "mbpp-3",
        "benchmark": "MBPP",
        "prompt": "Write add(a, b).",
        "responses": {"alpha": "```python\ndef add(a, b):\n    return a + b\n```", "beta": "def add(a, b): return a"},
        "reference": "assert add(2, 3) == 5\n",
        "errors": {"beta": "kept as is"},
    },
    {
        "id": "chat-4",
        "benchmark": "AlpacaEval",
        "prompt": "Tell me a joke.",
        "responses": {"alpha": "verdict:Rating: [[7]]"},
    },
    {"id": "nomath-5", "domain": "math", "prompt": "1+1?", "responses": {"alpha": "2", "beta": None}},
]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return _write(tmp_path / "rows.jsonl", ROWS)


def test_auto_fills_scores_and_explains_nulls(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scored" / "rows.jsonl"
    assert main(["data", "score", "--dataset", str(dataset), "--scorer", "auto", "--out", str(out)]) == 0
    rows = _read(out)
    assert [r["scores"] for r in rows] == [
        {"alpha": 1.0, "beta": 0.0},
        {"alpha": 0.25, "beta": 0.0},  # an existing score is kept
        {"alpha": 1.0, "beta": 0.0},
        {"alpha": None},
        {"alpha": None, "beta": None},
    ]
    assert "score_errors" not in rows[0] and "score_errors" not in rows[2]
    assert rows[1]["score_errors"] == {"beta": "no final answer found in the response (scored 0)"}
    assert rows[3]["score_errors"] == {"alpha": OPEN_ENDED_WITHOUT_FALLBACK}
    assert rows[4]["score_errors"]["alpha"] == "no reference answer in the row"
    assert "no response" in rows[4]["score_errors"]["beta"]
    assert "vs reference" in rows[0]["score_details"]["beta"] and "AssertionError" in rows[2]["score_details"]["beta"]
    for before, after in zip(ROWS, rows, strict=True):  # every other field unchanged, in its order
        kept = {k: v for k, v in after.items() if k not in ("scores", "score_errors", "score_details")}
        assert kept == {k: v for k, v in before.items() if k != "scores"}
        assert list(kept) == [k for k in before if k != "scores"]
    assert dataset.read_text(encoding="utf-8") == "".join(json.dumps(r) + "\n" for r in ROWS)
    assert sorted(p.name for p in out.parent.iterdir()) == ["rows.jsonl"]  # no temporary file left
    printed = capsys.readouterr().out
    assert (
        "auto: scored 8 responses in 5 rows (3 null, reasons in score_errors; 1 already scored, kept)" in printed
        and f"wrote {out}" in printed
    )


def test_overwrite_candidates_and_in_place(dataset: Path) -> None:
    args = ["data", "score", "--dataset", str(dataset), "--scorer", "math", "--in-place", "--no-progress"]
    assert main([*args, "--candidates", "alpha", "--overwrite", "--no-details"]) == 0
    rows = _read(dataset)
    assert rows[1]["scores"] == {"alpha": 1.0}
    assert rows[0]["scores"] == {"alpha": 1.0}
    assert all("score_details" not in r for r in rows)
    assert "beta" not in rows[0]["scores"]


def test_rescoring_drops_a_stale_error(tmp_path: Path) -> None:
    row = {"id": 1, "prompt": "2+2?", "responses": {"a": "4"}, "reference": "4", "score_errors": {"a": "old"}}
    path = _write(tmp_path / "one.jsonl", [{**row, "scores": {"a": None}}])
    assert main(["data", "score", "--dataset", str(path), "--scorer", "math", "--in-place", "--no-progress"]) == 0
    [scored] = _read(path)
    assert scored["scores"] == {"a": 1.0} and "score_errors" not in scored


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    with serve_judge(JudgeLog()) as url:
        yield url


def test_auto_with_a_judge_for_open_ended_rows(dataset: Path, tmp_path: Path, judge_url: str) -> None:
    out = tmp_path / "out.jsonl"
    args = ["data", "score", "--dataset", str(dataset), "--out", str(out), "--no-progress", "--scorer", "auto:judge"]
    assert main([*args, "--judge-base-url", judge_url, "--judge-model", "j", "--judge-retries", "0"]) == 0
    chat = _read(out)[3]
    assert chat["scores"] == {"alpha": 7.0} and chat["score_details"] == {"alpha": "Rating: [[7]]"}


def test_auto_routes_by_benchmark_then_by_reference() -> None:
    def route(domain: str | None, reference: str | None) -> str:
        return route_of(ScoreItem("r", "c", "p", "x", reference, domain))

    assert route("gsm8k", None) == route("openmathinstruct2_filtered2", None) == "math"
    assert route("humaneval", None) == route("selfossinstructsc2_filtered2", None) == route("code", None) == "code"
    assert route("mt-bench", "a reference answer") == "open"
    assert route(None, "assert f(1) == 2") == route(None, "def check(candidate):\n    pass") == "code"
    assert route(None, "42") == "math" and route(None, None) == "open"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "rows.jsonl:2: invalid JSON"),
        ('{"id": "x", "prompt": "p"}', "rows.jsonl:2 [responses]: missing field 'responses'"),
        ('{"id": "x", "prompt": "p", "responses": {"a": 3}}', "rows.jsonl:2 [responses.a]: a response must be"),
        ('{"id": "x", "prompt": "p", "responses": {"a": "t"}, "scores": {"a": NaN}}', "[scores.a]: a score must be"),
        ('{"id": "x", "prompt": "p", "responses": {"a": "t"}, "scores": {"a": "9"}}', "[scores.a]: a score must be"),
        ('{"id": "gsm-1", "prompt": "p", "responses": {"a": "t"}}', "rows.jsonl:2 [id]: duplicated id 'gsm-1'"),
        ('{"id": "x", "prompt": [{"role": "user"}], "responses": {"a": "t"}}', "[prompt[0]]: each message"),
        ("[1, 2]", "rows.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_a_bad_row_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys, line: str, message: str) -> None:
    path = tmp_path / "rows.jsonl"
    original = json.dumps(ROWS[0]) + "\n" + line + "\n"
    path.write_text(original, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["data", "score", "--dataset", str(path), "--scorer", "math", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["data", "score", "--dataset", str(path), "--scorer", "math", "--in-place"]) == 2
    assert path.read_text(encoding="utf-8") == original


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scorer", "math"], "--out FILE, or --in-place"),
        (["--scorer", "mathh", "--out", "o.jsonl"], "unknown scorer 'mathh'; did you mean 'math'?"),
        (["--scorer", "reward", "--out", "o.jsonl"], "needs a Hub id or a local folder"),
        (["--scorer", "auto:math", "--out", "o.jsonl"], "must be a judge or reward spec"),
        (["--scorer", "judge:missing.yaml:x", "--out", "o.jsonl"], "backends file not found"),
        (["--scorer", "math", "--out", "o.jsonl", "--candidates", "alpah"], "did you mean 'alpha'?"),
    ],
)
def test_usage_errors_are_one_line(dataset: Path, tmp_path: Path, capsys, monkeypatch, extra, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["data", "score", "--dataset", str(dataset), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()
