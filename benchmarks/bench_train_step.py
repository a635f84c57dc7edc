"""Training-step throughput and peak memory of a predictor on real prompts, and routing latency.

    python benchmarks/bench_train_step.py --experiment cpu/mlm_code --steps 6 [--precision bf16] [--set k=v ...]

Runs ``steps`` optimiser steps (after one warm-up step) of the experiment's predictor on SelfOSS training
prompts outside the Trainer (forward, backward, AdamW), at the experiment's batch size, then times routing
(inference at mask rate 1.0): p50/p95 latency at batch 1 and throughput at batch 64. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.datamodule import example_dict
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.routers.registry import build_predictor


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cpu/mlm_code")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 = CPU autocast")
    parser.add_argument("--latency-prompts", type=int, default=20)
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    cfg = compose(args.experiment, args.set)
    torch.manual_seed(0)
    module = build_predictor(
        OmegaConf.to_container(cfg.model),
        OmegaConf.to_container(cfg.loss),
        OmegaConf.to_container(cfg.optim),
        list(cfg.data.candidates),
    )
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    bs = cfg.data.batch_size
    features = [module.featurize(example_dict(ex)) | example_dict(ex) for ex in splits.train[: bs * (args.steps + 1)]]
    batches = [module.collate(features[i * bs : (i + 1) * bs]) for i in range(args.steps + 1)]
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-5)
    module.train()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    times = []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        with autocast:
            out = module.forward_batch(batch, "train")
            loss = module.compute_routing_loss(out.logits, batch["scores"])
            if out.aux_loss is not None:
                loss = loss + module.aux_loss_weight() * out.aux_loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step warms up allocator and kernels
            times.append(time.perf_counter() - start)
    train_rss = peak_rss_mib()
    step = statistics.mean(times)

    module.eval()
    val = [module.featurize(example_dict(ex)) | example_dict(ex) for ex in splits.val[:64]]
    latency = []
    with torch.inference_mode(), autocast:
        for feat in val[: args.latency_prompts]:
            start = time.perf_counter()
            module.predict_scores(module.collate([feat]))
            latency.append(time.perf_counter() - start)
        start = time.perf_counter()
        module.predict_scores(module.collate(val))
        batch64 = time.perf_counter() - start
    latency.sort()
    print(
        json.dumps(
            {
                "experiment": args.experiment,
                "precision": args.precision,
                "batch_size": bs,
                "threads": torch.get_num_threads(),
                "step_seconds": round(step, 3),
                "train_prompts_per_s": round(bs / step, 2),
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
