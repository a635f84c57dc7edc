"""`lookahead data collect` against scriptable stub endpoints on loopback: real HTTP through the `openai` client."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collect_stub import StubState, free_port, serve

from lightning_lookahead.backends import load_backends
from lightning_lookahead.cli import main
from lightning_lookahead.collect import CollectSettings, RetryPolicy, collect_async, journal_path, load_prompts
from lightning_lookahead.collect.journal import Journal
from lightning_lookahead.collect.retry import retry_after
from lightning_lookahead.commands.collect import EXIT_UNANSWERED, add_collect_parser
from lightning_lookahead.errors import DataError, LookaheadError

FAST = ["--no-progress", "--backoff", "0.01"]
#: The command as a child process, for the kill test (until `data collect` is reachable through `lookahead`).
CHILD = (
    "import argparse, sys\n"
    "from lightning_lookahead.commands.collect import add_collect_parser\n"
    "parser = argparse.ArgumentParser()\n"
    "add_collect_parser(parser.add_subparsers(required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


@pytest.fixture(scope="module")
def stub_server() -> Iterator[tuple[StubState, str]]:
    state = StubState()
    with serve(state) as url:
        yield state, url


@pytest.fixture()
def stub(stub_server: tuple[StubState, str]) -> StubState:
    stub_server[0].reset()
    return stub_server[0]


@pytest.fixture()
def endpoints(tmp_path: Path, stub_server: tuple[StubState, str]) -> Path:
    url = stub_server[1]
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        "backends:\n"
        f"  alpha: {{base_url: '{url}/alpha/v1', model: upstream-alpha}}\n"
        f"  bravo: {{base_url: '{url}/bravo/v1', timeout: 5}}\n",
        encoding="utf-8",
    )
    return path


def write_prompts(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def simple_prompts(tmp_path: Path, n: int) -> Path:
    return write_prompts(tmp_path / "prompts.jsonl", [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(n)])


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`lookahead data collect ARGV` as the CLI runs it: a LookaheadError is one `error:` line and status 2."""
    parser = argparse.ArgumentParser(prog="lookahead data")
    add_collect_parser(parser.add_subparsers(dest="data_command", required=True))
    args = parser.parse_args(["collect", *argv])
    try:
        rc = args.func(args)
    except LookaheadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        rc = 2
    out, err = capsys.readouterr()
    return rc, out, err


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def journal_records(path: Path) -> list[dict[str, Any]]:
    """The journal's complete answer lines (header skipped)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [json.loads(line) for line in lines[1:]]


def test_collects_every_pair_carrying_fields_and_messages(tmp_path, stub, endpoints, capsys):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "what is 2+2?"}]
    prompts = write_prompts(
        tmp_path / "prompts.jsonl",
        [
            {"id": "a1", "prompt": "hello", "benchmark": "chat", "split": "train", "reference": "hi"},
            {"prompt": messages, "domain": "math", "meta": {"source": "x", "n": [1, 2]}},
            {"id": 7, "prompt": "no usage please"},
        ],
    )
    stub.script[("bravo", "no usage please")] = [{"usage": False}]
    out = tmp_path / "out" / "data.jsonl"
    rc, stdout, stderr = run_cli(["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out)], capsys)
    assert rc == 0, stderr
    rows = read_rows(out)
    assert [r["id"] for r in rows] == ["a1", "p2", 7]  # input order; default id is p<line>
    assert rows[0] == {
        "id": "a1",
        "prompt": "hello",
        "benchmark": "chat",
        "split": "train",
        "reference": "hi",
        "responses": {"alpha": "alpha|hello", "bravo": "bravo|hello"},
        "tokens": {"alpha": {"prompt": 5, "completion": 2}, "bravo": {"prompt": 5, "completion": 2}},
    }
    assert (rows[1]["prompt"], rows[1]["domain"], rows[1]["meta"]) == (messages, "math", {"source": "x", "n": [1, 2]})
    assert rows[1]["responses"] == {"alpha": "alpha|what is 2+2?", "bravo": "bravo|what is 2+2?"}
    assert rows[2]["tokens"]["bravo"] is None and "errors" not in rows[2]
    sent = {(name, text): body for name, text, _, body in stub.requests}
    assert len(stub.requests) == 6
    assert sent[("alpha", "what is 2+2?")]["messages"] == messages  # the message list as given
    body = sent[("alpha", "hello")]
    sampled = (body["model"], body["temperature"], body["top_p"], body["max_tokens"])
    assert sampled == ("upstream-alpha", 0.8, 0.95, 1024)
    assert sent[("bravo", "hello")]["model"] == "bravo"
    assert not journal_path(out).exists()
    assert "answered 6, failed 0, skipped 0 as done" in stdout and "alpha 32+6, bravo 17+4" in stdout
    # the result reads back as a dataset (responses for every candidate; scoring comes later)
    from lightning_lookahead.data.dataset_file import read_dataset

    assert read_dataset(out).candidates == ("alpha", "bravo")


def test_concurrency_is_bounded_per_endpoint(tmp_path, stub, endpoints, capsys):
    stub.delay = 0.1
    prompts = simple_prompts(tmp_path, 12)
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(tmp_path / "o.jsonl")]
    rc, _, stderr = run_cli([*argv, "--concurrency", "3"], capsys)  # with the progress bar
    assert rc == 0, stderr
    assert stub.max_in_flight == Counter({"alpha": 3, "bravo": 3})
    assert len(read_rows(tmp_path / "o.jsonl")) == 12


def test_429_is_retried_after_retry_after(tmp_path, stub, endpoints, capsys):
    stub.script[("alpha", "question 0")] = [{"status": 429, "headers": {"Retry-After": "1"}}]
    stub.script[("bravo", "question 0")] = [{"status": 503}, {"status": 502}]
    prompts = simple_prompts(tmp_path, 1)
    out = tmp_path / "o.jsonl"
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out), *FAST]
    rc, _, stderr = run_cli(argv, capsys)
    assert rc == 0, stderr
    first, second = stub.attempts("alpha", "question 0")
    assert second - first >= 1.0  # the back-off alone would be ~0.01 s
    assert len(stub.attempts("bravo", "question 0")) == 3
    [row] = read_rows(out)
    assert row["responses"] == {"alpha": "alpha|question 0", "bravo": "bravo|question 0"} and "errors" not in row


def test_timeouts_and_client_errors_are_recorded(tmp_path, stub, endpoints, capsys):
    stub.script[("bravo", "question 0")] = [{"delay": 1.0}, {"delay": 1.0}]
    stub.script[("alpha", "question 1")] = [{"status": 400}]
    prompts = simple_prompts(tmp_path, 2)
    out = tmp_path / "o.jsonl"
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out), *FAST]
    rc, stdout, stderr = run_cli([*argv, "--timeout", "0.2", "--retries", "2"], capsys)
    assert rc == EXIT_UNANSWERED, stderr  # finished, but not every pair has a response
    assert "unanswered: 2 of 4 (prompt, candidate) pairs after up to 2 attempts each (alpha 1, bravo 1)" in stderr
    assert "rerun the same command to ask only the unanswered pairs again" in stderr
    rows = read_rows(out)
    assert rows[0]["responses"] == {"alpha": "alpha|question 0"} and "bravo" not in rows[0]["tokens"]
    assert rows[0]["errors"] == {"bravo": "timed out after 0.2 s (2 attempts)"}
    assert rows[1]["errors"] == {"alpha": "HTTP 400: stub alpha says 400"}  # not retried
    assert len(stub.attempts("bravo", "question 0")) == 2 and len(stub.attempts("alpha", "question 1")) == 1
    assert "answered 2, failed 2" in stdout
    assert "warning: bravo: 1 failed (first: q0: timed out" in stderr

    # a rerun retries only the failures (the finished output counts as done)
    stub.reset()
    rc, stdout, stderr = run_cli(argv, capsys)
    assert rc == 0, stderr
    assert sorted((n, t) for n, t, _, _ in stub.requests) == [("alpha", "question 1"), ("bravo", "question 0")]
    assert all("errors" not in r and len(r["responses"]) == 2 for r in read_rows(out))
    assert "answered 2, failed 0, skipped 2 as done" in stdout


def test_resume_after_kill_loses_and_repeats_nothing(tmp_path, stub, endpoints, capsys):
    stub.answer_limit = 5  # then every request hangs: the child is killed mid-run
    prompts = simple_prompts(tmp_path, 8)
    out = tmp_path / "o.jsonl"
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out), "--concurrency", "2", *FAST]
    child = subprocess.Popen([sys.executable, "-c", CHILD, "collect", *argv], stderr=subprocess.PIPE)
    journal = journal_path(out)
    deadline = time.monotonic() + 30
    while len(journal_records(journal)) < 5:
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
        time.sleep(0.02)
    child.kill()
    child.wait(10)
    before = {(r["id"], r["candidate"]) for r in journal_records(journal)}
    assert len(before) == len(journal_records(journal)) == 5 and not out.exists()
    with open(journal, "a", encoding="utf-8") as fh:  # as if killed in the middle of writing a line
        fh.write('{"id": "q7", "candidate": "alpha", "prompt_sha')

    stub.reset()
    rc, stdout, stderr = run_cli(argv, capsys)
    assert rc == 0, stderr
    asked = Counter((f"q{t.split()[-1]}", n) for n, t, _, _ in stub.requests)
    assert not before & set(asked) and max(asked.values()) == 1 and len(asked) == 16 - 5
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(8)]
    assert all(r["responses"] == {c: f"{c}|question {r['id'][1:]}" for c in ("alpha", "bravo")} for r in rows)
    assert "answered 11, failed 0, skipped 5 as done" in stdout and not journal.exists()


def test_interrupted_run_resumes_and_refuses_changed_prompts(tmp_path, stub, endpoints, capsys):
    stub.answer_limit = 3
    prompts_path = simple_prompts(tmp_path, 6)
    out = tmp_path / "o.jsonl"
    backends = load_backends(endpoints, ["alpha", "bravo"])
    settings = CollectSettings(concurrency=2, retry=RetryPolicy(backoff_s=0.01), progress=False)

    async def interrupted() -> None:  # what Ctrl-C does to `asyncio.run`: the main task is cancelled
        task = asyncio.create_task(collect_async(load_prompts(prompts_path), backends, out, settings))
        while len(journal_records(journal_path(out))) < 3:
            await asyncio.sleep(0.01)
        with pytest.raises(DataError, match="another `lookahead data collect` is writing this journal"):
            Journal.open(journal_path(out))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    done = journal_records(journal_path(out))
    assert len(done) == 3 and not out.exists()
    stub.reset()

    argv = ["--prompts", str(prompts_path), "--endpoints", str(endpoints), "--out", str(out), *FAST]
    rc, _, stderr = run_cli([*argv, "--temperature", "0.5"], capsys)
    assert rc == 2 and "[sampling]: was written with sampling" in stderr
    changed = done[0]["id"]
    original = prompts_path.read_text(encoding="utf-8")
    prompts_path.write_text(original.replace(f'"question {changed[1:]}"', '"something else"'), encoding="utf-8")
    rc, _, stderr = run_cli(argv, capsys)
    assert rc == 2 and f"the prompt of id '{changed}' differs from {prompts_path}" in stderr
    assert stderr.count("\n") == 1 and not stub.requests and not out.exists()

    prompts_path.write_text(original, encoding="utf-8")
    rc, stdout, stderr = run_cli(argv, capsys)
    assert rc == 0, stderr
    assert "answered 9, failed 0, skipped 3 as done" in stdout
    assert all(len(r["responses"]) == 2 for r in read_rows(out)) and len(stub.requests) == 9


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "x", "prompt": "a"}, {"id": "x", "prompt": "b"}], ":2 [id]: duplicate id 'x' (first on line 1)"),
        ([{"id": "x", "prompt": "a"}, {"id": "y"}], ":2 [prompt]: missing field 'prompt'"),
        ([{"prompt": "  "}], ":1 [prompt]: field 'prompt' is empty"),
        ([{"prompt": [{"role": "user"}]}], ":1 [prompt]: message 0 must be"),
        ([{"prompt": "a", "responses": {}}], ":1 [responses]: field 'responses' is written by the collector"),
        (['{"prompt": "a"', {"prompt": "b"}], ":1: invalid JSON line"),
    ],
)
def test_bad_prompt_rows_are_one_error_line(tmp_path, stub, endpoints, capsys, rows, message):
    prompts = write_prompts(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "o.jsonl"
    rc, _, stderr = run_cli(["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out)], capsys)
    assert rc == 2
    assert stderr.startswith(f"error: {prompts}{message}") and stderr.count("\n") == 1
    assert not out.exists() and not journal_path(out).exists() and not stub.requests


def test_text_prompts_and_chosen_candidates(tmp_path, stub, endpoints, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first prompt\n\nthird line\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out), *FAST]
    rc, _, stderr = run_cli([*argv, "--candidates", "bravo"], capsys)
    assert rc == 0, stderr
    rows = read_rows(out)
    assert [(r["id"], r["prompt"], r["responses"]) for r in rows] == [
        ("p1", "first prompt", {"bravo": "bravo|first prompt"}),
        ("p3", "third line", {"bravo": "bravo|third line"}),
    ]
    rc, _, stderr = run_cli([*argv, "--candidates", "alpha,bravx"], capsys)
    assert rc == 2 and f"error: {endpoints}: no backend for candidate 'bravx' (did you mean 'bravo'?)" in stderr


def test_unreachable_endpoint_fails_after_retries(tmp_path, stub, endpoints, capsys):
    with open(endpoints, "a", encoding="utf-8") as fh:
        fh.write(f"  down: {{base_url: 'http://127.0.0.1:{free_port()}/v1'}}\n")  # nothing listens there
    prompts = simple_prompts(tmp_path, 1)
    out = tmp_path / "o.jsonl"
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out), *FAST, "--retries", "2"]
    rc, _, stderr = run_cli([*argv, "--candidates", "alpha,down"], capsys)
    assert rc == EXIT_UNANSWERED and "unanswered: 1 of 2 (prompt, candidate) pairs" in stderr and "(down 1)" in stderr
    [row] = read_rows(out)
    assert row["responses"] == {"alpha": "alpha|question 0"}
    assert row["errors"]["down"].startswith("connection failed") and row["errors"]["down"].endswith("(2 attempts)")


def test_every_request_failing_exits_3_drops_counted_rows_and_resumes(tmp_path, stub, endpoints, capsys):
    """All endpoints down: exit 3 (not 0), rows written without responses, `data check` counts them, reruns resume."""
    prompts = simple_prompts(tmp_path, 3)
    for name in ("alpha", "bravo"):
        for i in range(3):
            stub.script[(name, f"question {i}")] = [{"status": 503}, {"status": 503}]
    out = tmp_path / "o.jsonl"
    argv = ["--prompts", str(prompts), "--endpoints", str(endpoints), "--out", str(out), *FAST, "--retries", "2"]
    rc, stdout, stderr = run_cli(argv, capsys)
    assert rc == EXIT_UNANSWERED
    assert "unanswered: 6 of 6 (prompt, candidate) pairs after up to 2 attempts each (alpha 3, bravo 3)" in stderr
    assert "answered 0, failed 6" in stdout
    rows = read_rows(out)
    assert [(r["responses"], sorted(r["errors"])) for r in rows] == [({}, ["alpha", "bravo"])] * 3
    assert not journal_path(out).exists()

    # the file reads as a dataset whose every row is a counted drop, per candidate, not a refused file
    assert main(["data", "check", "--dataset", str(out)]) == 0
    checked = capsys.readouterr().out
    assert "3 rows, 2 candidates: alpha, bravo" in checked and "usable rows by split: none" in checked
    assert "dropped: 3 of 3 rows: 3 no response from alpha, 3 no response from bravo" in checked
    # and scoring it is not refused either: there is nothing to score
    assert main(["data", "score", "--dataset", str(out), "--scorer", "math", "--out", str(tmp_path / "s.jsonl")]) == 0
    capsys.readouterr()

    # the endpoints are back: a rerun for one candidate asks only its pairs and keeps the other's failures
    stub.reset()
    rc, stdout, stderr = run_cli([*argv, "--candidates", "alpha"], capsys)
    assert rc == 0, stderr
    assert sorted((n, t) for n, t, _, _ in stub.requests) == [("alpha", f"question {i}") for i in range(3)]
    rows = read_rows(out)
    assert [(sorted(r["responses"]), sorted(r["errors"])) for r in rows] == [(["alpha"], ["bravo"])] * 3
    assert main(["data", "check", "--dataset", str(out)]) == 0
    assert "dropped: 3 of 3 rows: 3 no response from bravo" in capsys.readouterr().out

    # the same command as the first: only the pairs still unanswered are asked, and the file is complete
    stub.reset()
    rc, stdout, stderr = run_cli(argv, capsys)
    assert rc == 0, stderr
    assert sorted((n, t) for n, t, _, _ in stub.requests) == [("bravo", f"question {i}") for i in range(3)]
    assert "answered 3, failed 0, skipped 3 as done" in stdout and "unanswered" not in stderr
    assert all(sorted(r["responses"]) == ["alpha", "bravo"] and "errors" not in r for r in read_rows(out))


def test_help_documents_the_exit_statuses(capsys):
    parser = argparse.ArgumentParser(prog="lookahead data")
    add_collect_parser(parser.add_subparsers(dest="data_command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["collect", "--help"])
    text = capsys.readouterr().out
    assert "exit status:" in text and f"{EXIT_UNANSWERED}    finished with unanswered pairs" in text


def test_retry_after_forms():
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None
    policy = RetryPolicy(backoff_s=1.0, backoff_max_s=4.0)
    assert 0.5 <= policy.delay(1) <= 1.5 and 2.0 <= policy.delay(10) <= 6.0
    assert 30.0 <= policy.delay(1, retry_after=30.0) <= 30.75
