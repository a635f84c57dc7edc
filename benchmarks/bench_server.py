"""The routing server's added latency over a direct call to a local stub backend, under bounded concurrent load.

Starts two servers on loopback as subprocesses — the stub OpenAI-compatible backend (tests/serving/stub_backend.py)
and ``lookahead``'s routing server in front of it — then, from this (third) process, sends the same bounded number of
chat requests (a) straight to the stub and (b) through the router, at each concurrency level, and reports latency
percentiles, requests/s and the router's added latency. With the default keyword router (a stand-in that costs
nothing) this is the server's own overhead; ``--checkpoint RUN_DIR`` puts a real trained router in front instead.

    .venv/bin/python benchmarks/bench_server.py --requests 400 --concurrency 1,16
    .venv/bin/python benchmarks/bench_server.py --checkpoint runs/cpu_mlm_code --requests 200 --concurrency 1,16

``--workers 1,2`` (with ``--checkpoint``) serves through ``lookahead serve --workers N`` instead, one fresh server per
count, and also reports the resident memory of the whole server (parent and workers) after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "serving" / "stub_backend.py"
CANDIDATES = ["alpha", "bravo", "charlie", "delta", "echo"]
PROMPTS = [
    "Write a Python function that merges two sorted lists.",
    "What is the derivative of x^3 sin(x)? Show the steps.",
    "Tell me a short story about a lighthouse keeper.",
    "Fix the bug in this code: for i in range(10) print(i)",
    "Solve for x: 3x + 7 = 22, then check the math.",
    "Summarise the causes of the French Revolution in three sentences.",
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_router(port: int, stub_url: str, checkpoint: str | None, log_file: str) -> None:
    """Subprocess mode: the routing server in front of the stub (one backend path per candidate)."""
    import logging

    import uvicorn

    from lightning_lookahead.serving import Backend, create_app

    logging.basicConfig(filename=log_file, level=logging.INFO, format="%(asctime)s %(message)s")
    if checkpoint:
        from lightning_lookahead.inference import TrainedRouter

        router: Any = TrainedRouter.from_checkpoint(checkpoint)
    else:
        sys.path.insert(0, str(STUB.parent))
        from stub_backend import KeywordRouter

        router = KeywordRouter(CANDIDATES)
    backends = {c: Backend(c, f"{stub_url}/b{i}/v1", f"upstream-{i}") for i, c in enumerate(router.candidates)}
    uvicorn.run(create_app(router, backends), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc): a ``lookahead serve --workers N`` parent and its workers."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc): a load-independent cost."""
    total = 0.0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MB (shared pages counted in each, as ``ps`` does)."""
    total_kb = 0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def _cli_router(port: int, stub_url: str, checkpoint: str, workers: int, log_dir: Path) -> list[str]:
    """The ``lookahead serve`` command for ``--workers``: the run's candidates all on the stub."""
    meta = Path(checkpoint) / "export" / "router.json"
    candidates = json.loads((meta if meta.is_file() else Path(checkpoint) / "router.json").read_text())["candidates"]
    backends = log_dir / "backends.yaml"
    lines = [
        f"  {json.dumps(c)}: {{base_url: '{stub_url}/b{i}/v1', model: upstream-{i}}}" for i, c in enumerate(candidates)
    ]
    backends.write_text("backends:\n" + "\n".join(lines) + "\n")
    return [sys.executable, "-m", "lightning_lookahead.cli", "serve", "--checkpoint", checkpoint, "--backends",
            str(backends), "--port", str(port), "--workers", str(workers), "--log-level", "warning"]  # fmt: skip


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout_s:.0f} s")


async def _measure(targets: dict[str, tuple[str, str]], n: int, concurrency: int, rounds: int, warmup: int):
    """``n`` requests per target with at most ``concurrency`` in flight, in ``rounds`` alternating rounds.

    Alternating direct and routed rounds exposes both to the same background load (the CPU is shared), so their
    difference is fairer than two back-to-back runs. Warm-up requests (keep-alive connections) are not measured.
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    walls = dict.fromkeys(targets, 0.0)
    errors = dict.fromkeys(targets, 0)

    async def one(client: httpx.AsyncClient, name: str, i: int, record: bool) -> None:
        url, model = targets[name]
        body = {"model": model, "messages": [{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} #{i}"}]}
        async with gate:
            start = time.perf_counter()
            response = await client.post(url, json=body)
            elapsed = time.perf_counter() - start
        ok = response.status_code == 200 and response.json()["choices"][0]["message"]["content"].endswith(f"#{i}")
        errors[name] += not ok  # lost, failed, or another request's answer
        if record:
            latencies[name].append(elapsed * 1000)

    clients = {name: httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) for name in targets}
    try:
        for name, client in clients.items():
            await asyncio.gather(*(one(client, name, i, False) for i in range(warmup)))
        per_round = -(-n // rounds)
        for r in range(rounds):
            ids = range(r * per_round, min(n, (r + 1) * per_round))
            for name, client in clients.items():
                start = time.perf_counter()
                await asyncio.gather(*(one(client, name, i, True) for i in ids))
                walls[name] += time.perf_counter() - start
    finally:
        for client in clients.values():
            await client.aclose()
    results = {}
    for name, values in latencies.items():
        q = statistics.quantiles(values, n=100, method="inclusive")
        results[name] = {"n": len(values), "errors": errors[name], "p50_ms": q[49], "p95_ms": q[94],
                         "mean_ms": statistics.fmean(values), "rps": len(values) / walls[name]}  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="measured requests per target and level")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated in-flight request counts")
    parser.add_argument("--rounds", type=int, default=8, help="alternating direct/routed rounds per level")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--checkpoint", default=None, help="a trained router run directory (default: keyword router)")
    parser.add_argument(
        "--workers", default=None, help="comma-separated `lookahead serve --workers` counts (needs --checkpoint)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--serve-router", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stub-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-file", default=os.devnull, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_router is not None:
        serve_router(args.serve_router, args.stub_url, args.checkpoint, args.log_file)
        return

    levels = [int(c) for c in args.concurrency.split(",")]
    if args.workers and not args.checkpoint:
        parser.error("--workers needs --checkpoint (the keyword router is not served by `lookahead serve`)")
    stub_port = _free_port()
    stub_url = f"http://127.0.0.1:{stub_port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    stub = subprocess.Popen([sys.executable, str(STUB), "--port", str(stub_port)], env=env)
    rows, servers = [], []
    try:
        _wait_healthy(f"{stub_url}/docs", stub, 30)
        for workers in [int(w) for w in args.workers.split(",")] if args.workers else [None]:
            router_port = _free_port()
            router_url = f"http://127.0.0.1:{router_port}"
            if workers is None:
                router_cmd = [sys.executable, __file__, "--serve-router", str(router_port), "--stub-url", stub_url]
                router_cmd += ["--log-file", str(log_dir / "router.log")]
                router_cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
            else:
                router_cmd = _cli_router(router_port, stub_url, args.checkpoint, workers, log_dir)
            router = subprocess.Popen(router_cmd, env=env)
            procs = [stub, router]
            try:
                _wait_healthy(f"{router_url}/ready", router, 600)
                kind = httpx.get(f"{router_url}/health").json()["router_kind"]
                targets = {
                    "direct": (f"{stub_url}/b0/v1/chat/completions", "upstream-0"),
                    "router": (f"{router_url}/v1/chat/completions", "router"),
                }
                for level in levels:
                    cpu = [_cpu_seconds(p.pid) for p in procs]
                    result = asyncio.run(_measure(targets, args.requests, level, args.rounds, args.warmup))
                    stub_cpu, router_cpu = (_cpu_seconds(p.pid) - c for p, c in zip(procs, cpu, strict=True))
                    sent = args.requests + args.warmup
                    cpu_ms = {"router_cpu_ms_per_request": 1000 * router_cpu / sent,
                              "stub_cpu_ms_per_request": 1000 * stub_cpu / (2 * sent)}  # fmt: skip
                    rows.append({"workers": workers, "concurrency": level, **result, **cpu_ms})
                calls = httpx.get(f"{router_url}/health").json()["routing_calls"]
                servers.append({"workers": workers, "router": kind, "rss_mb": _rss_mb(router.pid), "calls": calls})
            finally:
                _stop(router)
    finally:
        _stop(stub)

    for server in servers:
        served = f"`lookahead serve --workers {server['workers']}`" if server["workers"] else "one process"
        print(f"router: {server['router']} ({served}); {server['calls']} routing calls reported by the worker "
              f"asked; server RSS after the run {server['rss_mb']:.0f} MB")  # fmt: skip
    print(f"{args.requests} measured requests per row in {args.rounds} alternating rounds; logs: {log_dir}")
    print("| workers | concurrency | target | p50 ms | p95 ms | mean ms | req/s | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for target in ("direct", "router"):
            r = row[target]
            print(f"| {row['workers'] or 1} | {row['concurrency']} | {target} | {r['p50_ms']:.2f} | "
                  f"{r['p95_ms']:.2f} | {r['mean_ms']:.2f} | {r['rps']:.0f} | {r['errors']} |")  # fmt: skip
    for row in rows:
        d, r = row["direct"], row["router"]
        print(f"added at workers {row['workers'] or 1}, concurrency {row['concurrency']}: p50 "
              f"{r['p50_ms'] - d['p50_ms']:+.2f} ms, p95 {r['p95_ms'] - d['p95_ms']:+.2f} ms; CPU per request: "
              f"router {row['router_cpu_ms_per_request']:.2f} ms, "
              f"stub {row['stub_cpu_ms_per_request']:.2f} ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"servers": servers, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    if any(row[t]["errors"] for row in rows for t in ("direct", "router")):
        raise SystemExit("some requests failed or came back with another request's answer")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


if __name__ == "__main__":
    main()
