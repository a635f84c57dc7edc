"""Wall time and peak memory of the data pipeline and of baseline evaluation, each phase in a fresh process.

    python benchmarks/bench_data_eval.py --mirror ../shared/lookahead-data [--repeats 3]

Phases: (1) cold `lookahead data fetch` from the local mirror into an empty temporary directory,
(2) `lookahead data check` (parse every present benchmark and training set),
(3) `lookahead evaluate` of oracle, random and the 5 fixed routers on all 7 benchmarks.
Peak memory is the child process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOKAHEAD = [sys.executable, "-m", "lightning_lookahead.cli"]
#: As in `make evaluate`: with the optional alpaca_eval installed, an online Hub lookup would dominate the timing.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run(cmd: list[str]) -> tuple[float, float]:
    """Run a command to completion; return (wall seconds, peak RSS in MiB)."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block on a full pipe
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **OFFLINE})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="local copy of compressed_data/")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"fetch (cold)": [], "parse all": [], "evaluate all": []}
    for _ in range(args.repeats):
        data_dir = Path(tempfile.mkdtemp(prefix="lookahead-bench-"))
        try:
            common = ["--data-dir", str(data_dir)]
            results["fetch (cold)"].append(
                run([*LOOKAHEAD, "data", "fetch", "--mirror", str(args.mirror), "--no-progress", *common])
            )
            results["parse all"].append(run([*LOOKAHEAD, "data", "check", *common]))
            results["evaluate all"].append(
                run(
                    [
                        *LOOKAHEAD,
                        "evaluate",
                        "--router",
                        "oracle",
                        "--router",
                        "random:0",
                        "--router",
                        "fixed:all",
                        "--benchmarks",
                        "all",
                        *common,
                    ]
                )
            )
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"| phase | wall time (median of {args.repeats}) | peak RSS |")
    print("|---|---|---|")
    for phase, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        rss = max(s[1] for s in samples)
        print(f"| {phase} | {wall:.2f} s | {rss:.0f} MiB |")
    fetch_parse = statistics.median(
        a[0] + b[0] for a, b in zip(results["fetch (cold)"], results["parse all"], strict=True)
    )
    print(
        f"\nfetch + parse: {fetch_parse:.2f} s (target < 30 s); "
        f"evaluate all: {statistics.median(s[0] for s in results['evaluate all']):.2f} s (target < 10 s)"
    )


if __name__ == "__main__":
    main()
