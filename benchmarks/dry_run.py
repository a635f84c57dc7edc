"""Paper-scale dry run on the CPU: a few optimiser steps of a paper experiment at full model size, and a GPU memory
model derived from what they measured.

    python benchmarks/dry_run.py mlm_all [--steps 2] [--micro-batch 1] [--layers 22] [--set k=v ...] [--json F]

The experiment's backbone is replaced by a local model directory this script writes (``model.backbone=DIR``): for
ModernBERT-base its architecture (transformers' ``ModernBertConfig`` defaults = ModernBERT-base) with random
weights and, since there is no ModernBERT tokenizer offline, the embedded MiniLM tokenizer (its ids fall inside the
50,368-token vocabulary; only the lengths matter here). SmolLM2-135M is the ``smollm2`` alias (the real
SmolLM2-135M-Instruct, the same architecture as the paper's base model). ``--layers`` measures fewer layers and
scales the per-layer parts (time and activations) to the full depth.

Steps run outside the Trainer (forward, backward, AdamW), one micro-batch per optimiser step, on the training
prompts whose sequences are longest (the paper's lengths). Memory is the process's resident set (VmRSS / VmHWM).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_common import predictor_and_features

from lightning_lookahead.config.compose import compose

MODERNBERT = "answerdotai/ModernBERT-base"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M"
#: Bytes per parameter held across steps: fp32 weights + fp32 gradients + AdamW's two fp32 moments. Lightning's
#: 16-mixed and bf16-mixed keep fp32 master weights (autocast casts per op), so they hold the same 16 bytes.
STATIC_BYTES = {"weights": 4, "gradients": 4, "adamw": 8}
#: Half-precision weight copies autocast caches during a mixed-precision step.
AUTOCAST_COPY_BYTES = 2
#: Under 16-mixed most saved activations are fp16: half of the fp32 bytes measured here (an estimate; fp32 norms,
#: softmax statistics and the loss's logits keep some fp32).
MIXED_ACTIVATION_FACTOR = 0.5
#: CUDA context and allocator slack on a GPU.
CUDA_OVERHEAD_MIB = 1024
MIB = 2**20


def vm_mib(field: str) -> float:
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def write_modernbert(out: Path, shape: dict[str, Any]) -> Path:
    """ModernBERT-base's architecture (``shape`` overrides) with random weights + the MiniLM tokenizer in ``out``."""
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    from lightning_lookahead.models.backbones import resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("minilm"))
    special = {
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    config = ModernBertConfig(**special, **shape)
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size {config.vocab_size} < the tokenizer's {len(tokenizer)} tokens")
    tokenizer.model_max_length = config.max_position_embeddings  # MiniLM's 512 is not ModernBERT's limit
    torch.manual_seed(0)
    ModernBertForMaskedLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def full_parameters(module: torch.nn.Module, depth_scale: float) -> int:
    """Parameters at the architecture's full depth: the measured ones plus the missing layers (like ``layers.0``)."""
    names = [(name, p.numel()) for name, p in module.named_parameters()]
    per_layer = sum(n for name, n in names if ".layers.0." in f".{name}")
    layers = len({name.split(".layers.")[1].split(".")[0] for name, _ in names if ".layers." in f".{name}"})
    return sum(n for _, n in names) + round(per_layer * layers * (depth_scale - 1))


def longest_first(module: Any, features: list[dict[str, Any]], micro_batch: int, steps: int) -> list[dict]:
    """Batches of the prompts whose training sequences are longest: the paper's lengths, not the typical prompt."""
    sizes = [(module.inputs.collate([f], train=True)["input_ids"].numel(), i) for i, f in enumerate(features)]
    order = [i for _, i in sorted(sizes, reverse=True)]
    chosen = [features[i] for i in order[: micro_batch * steps]]
    return [module.inputs.collate(chosen[k : k + micro_batch], train=True) for k in range(0, len(chosen), micro_batch)]


def dry_run(
    experiment: str,
    overrides: list[str] = (),  # type: ignore[assignment]
    *,
    steps: int = 2,
    micro_batch: int = 1,
    layers: int | None = None,
    shape: dict[str, Any] | None = None,
    pool: int = 64,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run ``steps`` optimiser steps of ``experiment`` at full size (or ``shape``) and return the measurements and
    the projected GPU peak for the paper's micro-batch at 16-mixed, every sequence at ``max_length`` (activations
    scaled linearly per token: the GPU's flash / memory-efficient attention keeps no T × T matrix)."""
    paper = compose(experiment, list(overrides))
    paper_micro = int(paper.data.batch_size)
    kind = str(paper.model.kind)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        extra = [f"data.batch_size={micro_batch}", f"data.global_batch_size={micro_batch}"]
        if paper.model.backbone == MODERNBERT:
            extra.append(f"model.backbone={write_modernbert(Path(tmp) / 'modernbert', dict(shape or {}))}")
        elif paper.model.backbone == SMOLLM2:
            extra.append("model.backbone=smollm2")
        if layers is not None:
            extra.append(f"model.backbone_config.num_hidden_layers={layers}")
        base_rss = vm_mib("VmRSS")
        cfg, module, _, features = predictor_and_features(experiment, [*overrides, *extra], max(pool, steps))
        depth_scale = _depth_scale(cfg, layers)
        params = sum(p.numel() for p in module.parameters())
        full_params = full_parameters(module, depth_scale)
        batches = longest_first(module, features, micro_batch, steps)
        built_rss = vm_mib("VmRSS")
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-5)
        module.train()
        times, peaks, sequences, tokens = [], [], [], []
        for i, batch in enumerate(batches):
            reset_peak()
            start = time.perf_counter()
            loss = module.total_loss(batch, "train")
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # gradients stay allocated: static memory, as on a GPU
            times.append(time.perf_counter() - start)
            peaks.append(vm_mib("VmHWM"))
            sequences.append(int(batch["input_ids"].shape[0]))
            tokens.append(int(batch["input_ids"].numel()))
            if not torch.isfinite(loss):
                raise RuntimeError(f"step {i}: loss is {float(loss)}")
    static_mib = {k: b * params / MIB for k, b in STATIC_BYTES.items()}
    timed = times[1:] or times  # the first step warms up kernels and allocates the optimiser state
    act_mib = max(peaks[-1] - built_rss - static_mib["gradients"] - static_mib["adamw"], 0.0)
    act_per_seq = act_mib / statistics.mean(sequences) * depth_scale
    act_per_token = act_mib / statistics.mean(tokens) * depth_scale
    configured = getattr(cfg.model, "max_length", None)
    max_length = int(configured or 0) or statistics.mean(tokens) / statistics.mean(sequences)
    seq_per_prompt = statistics.mean(sequences) / micro_batch
    paper_seqs = paper_micro * seq_per_prompt
    full_static = {k: b * full_params / MIB for k, b in STATIC_BYTES.items()}
    projected = (
        sum(full_static.values())
        + AUTOCAST_COPY_BYTES * full_params / MIB
        + MIXED_ACTIVATION_FACTOR * act_per_token * max_length * paper_seqs
        + CUDA_OVERHEAD_MIB
    )
    step_s = statistics.mean(timed) * depth_scale
    accumulation = int(paper.data.global_batch_size) // paper_micro
    return {
        "experiment": experiment,
        "kind": kind,
        "backbone": str(paper.model.backbone),
        "measured_layers": layers,
        "parameters_measured": params,
        "parameters_full": full_params,
        "threads": torch.get_num_threads(),
        "steps": len(times),
        "micro_batch_prompts": micro_batch,
        "sequences_per_micro_batch": statistics.mean(sequences),
        "tokens_per_micro_batch": statistics.mean(tokens),
        "max_length": configured,
        "seconds_per_step_measured": [round(t, 3) for t in times],
        "seconds_per_micro_batch_full_depth": round(step_s, 3),
        "cpu_hours_per_paper_optimizer_step": round(step_s / micro_batch * paper_micro * accumulation / 3600, 2),
        "rss_mib": {"start": round(base_rss), "after_build": round(built_rss), "peak": round(max(peaks))},
        "activations_mib_fp32_per_sequence": round(act_per_seq),
        "activations_kib_fp32_per_token": round(act_per_token * 1024),
        "gpu_model_16_mixed": {
            "paper_micro_batch_prompts": paper_micro,
            "paper_sequences_per_micro_batch": paper_seqs,
            "static_mib": {k: round(v) for k, v in full_static.items()},
            "autocast_copies_mib": round(AUTOCAST_COPY_BYTES * full_params / MIB),
            "activations_mib": round(MIXED_ACTIVATION_FACTOR * act_per_token * max_length * paper_seqs),
            "cuda_overhead_mib": CUDA_OVERHEAD_MIB,
            "projected_peak_gib": round(projected / 1024, 1),
        },
    }


def _depth_scale(cfg: Any, layers: int | None) -> float:
    """Full depth / measured depth: how per-layer time and activations scale (1 when every layer was measured)."""
    if layers is None:
        return 1.0
    from transformers import AutoConfig

    from lightning_lookahead.models.backbones import resolve_backbone

    full = int(AutoConfig.from_pretrained(resolve_backbone(cfg.model.backbone)).num_hidden_layers)
    return full / layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a paper experiment: mlm_all, clm_code, mlc_all, gt_code, ...")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--micro-batch", type=int, default=1, help="prompts per step (the paper's is larger)")
    parser.add_argument("--layers", type=int, default=None, help="measure this many layers; scale to full depth")
    parser.add_argument("--pool", type=int, default=64, help="training prompts to pick the longest from")
    parser.add_argument("--set", nargs="*", default=[], help="experiment overrides key=value")
    parser.add_argument("--json", type=Path, default=None, help="append the result as one JSON line here")
    args = parser.parse_args()
    result = dry_run(
        args.experiment, args.set, steps=args.steps, micro_batch=args.micro_batch, layers=args.layers, pool=args.pool
    )
    line = json.dumps(result)
    print(line, flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with args.json.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
