"""The paper-scale dry run (benchmarks/dry_run.py) on a tiny ModernBERT, and the GPU check's arguments.

The full-size runs are benchmarks (docs/benchmarks.md), not tests: here the same function runs on a 2-layer,
hidden-32 ModernBERT at 128 positions and must report every field of the memory model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import dry_run
import gpu_check

TINY = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 64}


def test_dry_run_reports_the_memory_model_fields(real_data: Path, tmp_path: Path) -> None:
    overrides = ["model.max_length=128", "model.mask_length=8", f"data.data_dir={real_data}",
                 f"data.cache_dir={tmp_path}/cache"]  # fmt: skip
    result = dry_run.dry_run("mlm_code", overrides, steps=2, layers=2, shape=TINY, pool=4, workdir=tmp_path)
    assert result["kind"] == "mlm" and result["steps"] == 2 and result["measured_layers"] == 2
    assert result["parameters_full"] > result["parameters_measured"] > 0  # the third layer is extrapolated
    assert result["tokens_per_micro_batch"] <= 128 and result["sequences_per_micro_batch"] == 1
    assert result["rss_mib"]["peak"] >= result["rss_mib"]["after_build"] > 0
    model = result["gpu_model_16_mixed"]
    assert model["paper_micro_batch_prompts"] == 32  # experiments/mlm.yaml's data.batch_size
    assert set(model["static_mib"]) == {"weights", "gradients", "adamw"}
    assert model["static_mib"]["adamw"] == pytest.approx(2 * model["static_mib"]["weights"], abs=1)
    assert model["projected_peak_gib"] > 0 and result["seconds_per_micro_batch_full_depth"] > 0
    assert not list(tmp_path.glob("tmp*"))  # the temporary model directory is gone


def test_gpu_check_arguments_and_no_cuda_message(monkeypatch, capsys, tmp_path: Path) -> None:
    import torch

    args = gpu_check.parse_args(["--out", str(tmp_path), "--paths", "clm", "--precisions", "bf16-mixed", "--quick"])
    assert args.paths == ["clm"] and args.precisions == ["bf16-mixed"] and args.quick
    overrides = gpu_check.fit_overrides("clm", "bf16-mixed", "cuda", args, tmp_path / "run")
    assert "model.kind=clm" in overrides and "trainer.accelerator=gpu" in overrides
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--paths", "mlc"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "gpu_check.json").exists()
    args = gpu_check.parse_args(["--allow-cpu"])
    assert gpu_check.pick_device(args) == "cpu" and args.precisions == ["bf16-mixed"]
