"""The routing server's added latency over a direct call to a local stub backend, under bounded concurrent load.

Starts two servers on loopback as subprocesses — the stub OpenAI-compatible backend (tests/serving/stub_backend.py)
and ``lookahead``'s routing server in front of it — then, from this (third) process, sends the same bounded number of
chat requests (a) straight to the stub and (b) through the router, at each concurrency level, and reports latency
percentiles, requests/s and the router's added latency. With the default keyword router (a stand-in that costs
nothing) this is the server's own overhead; ``--checkpoint RUN_DIR`` puts a real trained router in front instead.

    .venv/bin/python benchmarks/bench_server.py --requests 400 --concurrency 1,16
    .venv/bin/python benchmarks/bench_server.py --checkpoint runs/cpu_mlm_code --requests 200 --concurrency 1,16
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): a load-independent cost per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--serve-router", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stub-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-file", default=os.devnull, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_router is not None:
        serve_router(args.serve_router, args.stub_url, args.checkpoint, args.log_file)
        return

    levels = [int(c) for c in args.concurrency.split(",")]
    stub_port, router_port = _free_port(), _free_port()
    stub_url, router_url = f"http://127.0.0.1:{stub_port}", f"http://127.0.0.1:{router_port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    router_cmd = [sys.executable, __file__, "--serve-router", str(router_port), "--stub-url", stub_url]
    router_cmd += ["--log-file", str(log_dir / "router.log")]
    router_cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    procs = [
        subprocess.Popen([sys.executable, str(STUB), "--port", str(stub_port)], env=env),
        subprocess.Popen(router_cmd, env=env),
    ]
    try:
        _wait_healthy(f"{stub_url}/docs", procs[0], 30)
        _wait_healthy(f"{router_url}/health", procs[1], 300)
        kind = httpx.get(f"{router_url}/health").json()["router_kind"]
        rows = []
        targets = {
            "direct": (f"{stub_url}/b0/v1/chat/completions", "upstream-0"),
            "router": (f"{router_url}/v1/chat/completions", "router"),
        }
        rows = []
        for level in levels:
            cpu = [_cpu_seconds(p.pid) for p in procs]
            result = asyncio.run(_measure(targets, args.requests, level, args.rounds, args.warmup))
            stub_cpu, router_cpu = (_cpu_seconds(p.pid) - c for p, c in zip(procs, cpu, strict=True))
            sent = args.requests + args.warmup
            cpu_ms = {"router_cpu_ms_per_request": 1000 * router_cpu / sent,
                      "stub_cpu_ms_per_request": 1000 * stub_cpu / (2 * sent)}  # fmt: skip
            rows.append({"concurrency": level, **result, **cpu_ms})
        health = httpx.get(f"{router_url}/health").json()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    print(f"router: {kind}; {args.requests} measured requests per row in {args.rounds} alternating rounds; "
          f"{health['routing_calls']} routing calls in all; request log: {log_dir / 'router.log'}")  # fmt: skip
    print("| concurrency | target | p50 ms | p95 ms | mean ms | req/s | errors |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for target in ("direct", "router"):
            r = row[target]
            print(f"| {row['concurrency']} | {target} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['mean_ms']:.2f} | "
                  f"{r['rps']:.0f} | {r['errors']} |")  # fmt: skip
    for row in rows:
        d, r = row["direct"], row["router"]
        print(f"added at concurrency {row['concurrency']}: p50 {r['p50_ms'] - d['p50_ms']:+.2f} ms, "
              f"p95 {r['p95_ms'] - d['p95_ms']:+.2f} ms; CPU per request: router process "
              f"{row['router_cpu_ms_per_request']:.2f} ms, stub {row['stub_cpu_ms_per_request']:.2f} ms")  # fmt: skip
    if args.json:
        summary = {"router": kind, "routing_calls": health["routing_calls"], "rows": rows}
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    if any(row[t]["errors"] for row in rows for t in ("direct", "router")):
        raise SystemExit("some requests failed or came back with another request's answer")


if __name__ == "__main__":
    main()
