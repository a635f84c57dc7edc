"""Routing engines side by side on one trained router: speed, set-up cost, decision agreement and µn against fp32.

    python benchmarks/bench_engines.py --run runs/cpu_mlm_all [--engines fp32,bf16,onnx,onnx-int8]
        [--latency-prompts 40] [--json docs/results/engines.json]

The router's test items are rebuilt from its run's ``config.yaml`` exactly as the recipe split them (``make_splits``
on ``data:``; for ``cpu/mlm_all`` the joint setting, k-fold fold 0). One process, one router loaded once, then per
engine (``router.use_engine``):

- ``prepare_s``: what ``use_engine`` costs (quantising a copy, or exporting + checking + quantising the ONNX graph
  into an empty model cache); for the ONNX engines also ``cached_prepare_s``, the second load that reuses the file;
- ``warmup_s``: 3 batch-1 calls and one batch-64 call;
- p50 / p95 ms of ``router.route([prompt], batch_size=1)`` over ``--latency-prompts`` seeded test prompts;
- prompts/s of ``router.score(chunk, batch_size=64)`` summed over chunks covering every test prompt (tokenise,
  collate, forward; length-sorted batches, as ``route`` does): this pass also gives the scores for
- the decision agreement with fp32 (argmax, the default rule) over every test prompt, the largest score change, and
  Avg µn of the router's scores under the engine vs fp32 (``evaluation.evaluate_scores``).

All engines are prepared first and held at once; then they take turns, prompt by prompt for the latency and chunk by
chunk (``--chunk`` prompts of a seeded shuffle) for the throughput, in a rotating order, so a shared machine's load
drifting during the run lands on every engine alike.

Prints a Markdown table and one JSON line per engine; writes the JSON to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FP32 = "fp32"


def test_split(run_dir: Path, data_dir: Path | None) -> dict[str, list[Any]]:
    """The run's test items per benchmark, rebuilt from its ``config.yaml`` as the recipe split them."""
    import yaml
    from omegaconf import OmegaConf

    from lightning_lookahead.data.splits import make_splits

    cfg = OmegaConf.create(yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")))
    return make_splits(cfg.data, data_dir or Path(cfg.data.data_dir)).test


def wait_for(path: Path, seconds: float) -> None:
    """Block until ``path`` exists (a router still training), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not path.is_file():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: {path} does not exist (is the run still training?)")
        time.sleep(10)


def split_rows(scores: np.ndarray, benchmarks: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
    """Score rows of the concatenated test prompts back into one matrix per benchmark."""
    out, start = {}, 0
    for name, examples in benchmarks.items():
        out[name] = scores[start : start + len(examples)]
        start += len(examples)
    return out


def prepare(predictor: Any, name: str, engine: str, sample: list[str], prompts: list[str], batch: int) -> Any:
    """A router on ``engine`` sharing ``predictor``, with its set-up and warm-up timed (``router.timings``)."""
    from lightning_lookahead.inference import TrainedRouter

    router = TrainedRouter(predictor, name=name)
    start = time.perf_counter()
    router.use_engine(engine)
    timings = {"prepare_s": round(time.perf_counter() - start, 2)}
    if engine.startswith("onnx"):
        start = time.perf_counter()
        router.use_engine(engine)  # the export is in the model cache now
        timings["cached_prepare_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    for prompt in sample[:3]:
        router.route([prompt], batch_size=1)
    router.score(prompts[:batch], batch_size=batch)
    timings["warmup_s"] = round(time.perf_counter() - start, 2)
    router.timings = timings
    return router


def rotated(items: Sequence[str], turn: int) -> list[str]:
    """``items`` starting at position ``turn`` (mod len): each engine takes every place in the order in turn."""
    k = turn % len(items)
    return [*items[k:], *items[:k]]


def interleaved(
    routers: Mapping[str, Any], prompts: list[str], sample: list[str], batch: int, chunk: int
) -> tuple[dict[str, list[float]], dict[str, float], dict[str, np.ndarray]]:
    """Batch-1 latencies, seconds of batch-``batch`` scoring and the scores of every prompt, per engine.

    The engines take turns prompt by prompt (latency) and chunk by chunk (throughput) in a rotating order, so a
    change in the machine's load while the benchmark runs lands on all of them alike.
    """
    from tqdm.auto import tqdm

    names = list(routers)
    latency: dict[str, list[float]] = {e: [] for e in names}
    for turn, prompt in enumerate(tqdm(sample, desc="batch-1 latency", unit="prompt")):
        for engine in rotated(names, turn):
            start = time.perf_counter()
            routers[engine].route([prompt], batch_size=1)
            latency[engine].append(time.perf_counter() - start)
    order = np.random.default_rng(0).permutation(len(prompts))
    seconds = dict.fromkeys(names, 0.0)
    scores = {e: np.zeros((len(prompts), len(routers[e].candidates)), dtype=np.float32) for e in names}
    chunks = [order[i : i + chunk] for i in range(0, len(prompts), chunk)]
    for turn, index in enumerate(tqdm(chunks, desc=f"batch-{batch} throughput", unit="chunk")):
        texts = [prompts[i] for i in index]
        for engine in rotated(names, turn):
            start = time.perf_counter()
            scores[engine][index] = routers[engine].score(texts, batch_size=batch)
            seconds[engine] += time.perf_counter() - start
    return latency, seconds, scores


def markdown(rows: Sequence[Mapping[str, Any]], batch_size: int) -> str:
    head = (
        f"| engine | p50 ms (b=1) | p95 ms (b=1) | prompts/s (b={batch_size}) | × fp32 | prepare s | "
        "first calls s | agreement with fp32 | max abs Δscore | Avg µn | Δ µn |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        prepare = f"{r['prepare_s']:.1f}"
        if "cached_prepare_s" in r:
            prepare += f" ({r['cached_prepare_s']:.1f} cached)"
        lines.append(
            f"| {r['engine']} | {r['p50_ms_batch1']:.1f} | {r['p95_ms_batch1']:.1f} | "
            f"{r[f'prompts_per_s_batch{batch_size}']:.1f} | {r['speedup_vs_fp32']:.2f} | {prepare} | "
            f"{r['warmup_s']:.1f} | {100 * r['agreement_vs_fp32']:.2f}% ({r['flips']} flips) | "
            f"{r['max_abs_score_change']:.4f} | {r['avg_mu_n']:.4f} | {r['mu_n_change']:+.4f} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import onnxruntime
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    from lightning_lookahead.inference.engine_names import ENGINES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/cpu_mlm_all"), help="run directory of a trained router")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the run's data.data_dir")
    concrete = ",".join(e for e in ENGINES if e != "auto")  # auto is one of the others
    parser.add_argument("--engines", default=concrete, help="comma-separated; fp32 is always run first")
    parser.add_argument("--latency-prompts", type=int, default=40, help="seeded test prompts timed at batch 1")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=256, help="prompts per engine turn in the throughput pass")
    parser.add_argument("--threads", type=int, default=None, help="torch (and onnxruntime) threads; default torch's")
    parser.add_argument("--max-prompts", type=int, default=None, help="score only the first N test prompts (smoke)")
    parser.add_argument("--wait-s", type=float, default=0.0, help="wait this long for the run's export to appear")
    parser.add_argument(
        "--model-cache", type=Path, default=None, help="model cache for the ONNX exports (default: a fresh temp dir)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write the results here (e.g. docs/results/engines.json)"
    )
    args = parser.parse_args()

    engines = [FP32, *(e.strip() for e in args.engines.split(",") if e.strip() and e.strip() != FP32)]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise SystemExit(f"error: unknown engine(s) {unknown}; valid: {', '.join(ENGINES)}")
    wait_for(args.run / "export" / "router.json", args.wait_s)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    tmp_cache = None
    if args.model_cache is None:
        tmp_cache = tempfile.TemporaryDirectory(prefix="bench-engines-cache-")
        args.model_cache = Path(tmp_cache.name)
    os.environ["LOOKAHEAD_MODEL_CACHE"] = str(args.model_cache)

    from lightning_lookahead.evaluation import evaluate_scores
    from lightning_lookahead.inference import TrainedRouter

    benchmarks = test_split(args.run, args.data_dir)
    if args.max_prompts is not None:
        left, cut = args.max_prompts, {}
        for name, examples in benchmarks.items():
            if left > 0:
                cut[name], left = examples[:left], left - len(examples[:left])
        benchmarks = cut
    prompts = [ex.prompt for examples in benchmarks.values() for ex in examples]
    sample = random.Random(0).sample(prompts, min(args.latency_prompts, len(prompts)))
    info = machine()
    start = time.perf_counter()
    router = TrainedRouter.from_checkpoint(args.run)
    load_s = round(time.perf_counter() - start, 2)
    candidates = router.candidates
    print(
        f"{router.name}: {len(prompts)} test prompts over {len(benchmarks)} benchmarks, load {load_s} s; "
        f"{info['cpu_count']} CPUs, torch threads {info['torch_threads']}, load average {info['load_average']}",
        file=sys.stderr,
    )
    routers = {}
    for engine in engines:
        print(f"preparing {engine}", file=sys.stderr)
        routers[engine] = prepare(router.predictor, router.name, engine, sample, prompts, args.batch_size)
    latency, seconds, scores = interleaved(routers, prompts, sample, args.batch_size, args.chunk)
    rows: list[dict[str, Any]] = []
    reference_cache: dict = {}
    throughput = f"prompts_per_s_batch{args.batch_size}"
    for engine in engines:
        run = evaluate_scores(
            f"{router.name} [{engine}]",
            split_rows(scores[engine], benchmarks),
            benchmarks,
            candidates,
            reference_cache=reference_cache,
        )
        result: dict[str, Any] = {
            "engine": engine,
            **routers[engine].timings,
            "p50_ms_batch1": round(1000 * float(np.percentile(latency[engine], 50)), 1),
            "p95_ms_batch1": round(1000 * float(np.percentile(latency[engine], 95)), 1),
            throughput: round(len(prompts) / seconds[engine], 1),
            "avg_mu_n": round(float(run["avg_mu_n"]), 5),
            "mu_n_per_benchmark": {b: round(float(m["mu_n"]), 4) for b, m in run["results"].items()},
            "n_prompts": len(prompts),
        }
        rows.append(result)
    base, ref = rows[0], scores[FP32]
    top2 = np.sort(ref, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    for result in rows:
        got = scores[result["engine"]]
        flips = got.argmax(axis=1) != ref.argmax(axis=1)
        result.update(
            {
                "speedup_vs_fp32": round(result[throughput] / base[throughput], 2),
                "p50_speedup_vs_fp32": round(base["p50_ms_batch1"] / result["p50_ms_batch1"], 2),
                "agreement_vs_fp32": round(float(1 - flips.mean()), 5),
                "flips": int(flips.sum()),
                "max_fp32_margin_of_a_flip": round(float(margins[flips].max()), 4) if flips.any() else None,
                "max_abs_score_change": round(float(np.abs(got - ref).max()), 5),
                "mean_abs_score_change": round(float(np.abs(got - ref).mean()), 6),
                "mu_n_change": round(result["avg_mu_n"] - base["avg_mu_n"], 5),
            }
        )
        print(json.dumps(result), flush=True)
    fp32_margins = {f"p{q}": round(float(np.percentile(margins, q)), 4) for q in (1, 5, 25, 50)}
    table = markdown(rows, args.batch_size)
    print(table)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        from lightning_lookahead.data.io import write_atomic

        payload = {
            "command": "python benchmarks/bench_engines.py " + " ".join(sys.argv[1:]),
            "router": router.name,
            "run": str(args.run),
            "n_test_prompts": len(prompts),
            "benchmarks": {name: len(v) for name, v in benchmarks.items()},
            "router_load_s": load_s,
            "fp32_top2_margin_percentiles": fp32_margins,
            "machine": info,
            "engines": rows,
        }
        write_atomic(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if tmp_cache is not None:
        tmp_cache.cleanup()


if __name__ == "__main__":
    main()
