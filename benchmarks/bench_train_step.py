"""Training-step throughput and peak memory of a predictor on real prompts, and routing latency.

    python benchmarks/bench_train_step.py --experiment cpu/mlm_all --steps 6 [--precision bf16] [--set k=v ...]

Runs ``steps`` optimiser steps (after one warm-up step) of the experiment's predictor on the experiment's training
prompts outside the Trainer (forward, backward, AdamW), at the experiment's batch size, precision and length
grouping (unless overridden), then times routing (inference at mask rate 1.0): p50/p95 latency at batch 1 and
throughput at batch 64. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
from bench_common import predictor_and_features

from lightning_lookahead.data.inputs import example_row
from lightning_lookahead.models.scoring import batch_logits


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a plain fp32 n×n matmul on this machine with torch's threads: the ceiling to compare against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def step_flops(module, batch) -> float:
    """Estimated FLOPs of one training step (forward + backward ≈ 3 × forward) from the shapes actually run.

    Per layer and token: 24·h² for the dense parts (QKV, output, 4h MLP) plus 4·h·T for attention scores and
    values, with T the padded length; plus the vocabulary projection at the positions that carry an MLM label.
    """
    cfg = module.network.backbone.config
    h, layers = cfg.hidden_size, cfg.num_hidden_layers
    ffn = getattr(cfg, "intermediate_size", 4 * h)
    if "responses" in batch:  # MLM: the fully masked batch labels every response slot
        inputs = module.inputs.layout.mask(batch, 1.0, "right")
        b, t = inputs["input_ids"].shape
        predicted = int((inputs["mlm_labels"] != -100).sum())
        cap = getattr(module.config, "mlm_max_predictions", None)
        predicted = min(predicted, cap) if cap else predicted
    else:
        b, t = batch["input_ids"].shape
        predicted = 0
    forward = b * t * layers * (8 * h * h + 4 * h * ffn + 4 * h * t) + 2 * predicted * h * (h + cfg.vocab_size)
    return 3.0 * forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cpu/mlm_code")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument(
        "--precision", choices=["fp32", "bf16"], default=None, help="bf16 = CPU autocast (default: the experiment's)"
    )
    parser.add_argument("--latency-prompts", type=int, default=20)
    parser.add_argument(
        "--sorted",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batch prompts of similar length (default: the experiment's data.length_grouped)",
    )
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    cfg, module, splits, features = predictor_and_features(args.experiment, args.set, args.steps + 1)
    bs = cfg.data.batch_size
    if args.precision is None:
        args.precision = "bf16" if str(cfg.trainer.precision).startswith("bf16") else "fp32"
    if args.sorted is None:
        args.sorted = bool(cfg.data.length_grouped)
    if args.sorted:  # what data.length_grouped does within each pool of batches
        features.sort(key=lambda f: len(f["prompt"]))
    batches = [module.inputs.collate(features[i * bs : (i + 1) * bs], train=True) for i in range(args.steps + 1)]
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-5)
    module.train()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    times, flops = [], []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        with autocast:
            loss = module.total_loss(batch, "train")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step warms up allocator and kernels
            times.append(time.perf_counter() - start)
            flops.append(step_flops(module, batch))
    train_rss = peak_rss_mib()
    step = statistics.mean(times)
    achieved = statistics.mean(flops) / step
    peak = matmul_flops()

    module.eval()
    val = [module.inputs.featurize(example_row(ex)) | example_row(ex) for ex in splits.val[:64]]
    latency = []
    with torch.inference_mode(), autocast:
        for feat in val[: args.latency_prompts]:
            start = time.perf_counter()
            batch_logits(module.network, module.inputs.collate([feat]))
            latency.append(time.perf_counter() - start)
        start = time.perf_counter()
        batch_logits(module.network, module.inputs.collate(val))
        batch64 = time.perf_counter() - start
    latency.sort()
    print(
        json.dumps(
            {
                "experiment": args.experiment,
                "precision": args.precision,
                "length_grouped": args.sorted,
                "max_length": cfg.model.get("max_length"),
                "batch_size": bs,
                "threads": torch.get_num_threads(),
                "step_seconds": round(step, 3),
                "train_prompts_per_s": round(bs / step, 2),
                "est_gflop_per_step": round(statistics.mean(flops) / 1e9),
                "achieved_gflops": round(achieved / 1e9, 1),
                "matmul_gflops": round(peak / 1e9, 1),
                "fraction_of_matmul": round(achieved / peak, 3),
                "train_peak_rss_mib": round(train_rss),
                "route_p50_ms_batch1": round(1000 * latency[len(latency) // 2], 1),
                "route_p95_ms_batch1": round(1000 * latency[int(0.95 * (len(latency) - 1))], 1),
                "route_prompts_per_s_batch64": round(len(val) / batch64, 1),
                "peak_rss_mib": round(peak_rss_mib()),
            }
        )
    )


if __name__ == "__main__":
    main()
