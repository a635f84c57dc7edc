"""`lookahead data score` journals every score: a killed judge run keeps what it scored and a rerun scores the rest.

Real parts throughout: the command runs as a child process against the loopback judge stub through the `openai`
client, and is killed (SIGKILL) mid-run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from judge_stub import JudgeLog, serve_judge

from lightning_lookahead.cli import main
from lightning_lookahead.scorers.journal import score_journal_path

CANDIDATES = ("alpha", "beta")
ROWS = 6
KILL_AFTER = 5
_PAIR = re.compile(r"\((\w+)/(\w+)\)")


def _rows() -> list[dict[str, Any]]:
    """Each answer tells the stub its rating and names its (row, candidate), so every request can be traced."""
    rows = []
    for i in range(ROWS):
        responses = {c: f"verdict:Rating: [[{1 + (3 * i + j) % 10}]] (r{i}/{c})" for j, c in enumerate(CANDIDATES)}
        rows.append({"id": f"r{i}", "prompt": f"question {i}", "responses": responses, "domain": "chat"})
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _journaled(path: Path) -> list[tuple[str, str]]:
    """The (row, candidate) pairs of the journal's complete lines (header skipped)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [(obj["id"], obj["candidate"]) for obj in map(json.loads, lines[1:])]


def _asked(log: JudgeLog) -> list[tuple[str, str]]:
    return [tuple(_PAIR.search(answer).groups()) for answer in log.answers]  # type: ignore[union-attr,misc]


def test_a_killed_judge_run_resumes_scoring_only_what_is_missing(tmp_path: Path, capsys) -> None:
    dataset = _write(tmp_path / "rows.jsonl", _rows())
    out = tmp_path / "scored.jsonl"
    journal = score_journal_path(out)
    log = JudgeLog()
    with serve_judge(log) as url:
        judge = ["--scorer", "judge", "--judge-base-url", url, "--judge-model", "j", "--judge-retries", "0"]
        command = ["data", "score", "--dataset", str(dataset), *judge, "--judge-concurrency", "2", "--no-progress"]

        log.answer_limit = KILL_AFTER  # then every request hangs: the child is killed mid-run
        child = subprocess.Popen(
            [sys.executable, "-m", "lightning_lookahead.cli", *command, "--out", str(out)], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while len(_journaled(journal)) < KILL_AFTER:
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
            time.sleep(0.02)
        child.kill()
        child.wait(10)
        before = _journaled(journal)
        assert len(before) == len(set(before)) == KILL_AFTER and not out.exists()
        kept = journal.read_bytes()
        with open(journal, "a", encoding="utf-8") as fh:  # as if killed in the middle of writing a line
            fh.write('{"id": "r5", "candidate": "beta", "item_sha')

        # another scorer does not mix its scores into this journal: one error line, nothing written
        assert main([*command[:4], "--scorer", "math", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{journal}:1 [scorer]: holds the scores of 'judge:j'" in err
        assert journal.read_bytes() == kept and not out.exists()  # only the torn line is gone

        # one answer the killed run scored changes before the rerun: that one is scored again, the rest reused
        rows = _rows()
        changed_id, changed_candidate = before[0]
        row = rows[int(changed_id[1:])]
        row["responses"][changed_candidate] = f"verdict:Rating: [[10]] ({changed_id}/{changed_candidate}) edited"
        _write(dataset, rows)

        log.answer_limit = None
        log.answers.clear()
        assert main([*command, "--out", str(out)]) == 0
        asked = _asked(log)
        assert sorted(asked) == sorted({*[(f"r{i}", c) for i in range(ROWS) for c in CANDIDATES]} - set(before[1:]))
        assert f"{KILL_AFTER - 1} of them from the journal of an interrupted run" in capsys.readouterr().out
        assert not journal.exists()

        # the same file scored in one uninterrupted run
        reference = tmp_path / "reference.jsonl"
        log.answers.clear()
        assert main([*command, "--out", str(reference)]) == 0
        assert len(log.answers) == ROWS * len(CANDIDATES)
    assert out.read_bytes() == reference.read_bytes()
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert scored[int(changed_id[1:])]["scores"][changed_candidate] == 10.0
    assert all(set(r["scores"]) == set(CANDIDATES) and None not in r["scores"].values() for r in scored)


def test_in_place_scoring_journals_beside_the_dataset_and_cleans_up(tmp_path: Path) -> None:
    dataset = _write(tmp_path / "rows.jsonl", _rows()[:2])
    log = JudgeLog()
    with serve_judge(log) as url:
        judge = ["--scorer", "judge", "--judge-base-url", url, "--judge-model", "j", "--judge-retries", "0"]
        assert main(["data", "score", "--dataset", str(dataset), *judge, "--in-place", "--no-progress"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
    assert [json.loads(line)["scores"] for line in dataset.read_text(encoding="utf-8").splitlines()] == [
        {"alpha": 1.0, "beta": 2.0},
        {"alpha": 4.0, "beta": 5.0},
    ]
