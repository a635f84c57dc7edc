"""Bulk routing (`lookahead route --file LOG --out OUT`) on one process against N processes (DDP), in one run.

    python benchmarks/bench_bulk_route.py [--data-dir data] [--prompts 2048] [--shard-size 256] [--rounds 2]

The log is a seeded sample of every test benchmark's prompts (mixed lengths, as JSON lines). The router is the
quickstart's (``runs/cpu_mlm_all``) once its export exists, else a freshly initialised MLM router with the
``cpu/mlm_all`` model block exported to a temporary folder (the weights do not change the speed). Each setting runs
the real command line in a fresh process, so a wall time includes starting Python, importing torch, loading the
router and, for N processes, Lightning starting the other ranks; a run over a log of one prompt per process
measures that start-up separately. Settings: one process with ``--threads-one`` torch threads (default: every
core), and ``--devices N`` processes with ``--threads-each`` threads each (default: cores / N, Lightning's own
choice). Each setting runs ``--rounds`` times in alternating order, with the 1-minute load average noted before
each run. The last outputs of the two settings are compared: decisions, the largest score difference, and whether
the bytes are equal.

Prints a Markdown table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUICKSTART = Path("runs/cpu_mlm_all")


def router_dir(tmp: Path) -> tuple[Path, str]:
    """The quickstart run if it has been exported, else a fresh ``cpu/mlm_all`` MLM router exported under ``tmp``."""
    if (QUICKSTART / "export" / "router.json").is_file():
        return QUICKSTART, "quickstart runs/cpu_mlm_all (trained)"
    import torch

    from lightning_lookahead.config.compose import compose
    from lightning_lookahead.inference import export_router
    from lightning_lookahead.models.registry import build_predictor

    cfg = compose("cpu/mlm_all")
    torch.manual_seed(0)
    predictor = build_predictor(cfg.model, list(cfg.data.candidates))
    export_router(predictor, tmp / "router" / "export", name="mlm_all_fresh")
    return tmp / "router", "fresh cpu/mlm_all MLM router (untrained, same network)"


def write_log(data_dir: Path, n: int, path: Path) -> int:
    """A seeded sample of ``n`` test-benchmark prompts as JSON lines; returns how many were written."""
    from lightning_lookahead.data.benchmarks import load_benchmark
    from lightning_lookahead.data.schema import BENCHMARKS, PAPER_CANDIDATES

    prompts = [ex.prompt for name in BENCHMARKS for ex in load_benchmark(name, data_dir, PAPER_CANDIDATES)]
    random.Random(0).shuffle(prompts)
    prompts = prompts[:n]
    path.write_text("".join(json.dumps({"prompt": p}, ensure_ascii=False) + "\n" for p in prompts), encoding="utf-8")
    return len(prompts)


def route(router: Path, log: Path, out: Path, devices: int, threads: int, batch: int, shard: int) -> float:
    """Wall seconds of one `lookahead route --file --out` run in a fresh process."""
    argv = [sys.executable, "-m", "lightning_lookahead.cli", "route", "--checkpoint", str(router)]
    argv += ["--file", str(log), "--out", str(out), "--batch-size", str(batch)]
    argv += ["--shard-size", str(shard), "--devices", str(devices), "--restart"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"route failed ({devices} processes):\n{proc.stderr[-3000:]}")
    return wall


def compare(a: Path, b: Path) -> dict[str, Any]:
    rows_a = [json.loads(line) for line in a.read_text().splitlines()]
    rows_b = [json.loads(line) for line in b.read_text().splitlines()]
    assert [r["prompt_index"] for r in rows_a] == [r["prompt_index"] for r in rows_b] == list(range(len(rows_a)))
    same = sum(x["model"] == y["model"] for x, y in zip(rows_a, rows_b, strict=True))
    diff = max(abs(x["scores"][k] - y["scores"][k]) for x, y in zip(rows_a, rows_b, strict=True) for k in x["scores"])
    return {
        "decisions_equal": f"{same}/{len(rows_a)}",
        "max_abs_score_diff": diff,
        "bytes_equal": a.read_bytes() == b.read_bytes(),
    }


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("LOOKAHEAD_DATA_DIR", "data")))
    parser.add_argument("--prompts", type=int, default=2048)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--devices", type=int, default=2, help="processes of the multi-process setting")
    parser.add_argument("--threads-one", type=int, default=cores, help="torch threads of the one process")
    parser.add_argument("--threads-each", type=int, default=None, help="threads per process (default cores / N)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting, in alternating order")
    args = parser.parse_args()
    each = args.threads_each or max(1, cores // args.devices)
    settings = [(f"1 process × {args.threads_one} threads", 1, args.threads_one)]
    settings.append((f"{args.devices} processes (DDP, gloo) × {each} thread{'s' * (each > 1)}", args.devices, each))
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        router, router_note = router_dir(tmp)
        log, small = tmp / "log.jsonl", tmp / "small.jsonl"
        n = write_log(args.data_dir, args.prompts, log)
        lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        small.write_text("".join(lines[: args.devices]), encoding="utf-8")
        results = []
        for round_ in range(args.rounds):  # alternate the order, so a load that drifts hurts both settings alike
            for label, devices, threads in settings[:: 1 if round_ % 2 == 0 else -1]:
                load_now = os.getloadavg()[0]
                # One prompt per process, each its own shard: every rank starts, loads the router, routes one prompt.
                startup = route(router, small, tmp / "small.out", devices, threads, args.batch_size, 1)
                out = tmp / f"out-{devices}.jsonl"
                wall = route(router, log, out, devices, threads, args.batch_size, args.shard_size)
                results.append(
                    {
                        "round": round_ + 1,
                        "setting": label,
                        "devices": devices,
                        "threads_per_process": threads,
                        "load_at_start": round(load_now, 1),
                        "wall_s": round(wall, 1),
                        "startup_s": round(startup, 1),
                        "prompts_per_s": round(n / wall, 1),
                        "prompts_per_s_after_startup": round(n / (wall - startup), 1) if wall > startup else None,
                    }
                )
                print(json.dumps(results[-1]), flush=True)
        match = compare(tmp / "out-1.jsonl", tmp / f"out-{args.devices}.jsonl")
    load.append(os.getloadavg()[0])
    print(f"\n{n} prompts, router: {router_note}; shard {args.shard_size}, batch {args.batch_size}; {cores} cores")
    print(f"1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end\n")
    print(
        "| round | setting | load at start | wall (s) | start-up (s) | prompts/s (wall) | prompts/s (after start-up) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        row = [r["round"], r["setting"], r["load_at_start"], r["wall_s"], r["startup_s"], r["prompts_per_s"]]
        row.append(r["prompts_per_s_after_startup"])
        print("| " + " | ".join(str(x) for x in row) + " |")
    print(f"\noutputs: decisions equal {match['decisions_equal']}, max |Δscore| {match['max_abs_score_diff']:.2e}, "
          f"bytes equal: {match['bytes_equal']}")  # fmt: skip
    print(json.dumps({"prompts": n, "router": router_note, "cores": cores, "load": load, "runs": results, **match}))


if __name__ == "__main__":
    main()
