"""Routing latency and throughput of the serving API (``Router.score``) for every router kind, on real code prompts.

    python benchmarks/bench_routing.py [--data-dir data] [--latency-prompts 20] [--throughput-prompts 128]

Each registered predictor kind that can route new prompts gets a freshly initialised predictor with the ``model:``
block of its shipped CPU experiment (``cpu/<kind>_code``; the predictor's own defaults when there is none), on the
embedded backbones (MiniLM for mlm/mlc, SmolLM2-135M for clm). Trained weights would not change the speed. Prompts are
a seeded sample of the HumanEval and MBPP test prompts. Per kind:

- latency at batch 1: ``router.score([prompt])`` end to end (tokenise, collate, forward) for ``--latency-prompts``
  prompts after 3 warm-up calls; p50 and p95;
- throughput: prompts/s of ``router.score(prompts, batch_size=B)`` over ``--throughput-prompts`` prompts for B = 32
  and 64, with the API's length-sorted batching and, for B = 64, in input order (``sort_by_length=False``).

Prints a Markdown table, then one JSON line per kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from lightning_lookahead.config.compose import compose, list_experiments
from lightning_lookahead.data.benchmarks import load_benchmark
from lightning_lookahead.data.lengths import feature_length
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import TrainedRouter
from lightning_lookahead.models.registry import PREDICTORS, build_predictor


def model_settings(kind: str) -> dict[str, Any]:
    """The ``model:`` block of ``cpu/<kind>_code`` if it ships, else the predictor's defaults."""
    from lightning_lookahead.config.compose import to_dict

    name = f"cpu/{kind}_code"
    if name in list_experiments():
        return to_dict(compose(name).model)
    return {"kind": kind}


def code_prompts(data_dir: Path, n: int, seed: int = 0) -> list[str]:
    """A seeded sample of HumanEval + MBPP test prompts (mixed lengths)."""
    prompts = [ex.prompt for name in ("HumanEval", "MBPP") for ex in load_benchmark(name, data_dir, PAPER_CANDIDATES)]
    random.Random(seed).shuffle(prompts)
    return prompts[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    router: TrainedRouter, prompts: list[str], n_latency: int, batch_sizes: list[int], unsorted: bool = True
) -> dict[str, Any]:
    for prompt in prompts[:3]:
        router.score([prompt], batch_size=1)
    latency = []
    for prompt in prompts[:n_latency]:
        start = time.perf_counter()
        router.score([prompt], batch_size=1)
        latency.append(time.perf_counter() - start)
    result: dict[str, Any] = {
        "p50_ms_batch1": round(1000 * percentile(latency, 0.5), 1),
        "p95_ms_batch1": round(1000 * percentile(latency, 0.95), 1),
    }
    runs = [(b, True) for b in batch_sizes] + ([(max(batch_sizes), False)] if unsorted else [])
    for batch_size, sort in runs:
        start = time.perf_counter()
        router.score(prompts, batch_size=batch_size, sort_by_length=sort)
        key = f"prompts_per_s_batch{batch_size}" + ("" if sort else "_unsorted")
        result[key] = round(len(prompts) / (time.perf_counter() - start), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("LOOKAHEAD_DATA_DIR", "data")))
    parser.add_argument("--kinds", default=None, help="comma-separated kinds (default: every kind that can route)")
    parser.add_argument("--latency-prompts", type=int, default=20)
    parser.add_argument("--throughput-prompts", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--skip-unsorted", action="store_true", help="skip the input-order throughput run")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prompts = code_prompts(args.data_dir, max(args.throughput_prompts, args.latency_prompts + 3))
    kinds = args.kinds.split(",") if args.kinds else sorted(PREDICTORS)
    rows = []
    for kind in kinds:
        if PREDICTORS[kind].config.needs_responses:
            print(f"skipping {kind}: it reads the candidates' responses and cannot route new prompts", flush=True)
            continue
        settings = model_settings(kind)
        torch.manual_seed(0)
        start = time.perf_counter()
        router = TrainedRouter(build_predictor(settings, PAPER_CANDIDATES), name=kind)
        load_s = time.perf_counter() - start
        sample = prompts[: args.throughput_prompts]
        tokens = [feature_length(router.predictor.inputs.featurize({"prompt_id": "x", "prompt": p})) for p in sample]
        result = {
            "kind": kind,
            "backbone": router.predictor.config.backbone,
            "threads": torch.get_num_threads(),
            "build_s": round(load_s, 1),
            "mean_tokens": round(statistics.mean(tokens)),
            "max_tokens": max(tokens),
            **measure(router, sample, args.latency_prompts, args.batch_sizes, unsorted=not args.skip_unsorted),
        }
        rows.append(result)
        print(json.dumps(result), flush=True)
    sizes = args.batch_sizes
    print()
    print(
        "| router | backbone | threads | tokens/prompt (mean, max) | p50 @1 | p95 @1 | "
        + " | ".join(f"prompts/s @{b}" for b in sizes)
        + f" | prompts/s @{max(sizes)} unsorted |"
    )
    print("|---|---|---|---|---|---|" + "---|" * (len(sizes) + 1))
    for r in rows:
        cells = [f"{r[f'prompts_per_s_batch{b}']:.1f}" for b in sizes]
        unsorted = r.get(f"prompts_per_s_batch{max(sizes)}_unsorted")
        cells.append("–" if unsorted is None else f"{unsorted:.1f}")
        print(
            f"| {r['kind']} | {r['backbone']} | {r['threads']} | {r['mean_tokens']}, {r['max_tokens']} | "
            f"{r['p50_ms_batch1']:.0f} ms | {r['p95_ms_batch1']:.0f} ms | " + " | ".join(cells) + " |"
        )


if __name__ == "__main__":
    main()
