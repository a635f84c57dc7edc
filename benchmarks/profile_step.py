"""Where one training step's time goes: torch.profiler's top operators for a predictor on real prompts.

python benchmarks/profile_step.py --experiment cpu/mlm_code [--rows 12] [--set k=v ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from lightning_lookahead.config.compose import compose
from lightning_lookahead.data.datamodule import example_dict
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.routers.registry import predictor_from_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cpu/mlm_code")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    cfg = compose(args.experiment, args.set)
    torch.manual_seed(0)
    module = predictor_from_config(cfg)
    splits = make_splits(cfg.data, Path(cfg.data.data_dir))
    bs = cfg.data.batch_size
    feats = [module.featurize(example_dict(ex)) | example_dict(ex) for ex in splits.train[: 2 * bs]]
    module.train()

    def step(batch):
        module.total_loss(batch, "train").backward()

    step(module.collate(feats[:bs]))  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(module.collate(feats[bs:]))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
