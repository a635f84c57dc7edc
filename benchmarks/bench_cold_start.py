"""Cold start of the light commands: `lookahead validate` and the first decision of `lookahead route`, each in a fresh
interpreter, beside `python -c "import torch"` and `import lightning` measured in the same run.

    python benchmarks/bench_cold_start.py [--repeats 5] [--kind mlc] [--run RUN_DIR] [--data-dir data]

The rows are interleaved (one of each per round) so that a busy machine slows them alike; the table reports the
median and the spread over rounds. The router is ``--run`` (a trained run) or an untrained export on the embedded
MiniLM backbone (the timing does not depend on its weights). Its ONNX inference bundle (``lookahead export --format
onnx``) is routed cold beside the torch path; then, in this process, batch-64 throughput of the bundle against the
``onnx`` engine, and the bundle's agreement and largest score difference against the fp32 torch router on the test
prompts of every benchmark under ``--data-dir`` (the fixed check prompts when there are none). ``lookahead serve``
with one worker is timed from launch to ``GET /ready`` = 200 on the run directory and on the bundle, with the
resident memory of the server's process tree at that moment.
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


def test_prompts(data_dir: Path, limit: int) -> list[str]:
    """Test prompts of every benchmark (in benchmark order, cut to ``limit``), else the export's check prompts."""
    from lightning_lookahead.data.benchmarks import load_benchmark
    from lightning_lookahead.data.schema import BENCHMARKS
    from lightning_lookahead.inference.bundle_export import CHECK_PROMPTS

    prompts: list[str] = []
    if (data_dir / "test").is_dir():
        for name in BENCHMARKS:
            prompts += [ex.prompt for ex in load_benchmark(name, data_dir)]
    return (prompts or list(CHECK_PROMPTS) * 8)[:limit]


def throughput(score, prompts: list[str], rounds: int = 2) -> float:
    """Prompts per second of ``score(prompts, batch_size=64)``, best of ``rounds`` after one warm-up batch."""
    score(prompts[:64], batch_size=64)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        score(prompts, batch_size=64)
        best = max(best, len(prompts) / (time.perf_counter() - start))
    return best


def compare_paths(run: Path, bundle: Path, prompts: list[str]) -> None:
    """Batch-64 throughput (bundle vs the ``onnx`` engine) and the bundle's agreement with fp32 torch."""
    import numpy as np

    from lightning_lookahead.bundle.router import BundleRouter
    from lightning_lookahead.inference import TrainedRouter

    fp32 = TrainedRouter.from_checkpoint(run, engine="fp32")
    light = BundleRouter(bundle)
    engine = TrainedRouter.from_checkpoint(run, engine="onnx")
    reference, got = fp32.score(prompts, batch_size=64), light.score(prompts, batch_size=64)
    agreement = 100.0 * float(np.mean(reference.argmax(1) == got.argmax(1)))
    print(
        f"\n{len(prompts)} prompts: bundle vs fp32 torch: {agreement:.1f}% identical decisions, "
        f"max score difference {float(np.abs(reference - got).max()):.2e}\n"
    )
    print("| Path (batch 64) | prompts/s |\n|---|---|")
    print(f"| bundle (onnxruntime + tokenizers + numpy) | {throughput(light.score, prompts):.1f} |")
    print(f"| `onnx` engine (torch input builder) | {throughput(engine.score, prompts):.1f} |")


def serve_ready(checkpoint: Path) -> tuple[float, float]:
    """``lookahead serve`` (one worker) from launch to ``GET /ready`` = 200: (seconds, resident MiB of the server
    process tree at that moment)."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    backends = str(ROOT / "examples" / "backends.yaml")
    cmd = [*LOOKAHEAD, "serve", "--checkpoint", str(checkpoint), "--backends", backends, "--port", str(port)]
    start = time.perf_counter()
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None:
                raise SystemExit(f"{' '.join(cmd)} exited:\n{server.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        return seconds, _tree_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _tree_rss_mib(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kind", default="mlc", choices=["mlc", "mlm"], help="predictor of the routed export")
    parser.add_argument("--run", type=Path, default=None, help="a trained run to use instead of an untrained export")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="benchmark data (test prompts)")
    parser.add_argument("--prompts", type=int, default=512, help="test prompts for throughput and agreement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or export_router(args.kind, Path(tmp))
        bundle = Path(tmp) / "bundle"
        timed([*LOOKAHEAD, "export", str(run), "--format", "onnx", "--out", str(bundle)])
        rows = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            'python -c "import lightning"': [sys.executable, "-c", "import lightning"],
            "lookahead validate cpu/mlm_code": [*LOOKAHEAD, "validate", "cpu/mlm_code"],
            "lookahead route (torch path, one prompt)": [
                *LOOKAHEAD,
                "route",
                "--checkpoint",
                str(run),
                "sort a list",
            ],
            "lookahead route (bundle, one prompt)": [*LOOKAHEAD, "route", "--checkpoint", str(bundle), "sort a list"],
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        serving = {"`lookahead serve` (run directory, torch path)": run, "`lookahead serve` (bundle)": bundle}
        ready: dict[str, list[tuple[float, float]]] = {name: [] for name in serving}
        timed(rows['python -c "import torch"'])  # warm the page cache once
        for _ in range(args.repeats):
            for name, cmd in rows.items():
                times[name].append(timed(cmd))
            for name, checkpoint in serving.items():
                ready[name].append(serve_ready(checkpoint))
        compare_paths(run, bundle, test_prompts(args.data_dir, args.prompts))
    base = statistics.median(times['python -c "import torch"'])
    print("| Command | median s | min–max s | × import torch |\n|---|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| `{name}` | {med:.2f} | {min(values):.2f}–{max(values):.2f} | {med / base:.2f} |")
    print("\n| Server (one worker) | ready, median s | min–max s | RSS at ready, median MiB |\n|---|---|---|---|")
    for name, values in ready.items():
        secs, rss = [v[0] for v in values], [v[1] for v in values]
        med = statistics.median(secs)
        print(f"| {name} | {med:.2f} | {min(secs):.2f}–{max(secs):.2f} | {statistics.median(rss):.0f} |")


if __name__ == "__main__":
    main()
