"""Cold start of the light commands: `lookahead validate` and the first decision of `lookahead route`, each in a fresh
interpreter, beside `python -c "import torch"` and `import lightning` measured in the same run.

    python benchmarks/bench_cold_start.py [--repeats 5] [--kind mlc]

The rows are interleaved (one of each per round) so that a busy machine slows them alike; the table reports the
median and the spread over rounds. The router is an untrained export on the embedded MiniLM backbone: the timing
does not depend on its weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOKAHEAD = [sys.executable, "-m", "lightning_lookahead.cli"]


def export_router(kind: str, out: Path) -> Path:
    """An untrained export of ``kind`` on the embedded MiniLM over the paper's candidates."""
    import torch

    from lightning_lookahead.data.schema import PAPER_CANDIDATES
    from lightning_lookahead.inference import export_router as write
    from lightning_lookahead.models.registry import build_predictor

    torch.manual_seed(0)
    predictor = build_predictor({"kind": kind, "backbone": "minilm", "max_length": 256}, PAPER_CANDIDATES)
    return write(predictor, out / "run" / "export", name=f"cold-{kind}").parent


def timed(cmd: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kind", default="mlc", choices=["mlc", "mlm"], help="predictor of the routed export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = export_router(args.kind, Path(tmp))
        rows = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            'python -c "import lightning"': [sys.executable, "-c", "import lightning"],
            "lookahead validate cpu/mlm_code": [*LOOKAHEAD, "validate", "cpu/mlm_code"],
            f"lookahead route ({args.kind}, one prompt)": [
                *LOOKAHEAD,
                "route",
                "--checkpoint",
                str(run),
                "sort a list",
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        timed(rows['python -c "import torch"'])  # warm the page cache once
        for _ in range(args.repeats):
            for name, cmd in rows.items():
                times[name].append(timed(cmd))
    base = statistics.median(times['python -c "import torch"'])
    print("| Command | median s | min–max s | × import torch |\n|---|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| `{name}` | {med:.2f} | {min(values):.2f}–{max(values):.2f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
