"""Code scoring by unit tests: run the response's code with the row's test code in a separate, limited process.

The code is the longest fenced ```` ```python ```` block of the response (else the longest untagged block, else the
whole text). It runs as module ``solution`` (so its ``if __name__ == "__main__":`` demo does not run), then the
row's ``reference`` runs in the same namespace as ``__main__``; the reference must call its checks itself (e.g. end
with ``check(add)``). Exit status 0 → 1.0; a failing assertion, an exception or a solution that exits before the
tests → 0.0. A run past the time limit is a failed solution too: 0.0, noted in ``score_errors``, and its whole
process group is killed; so is going over the memory limit (a ``MemoryError``).

Each run gets a fresh temporary working directory, ``python -I`` (no user site, no ``PYTHON*`` variables), an
almost empty environment (no proxies, no keys), stdin closed, address space and file size limits, and a prelude
that replaces ``socket.socket``, ``socket.create_connection``, ``getaddrinfo`` and friends with functions that
raise. This is a best-effort guard against honest mistakes (a stray download, a runaway loop), NOT a security
sandbox: untrusted code can get around it (``ctypes``, ``subprocess``); run hostile code in a container or VM.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.scorers.base import OnResult, Progress, ScoreItem, ScoreResult, failed, finished

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
MAX_FILE_BYTES = 64 * 1024 * 1024
OUTPUT_LIMIT = 2000
_POLL_S = 0.01
#: The child's whole environment: nothing inherited (no proxies, no API keys), one thread per numeric library.
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = ("python", "py", "python3")

#: Runs first in the child: no network, then the solution as a module, then the tests as __main__.
GUARD = """\
import _socket
import builtins
import socket
import sys


def _no_network(*args, **kwargs):
    raise PermissionError("network access is disabled while running tests")


_RawSocket = _socket.socket


class _NoNetworkRawSocket(_RawSocket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None:  # wrapping an existing descriptor (socketpair, fromfd) opens nothing new
            _no_network()
        _RawSocket.__init__(self, family, type, proto, fileno)


class _NoNetworkSocket(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None:
            _no_network()
        super().__init__(family, type, proto, fileno)


# socket.socket.__init__ looks _socket.socket up at call time, so both doors are shut
_socket.socket = _socket.SocketType = _NoNetworkRawSocket
socket.socket = socket.SocketType = _NoNetworkSocket
for _name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
              "gethostbyaddr", "getnameinfo"):
    setattr(socket, _name, _no_network)
    setattr(_socket, _name, _no_network)


def _run(path, namespace):
    with open(path, encoding="utf-8") as fh:
        exec(compile(fh.read(), path, "exec"), namespace)


_namespace = {"__name__": "solution", "__file__": "solution.py", "__builtins__": builtins}
sys.argv = ["solution.py"]
try:
    _run("solution.py", _namespace)
except SystemExit:
    print("the solution exited before the tests ran", file=sys.stderr)
    sys.exit(1)
_namespace["__name__"] = "__main__"
_run("tests.py", _namespace)
"""


def extract_code(response: str) -> str:
    """The code to test: the longest ```python block, else the longest untagged block, else the whole text."""
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(response)]
    tagged = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    untagged = [body for tag, body in blocks if not tag]
    chosen = tagged or untagged
    return max(chosen, key=len) if chosen else response


@dataclass
class _Run:
    index: int
    process: subprocess.Popen[bytes]
    deadline: float


class CodeTestScorer:
    """Runs up to ``workers`` test processes at once, each limited to ``timeout_s`` and ``memory_mb``."""

    name = "code"

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        workers: int = 4,
        python: str = sys.executable,
    ) -> None:
        if timeout_s <= 0 or memory_mb < 64 or workers < 1:
            raise LookaheadError("--code-timeout must be positive, --code-memory-mb at least 64, --workers at least 1")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.workers = workers
        self.python = python

    def score(
        self, items: Sequence[ScoreItem], progress: Progress | None = None, *, on_result: OnResult | None = None
    ) -> list[ScoreResult]:
        """Processes are started and polled from this thread (no thread pool: ``preexec_fn`` is unsafe there)."""
        results: list[ScoreResult | None] = [None] * len(items)
        pending = list(range(len(items)))[::-1]
        running: list[_Run] = []
        with tempfile.TemporaryDirectory(prefix="lookahead-code-") as root:
            try:
                while pending or running:
                    while pending and len(running) < self.workers:
                        i = pending.pop()
                        started = self._start(i, items[i], Path(root) / str(i))
                        if isinstance(started, ScoreResult):
                            results[i] = finished(i, started, progress, on_result)
                        else:
                            running.append(started)
                    for run in [r for r in running if r.process.poll() is not None or time.monotonic() > r.deadline]:
                        running.remove(run)
                        result = self._finish(run, Path(root) / str(run.index))
                        results[run.index] = finished(run.index, result, progress, on_result)
                    time.sleep(_POLL_S)
            finally:
                for run in running:  # interrupted: leave no test process behind
                    _kill_group(run.process)
        return [r for r in results if r is not None]

    def _start(self, index: int, item: ScoreItem, workdir: Path) -> _Run | ScoreResult:
        if item.reference is None or not item.reference.strip():
            return failed("no test code in the row's reference")
        workdir.mkdir()
        (workdir / "solution.py").write_text(extract_code(item.response), encoding="utf-8")
        (workdir / "tests.py").write_text(item.reference, encoding="utf-8")
        (workdir / "guard.py").write_text(GUARD, encoding="utf-8")
        try:  # output to a file, not a pipe: a chatty child cannot block on a full pipe
            with open(workdir / "output.txt", "wb") as output:
                process = subprocess.Popen(
                    [self.python, "-I", "-X", "utf8", "guard.py"],
                    cwd=workdir,
                    env=CHILD_ENV,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as a whole
                    preexec_fn=partial(_limit_resources, self.memory_mb * 1024 * 1024),
                )
        except OSError as exc:
            return failed(f"could not start {self.python}: {exc}")
        return _Run(index, process, time.monotonic() + self.timeout_s)

    def _finish(self, run: _Run, workdir: Path) -> ScoreResult:
        timed_out = run.process.poll() is None
        _kill_group(run.process)
        output = _tail(workdir / "output.txt")
        if timed_out:
            return ScoreResult(0.0, f"timeout: the tests did not finish within {self.timeout_s:g} s (scored 0)", output)
        if run.process.returncode == 0:
            return ScoreResult(1.0)
        if "MemoryError" in output:
            return ScoreResult(0.0, f"went over the memory limit of {self.memory_mb} MiB (scored 0)", output)
        return ScoreResult(0.0, detail=output or f"exit status {run.process.returncode}")


def _limit_resources(memory_bytes: int) -> None:
    """In the child, before exec: cap the address space and file sizes, no core dumps (nothing imported here)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the child and anything it started (they share its process group), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(path: Path) -> str:
    """The last ``OUTPUT_LIMIT`` characters of the captured output."""
    text = path.read_bytes()[-4 * OUTPUT_LIMIT :].decode("utf-8", errors="replace").strip()
    return text if len(text) <= OUTPUT_LIMIT else "…" + text[-OUTPUT_LIMIT:]
