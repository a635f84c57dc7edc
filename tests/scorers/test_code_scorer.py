"""Code scoring by unit tests in a limited child process: pass, fail, hang, network, memory, extraction."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning_lookahead.scorers import parse_scorer
from lightning_lookahead.scorers.base import ScoreItem
from lightning_lookahead.scorers.code_tests import CodeTestScorer, extract_code

ADD_TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"


def _item(response: str, tests: str | None = ADD_TESTS) -> ScoreItem:
    return ScoreItem("r", "c", "Write add(a, b).", response, tests)


def test_extraction_prefers_the_longest_python_block() -> None:
    response = "Here:\n```python\nx = 1\n```\nand the solution\n```python\ndef add(a, b):\n    return a + b\n```\n"
    assert extract_code(response) == "def add(a, b):\n    return a + b\n"
    assert extract_code("```bash\nls -la /tmp\n```\n```\ny = 2\n```") == "y = 2\n"
    assert extract_code("def add(a, b): return a + b") == "def add(a, b): return a + b"
    assert extract_code("Sure!\n```python\ndef add(a, b):\n    return a + b") == "def add(a, b):\n    return a + b"


def test_passing_and_failing_solutions_score_one_and_zero() -> None:
    done: list[int] = []
    results = CodeTestScorer(workers=2).score(
        [
            _item("```python\ndef add(a, b):\n    return a + b\n```"),
            _item("```python\ndef add(a, b):\n    return a - b\n```"),
            _item("def add(a, b):\n    raise ValueError('nope')"),
            _item("this is not python at all"),
        ],
        done.append,
    )
    assert [(r.value, r.error) for r in results] == [(1.0, None), (0.0, None), (0.0, None), (0.0, None)]
    assert "AssertionError" in results[1].detail and "ValueError: nope" in results[2].detail
    assert "SyntaxError" in results[3].detail
    assert sum(done) == 4


def test_the_solution_runs_as_a_module_and_cannot_skip_the_tests() -> None:
    demo = "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    print(add(input(), 1))\n"
    early_exit = "import sys\ndef add(a, b):\n    return 0\nsys.exit(0)\n"
    results = CodeTestScorer().score([_item(demo), _item(early_exit), _item(demo, None)])
    assert [r.value for r in results[:2]] == [1.0, 0.0]  # the demo would read the (closed) stdin
    assert "exited before the tests ran" in results[1].detail
    assert results[2].value is None and "no test code" in results[2].error


def test_a_hang_is_a_failed_solution_and_its_whole_process_group_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    hang = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "while True:\n    time.sleep(0.05)\n"
    )
    start = time.monotonic()
    [result] = CodeTestScorer(timeout_s=1.5).score([_item(hang)])
    assert time.monotonic() - start < 10
    assert result.value == 0.0 and result.error.startswith("timeout")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for an init that does not reap counts as dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        yield server


def test_network_use_fails_without_reaching_the_network(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    attempts = [
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
        f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\n",
        f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\n",
        f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)\n",
    ]
    results = CodeTestScorer().score([_item(code, "assert True") for code in attempts])
    assert [r.value for r in results] == [0.0] * len(attempts)
    assert all("network access is disabled" in r.detail for r in results)
    with pytest.raises(TimeoutError):
        listener.accept()


def test_local_socketpairs_still_work_so_asyncio_does() -> None:
    code = "import asyncio\n\nasync def twice(x):\n    await asyncio.sleep(0)\n    return 2 * x\n"
    [result] = CodeTestScorer().score([_item(code, "assert asyncio.run(twice(2)) == 4")])
    assert result.value == 1.0, result.detail


def test_the_child_gets_an_empty_environment(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    tests = "import os\nassert 'HTTPS_PROXY' not in os.environ and 'OPENAI_API_KEY' not in os.environ\n"
    [result] = CodeTestScorer().score([_item("x = 1", tests)])
    assert result.value == 1.0, result.detail


def test_going_over_the_memory_limit_fails() -> None:
    hog = "blocks = [bytearray(64 * 1024 * 1024) for _ in range(16)]\n"
    [result] = CodeTestScorer(memory_mb=256).score([_item(hog, "assert len(blocks) == 16")])
    assert result.value == 0.0 and "memory limit of 256 MiB" in result.error


def test_runs_go_in_parallel_up_to_the_worker_count() -> None:
    scorer = parse_scorer("code")
    assert isinstance(scorer, CodeTestScorer) and scorer.workers == 4
    start = time.monotonic()
    results = scorer.score([_item("import time\ntime.sleep(1)\n", "assert True")] * 4)
    assert [r.value for r in results] == [1.0] * 4
    assert time.monotonic() - start < 3.5  # one at a time would take over 4 s


def test_no_test_process_outlives_the_scorer() -> None:
    before = _children()
    CodeTestScorer(timeout_s=1).score([_item("while True: pass", "assert True")] * 2)
    assert _children() <= before


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if fields[1] == me and fields[0] != "Z":
                found.add(int(entry.name))
    return found
