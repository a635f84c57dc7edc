"""Training throughput, memory and routing latency of the CPU routers under each speed option, as one table.

    python benchmarks/bench_speed_options.py [--steps 6] [--data-dir data]

The first rows compare the CPU experiments before and after issue 9 on the joint setting's training prompts
(``cpu/mlm_all``: chat, math and code mixed), one option at a time, in the same run.

Each row is a fresh process running ``bench_train_step.py`` (so peak memory is per variant). The jemalloc row
needs Debian's ``libjemalloc2`` and is skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
ATTENTION_DROPOUT_ON = "model.backbone_config.attention_probs_dropout_prob=0.1"

# the CPU experiments before issue 9: fp32, a 512-position window, random batches, the MLM loss at every slot
BEFORE = ["model.max_length=512", "data.length_grouped=false", "model.mlm_max_predictions=null"]
FULL_LOSS = "model.mlm_max_predictions=null"
VARIANTS: list[tuple[str, str, list[str], dict[str, str]]] = [
    (
        "MLM before: fp32, 512 positions, random batches, full MLM loss",
        "cpu/mlm_all",
        ["--precision", "fp32", "--set", *BEFORE],
        {},
    ),
    ("MLM + bf16 autocast", "cpu/mlm_all", ["--precision", "bf16", "--set", *BEFORE], {}),
    ("MLM + bf16, 320 positions, length-grouped", "cpu/mlm_all", ["--set", FULL_LOSS], {}),
    ("MLM as shipped (cpu/mlm_all): + MLM loss on 640 random slots per batch", "cpu/mlm_all", [], {}),
    (
        "MLC before: fp32, 512 positions, random batches",
        "cpu/mlc_all",
        ["--precision", "fp32", "--set", *BEFORE[:2]],
        {},
    ),
    ("MLC as shipped (cpu/mlc_all): bf16, 155 positions, length-grouped", "cpu/mlc_all", [], {}),
    ("MLM as shipped, attention dropout 0.1 (MiniLM default)", "cpu/mlm_all", ["--set", ATTENTION_DROPOUT_ON], {}),
    ("MLM as shipped + jemalloc (LD_PRELOAD)", "cpu/mlm_all", [], {"LD_PRELOAD": str(JEMALLOC)}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", "data"))
    args = parser.parse_args()
    script = Path(__file__).with_name("bench_train_step.py")
    print(
        "| variant | s/step (16 prompts) | prompts/s | est. GFLOP/s (share of matmul) | peak RSS | "
        "route p50 @1 | route p95 @1 | route prompts/s @64 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, experiment, extra, env in VARIANTS:
        if "LD_PRELOAD" in env and not JEMALLOC.exists():
            print(f"| {name} | skipped: {JEMALLOC} not installed | | | | | | |")
            continue
        cmd = [sys.executable, str(script), "--experiment", experiment, "--steps", str(args.steps), *extra]
        sets = [f"data.data_dir={args.data_dir}"]
        if "--set" in cmd:
            i = cmd.index("--set")
            cmd.insert(i + 1, sets[0])
        else:
            cmd += ["--set", *sets]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env, "HF_HUB_OFFLINE": "1"})
        if out.returncode:
            print(f"| {name} | failed: {out.stderr.strip().splitlines()[-1]} | | | | | | |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {name} | {r['step_seconds']:.2f} | {r['train_prompts_per_s']:.2f} | {r['achieved_gflops']:.1f} "
            f"({100 * r['fraction_of_matmul']:.0f}% of {r['matmul_gflops']:.0f}) | {r['train_peak_rss_mib']} MiB | "
            f"{r['route_p50_ms_batch1']:.0f} ms | {r['route_p95_ms_batch1']:.0f} ms | "
            f"{r['route_prompts_per_s_batch64']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
