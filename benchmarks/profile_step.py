"""Where one training step's time goes: torch.profiler's top operators for a predictor on real prompts.

python benchmarks/profile_step.py --experiment cpu/mlm_code [--rows 12] [--set k=v ...]
"""

from __future__ import annotations

import argparse

from bench_common import predictor_and_features
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cpu/mlm_code")
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    cfg, module, _, feats = predictor_and_features(args.experiment, args.set, 2)
    bs = cfg.data.batch_size
    module.train()

    def step(batch):
        module.total_loss(batch, "train").backward()

    step(module.inputs.collate(feats[:bs], train=True))  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(module.inputs.collate(feats[bs:], train=True))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
