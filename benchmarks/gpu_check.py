"""One-command GPU check: mixed-precision fits of the MLM and CLM paths, the shared-prefix CLM's 4-D masks on the
device, and a throughput figure; a JSON + Markdown summary that docs/benchmarks.md can quote.

    python benchmarks/gpu_check.py [--out runs/gpu_check] [--precisions 16-mixed,bf16-mixed] [--allow-cpu]

1. ``lookahead train debug`` (fit + test) per path and precision: MLM on the embedded MiniLM (``minilm``), CLM on
   the embedded SmolLM2-135M (``smollm2``), with the sizes below (``--quick``: the debug experiment's own).
2. Shared-prefix CLM routing (prompt once + N id tokens under a 4-D mask) against N separate full forwards of the
   causal LM, on the device, for sdpa and eager attention: fp32 must agree to 1e-4; autocast is reported.
3. Throughput from each fit's ``results.json`` timing: training prompts/s (validation included) and routed prompts/s.

Without CUDA it stops with a message (exit 2); ``--allow-cpu`` runs the same on the CPU as a smoke test (bf16-mixed
only: Lightning has no fp16 autocast on the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PATHS = ("mlm", "clm")
FP32_TOLERANCE = 1e-4
#: Sizes of the fits on a GPU (``--quick`` keeps the debug experiment's 8 prompts, 64 positions).
GPU_SIZES = {
    "mlm": ["model.max_length=512", "model.mask_length=16"],
    "clm": ["model.max_length=512", "model.max_response_tokens=64"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"), help="summary and run folders")
    parser.add_argument("--precisions", default=None, help="comma-separated (default: 16-mixed,bf16-mixed on CUDA)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of mlm,clm")
    parser.add_argument("--data-dir", default=os.environ.get("LOOKAHEAD_DATA_DIR", "data"))
    parser.add_argument("--train-prompts", type=int, default=256, help="training prompts per fit (GPU sizes)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="the debug experiment's sizes (8 prompts, 64 tokens)")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU when there is no CUDA device")
    parser.add_argument("--skip-fits", action="store_true", help="only the shared-prefix check")
    args = parser.parse_args(argv)
    args.paths = [p for p in args.paths.split(",") if p]
    if unknown := sorted(set(args.paths) - set(PATHS)):
        parser.error(f"--paths: unknown {unknown} (choose from {', '.join(PATHS)})")
    if args.precisions is not None:
        args.precisions = [p for p in args.precisions.split(",") if p]
    return args


def pick_device(args: argparse.Namespace) -> str | None:
    """``cuda``, or ``cpu`` with ``--allow-cpu``; None (after a message) when there is nothing to run on."""
    import torch

    if torch.cuda.is_available():
        args.precisions = args.precisions or ["16-mixed", "bf16-mixed"]
        return "cuda"
    if not args.allow_cpu:
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, or "
              "pass --allow-cpu for a CPU smoke test", file=sys.stderr)  # fmt: skip
        return None
    args.precisions = args.precisions or ["bf16-mixed"]
    return "cpu"


def fit_overrides(path: str, precision: str, device: str, args: argparse.Namespace, run_dir: Path) -> list[str]:
    """``lookahead train debug`` overrides: the path's backbone, the device, the precision and the sizes."""
    out = [
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        "trainer.devices=1",
        f"trainer.precision={precision}",
        f"run_dir={run_dir}",
        f"data.data_dir={args.data_dir}",
    ]
    if path == "clm":  # the model block restarts from CLM's defaults: give its sizes again
        out += ["model.kind=clm", "model.backbone=smollm2", "model.max_length=64", "model.max_response_tokens=16"]
    if not args.quick:
        bs = args.batch_size
        out += [f"data.max_train_prompts={args.train_prompts}", f"data.batch_size={bs}"]
        out += [f"data.global_batch_size={bs}", "data.max_eval_prompts=64", *GPU_SIZES[path]]
    return out


def run_fit(path: str, precision: str, device: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fit + test in a subprocess; its exit status, wall time and throughput from results.json."""
    run_dir = args.out / f"{path}_{precision}"
    cmd = [sys.executable, "-c", "from lightning_lookahead.cli import main; raise SystemExit(main())", "train"]
    cmd += ["debug", *fit_overrides(path, precision, device, args, run_dir)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    row: dict[str, Any] = {"path": path, "precision": precision, "ok": proc.returncode == 0,
                           "wall_seconds": round(time.perf_counter() - start, 1), "run_dir": str(run_dir)}  # fmt: skip
    if proc.returncode != 0:
        row["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return row
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    results = results[0] if isinstance(results, list) else results
    timing = results["timing"]
    prompts = int(results.get("train_prompts") or _train_prompts(run_dir))
    row["train_prompts"] = prompts
    row["train_prompts_per_s"] = round(prompts / timing["train_seconds"], 2)
    row["routed_prompts_per_s"] = round(timing["routed_prompts"] / timing["route_seconds"], 2)
    return row


def _train_prompts(run_dir: Path) -> int:
    """Training prompts seen in the fit (max_train_prompts × epochs), from the run's composed config."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    return int(cfg["data"]["max_train_prompts"] or 0) * int(cfg["trainer"]["max_epochs"])


def _examples() -> list[dict[str, Any]]:
    """Six prompts of clearly different lengths, so the shared-prefix rows are right-padded differently."""
    words = "write a function that sorts the list and then solve the equation for x in the story".split()
    return [{"prompt_id": f"p{i}", "prompt": " ".join((words * 4)[: 2 + 7 * i]), "responses": ["ok"] * 5,
             "scores": [0.0, 0.25, 0.5, 0.75, 1.0], "benchmark": "check"} for i in range(6)]  # fmt: skip


def shared_prefix_check(device: str, precisions: list[str]) -> list[dict[str, Any]]:
    """Max |shared-prefix − separate| routing logit of the CLM on SmolLM2, per attention kernel and precision."""
    import torch

    from lightning_lookahead.models.registry import build_predictor
    from lightning_lookahead.models.scoring import batch_logits

    rows = []
    for attn in ("sdpa", "eager"):
        torch.manual_seed(0)
        cfg = {"kind": "clm", "backbone": "smollm2", "max_length": 256, "dropout": 0.0, "attn_implementation": attn}
        predictor = build_predictor(cfg, [f"m{j}" for j in range(5)])
        net = predictor.network.to(device).eval()
        features = [{**ex, **predictor.inputs.featurize(ex)} for ex in _examples()]
        batch = {k: v.to(device) for k, v in predictor.inputs.collate(features).items() if hasattr(v, "to")}
        for precision in ["32-true", *precisions]:
            dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
            autocast = torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None)
            with torch.no_grad(), autocast:
                shared = batch_logits(net, batch).float()
                separate = torch.zeros_like(shared)
                for b, f in enumerate(features):
                    for j, token in enumerate(predictor.inputs.layout.model_id_tokens):
                        ids = torch.tensor([[*f["prompt_ids"], token]], device=device)
                        state = net.backbone(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
                        separate[b, j] = net.head(state).float()[0]
            diff = float((shared - separate).abs().max())
            ok = diff <= FP32_TOLERANCE if precision == "32-true" else bool(torch.isfinite(shared).all())
            rows.append({"attn": attn, "precision": precision, "max_abs_diff": diff, "ok": ok})
    return rows


def markdown(summary: dict[str, Any]) -> str:
    """The summary as the tables docs/benchmarks.md quotes."""
    lines = [
        f"# GPU check ({summary['device']}: {summary['device_name']})",
        "",
        f"torch {summary['torch']}, CUDA {summary['cuda']}; {summary['seconds']:.0f} s in all.",
        "",
        "| path | precision | fit + test | train prompts/s | routed prompts/s | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["fits"]:
        cells = [r["path"], r["precision"], "ok" if r["ok"] else "FAILED"]
        cells += [str(r.get("train_prompts_per_s", "—")), str(r.get("routed_prompts_per_s", "—"))]
        lines.append("| " + " | ".join([*cells, str(r["wall_seconds"])]) + " |")
    lines += [
        "",
        "Shared-prefix CLM routing vs separate forwards (max |Δ logit|; fp32 must be ≤ 1e-4):",
        "",
        "| attention | precision | max abs diff | ok |",
        "|---|---|---|---|",
    ]
    for r in summary["shared_prefix"]:
        lines.append(f"| {r['attn']} | {r['precision']} | {r['max_abs_diff']:.2e} | {'ok' if r['ok'] else 'FAILED'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args)
    if device is None:
        return 2
    import torch

    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    fits = [] if args.skip_fits else [run_fit(p, prec, device, args) for p in args.paths for prec in args.precisions]
    summary = {
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else "CPU",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "fits": fits,
        "shared_prefix": shared_prefix_check(device, args.precisions) if "clm" in args.paths else [],
    }
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["ok"] = all(r["ok"] for r in [*fits, *summary["shared_prefix"]])
    (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (args.out / "gpu_check.md").write_text(markdown(summary), encoding="utf-8")
    print(markdown(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
