"""``lookahead serve`` as real processes: several workers behind one port (metrics merged across them), graceful
shutdown on SIGTERM (in-flight requests finish, the process exits 0), and what the CLI hands the workers.

The process tests serve a KeywordRouter through ``ServeSpec.loader`` (no torch, so workers start in seconds);
test_server.py's real-router test loads a tiny export with ``load_router``, as every worker of ``lookahead serve`` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stub_backend import KEYWORD_CANDIDATES, create_stub_app, free_port, running

from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.inference.calibrations import Calibration, save_calibration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = httpx.Timeout(10.0)
START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with running(create_stub_app()) as url:
        yield url


def backends_file(directory: Path, stub_url: str, candidates: list[str]) -> Path:
    path = directory / "backends.yaml"
    lines = [f"  {c}: {{base_url: '{stub_url}/{c}/v1', cost: 0.001}}" for c in candidates]
    path.write_text("backends:\n" + "\n".join(lines) + "\n")
    return path


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_MODE="disabled", TMPDIR=str(tmp))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])  # stub_backend
    return env


_SERVE = """
import json, sys
from lightning_lookahead.serving import ServeSpec, serve
serve(ServeSpec(**json.loads(sys.argv[1]), loader="stub_backend:keyword_loader"))
print("served", flush=True)
"""


def start(tmp_path: Path, stub_url: str, **spec: object) -> tuple[subprocess.Popen, str]:
    """``serve(ServeSpec(...))`` in a fresh interpreter, as ``lookahead serve`` runs it; (process, base URL)."""
    port = free_port()
    home = tmp_path / "run"
    home.mkdir()
    save_calibration(
        home, Calibration("cheap", tuple(KEYWORD_CANDIDATES), DecisionRule("penalty", lam=1.0, costs=(0, 1, 1, 1, 1)))
    )
    settings = {"checkpoint": str(home), "backends": str(backends_file(tmp_path, stub_url, KEYWORD_CANDIDATES)),
                "port": port, "graceful_timeout": 15, "log_level": "warning", **spec}  # fmt: skip
    (tmp_path / "tmp").mkdir()
    cmd = [sys.executable, "-c", _SERVE, json.dumps(settings)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=environment(tmp_path / "tmp"), stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{url}/ready did not turn 200 within {START_TIMEOUT_S} s")


def metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT).text
    return {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def total(samples: dict, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def chat(url: str, text: str, model: str = "router", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def stop_gracefully_during_a_slow_request(proc: subprocess.Popen, url: str) -> tuple[httpx.Response, float]:
    """SIGTERM while a 2-second request is in flight; (its answer, seconds from the signal to the exit)."""
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(chat(url, "slow", stub={"delay": 2.0})))
    thread.start()
    deadline = time.monotonic() + 10
    while total(metrics(url), "lookahead_in_flight_requests") < 1:
        assert time.monotonic() < deadline, "the slow request never arrived"
        time.sleep(0.02)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    thread.join(30)
    proc.wait(30)
    assert len(answers) == 1
    return answers[0], time.monotonic() - signalled


def test_two_workers_serve_one_port_with_merged_metrics_and_stop_gracefully(tmp_path, stub_url):
    proc, url = start(tmp_path, stub_url, workers=2)  # /ready is 200 only once both workers are
    try:
        pids, deadline = set(), time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            health = httpx.get(f"{url}/health", timeout=TIMEOUT).json()  # a new connection each time
            assert health["ready"] and health["calibrations"] == ["cheap"]
            pids.add(health["pid"])
        assert len(pids) == 2 and proc.pid not in pids  # two worker processes, neither the parent
        ready = httpx.get(f"{url}/ready", timeout=TIMEOUT).json()
        assert ready == {"status": "ready", "workers": 2, "workers_ready": 2}
        n = 8
        for i in range(n):
            response = chat(url, f"write code {i}", "router:cheap" if i % 2 else "router")
            assert response.status_code == 200
            assert response.headers["x-lookahead-model"] == ("alpha" if i % 2 else "echo")
        for _ in range(4):  # whichever worker answers the scrape reports every worker's counts
            samples = metrics(url)
            assert total(samples, "lookahead_requests_total") == n
            live = {dict(labels)["pid"] for (name, labels), v in samples.items() if name == "lookahead_ready" and v}
            assert live == {str(p) for p in pids}
        routes = {dict(labels)["route"] for (name, labels) in samples if name == "lookahead_requests_total"}
        assert routes == {"router", "router:cheap"}

        answer, _ = stop_gracefully_during_a_slow_request(proc, url)
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "alpha|slow"
        assert proc.returncode == 0
        assert not list((tmp_path / "tmp").glob("lookahead-serve-*"))  # the metrics folder was removed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_one_process_finishes_in_flight_requests_on_sigterm_and_exits_0(tmp_path, stub_url):
    proc, url = start(tmp_path, stub_url)
    try:
        assert httpx.get(f"{url}/ready", timeout=TIMEOUT).json() == {"status": "ready", "workers": 1}
        answer, seconds = stop_gracefully_during_a_slow_request(proc, url)
        assert answer.status_code == 200
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "served" in out  # serve() returned: not killed by the re-raised signal
        assert seconds < 15  # once the request was done it did not wait out the graceful timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_worker_that_cannot_load_stops_the_server_with_the_error(tmp_path, stub_url):
    settings = {"checkpoint": str(tmp_path), "backends": str(backends_file(tmp_path, stub_url, ["alpha"])),
                "port": free_port(), "workers": 2, "log_level": "error"}  # fmt: skip
    cmd = [sys.executable, "-c", _SERVE, json.dumps(settings)]
    out = subprocess.run(cmd, cwd=ROOT, env=environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "no backend for candidate 'bravo'" in out.stderr.splitlines()[-1]  # the worker's reason, last


# --- what the CLI hands the workers -----------------------------------------------------------------------------


def test_cli_options_become_the_spec(monkeypatch, tmp_path, capsys):
    from lightning_lookahead import serving
    from lightning_lookahead.cli import main

    seen: list[serving.ServeSpec] = []
    monkeypatch.setattr(serving, "serve", seen.append)
    backends = tmp_path / "b.yaml"
    backends.write_text("backends: {}\n")
    args = ["serve", "--checkpoint", str(tmp_path), "--backends", str(backends), "--workers", "3", "--engine", "bf16",
            "--max-in-flight", "7", "--max-queue", "5", "--graceful-timeout", "2.5", "--port", "9"]  # fmt: skip
    assert main(args) == 0
    (spec,) = seen
    assert (spec.workers, spec.engine, spec.max_in_flight, spec.max_queue) == (3, "bf16", 7, 5)
    assert (spec.graceful_timeout, spec.port, spec.checkpoint) == (2.5, 9, str(tmp_path))
    assert serving.ServeSpec.from_json(spec.to_json()) == spec  # what the workers read back
    settings = spec.settings()
    assert (settings.max_in_flight, settings.max_queue, settings.workers) == (7, 5, 3)
    assert main([*args[:5], "--workers", "0"]) == 2
    assert "--workers must be positive" in capsys.readouterr().err
