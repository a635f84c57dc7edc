"""Routing forward paths (engines): wrap a predictor's network so it computes its routing logits faster.

Every engine returns a module called exactly like the network (collated batch → ``NetworkOutput`` with float32
``logits``), so :func:`~lightning_lookahead.models.scoring.score_features` and everything above it (``route``,
``serve``, ``evaluate --checkpoint``) run unchanged. The predictor's own network is never modified: ``bf16`` wraps
it, the ONNX engines run an exported copy in onnxruntime
(:mod:`lightning_lookahead.inference.onnx_engine`). docs/benchmarks.md has each engine's measured speed and its
decision agreement with ``fp32`` on the quickstart router.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.extras import require_extra
from lightning_lookahead.inference.engine_names import ENGINES
from lightning_lookahead.models.predictor import NetworkOutput, Predictor
from lightning_lookahead.models.scoring import network_device

#: Engines whose kernels exist for the CPU only (onnxruntime's CPU provider).
CPU_ONLY: tuple[str, ...] = ("onnx", "onnx-int8")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls natively; elsewhere autocast emulates bf16 and can be slower."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own CPU-feature checks
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    return False


def resolve_engine(engine: str, device: torch.device) -> str:
    """The engine ``engine`` stands for on ``device`` (``auto`` → bf16 where native, else fp32)."""
    if engine not in ENGINES:
        raise unknown_name("engine", engine, ENGINES)
    if engine == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return engine


def apply_engine(predictor: Predictor, engine: str) -> tuple[nn.Module, str]:
    """``predictor``'s network (put in eval mode) behind ``engine``: a module with the same call, and the engine it
    resolved to."""
    network = predictor.network.eval()
    device = network_device(network)
    engine = resolve_engine(engine, device)
    if engine in CPU_ONLY and device.type != "cpu":
        raise LookaheadError(
            f"engine {engine!r} runs on the CPU only; load the router with device='cpu' (it is on {device})"
        )
    if engine == "fp32":
        return network, engine
    if engine == "bf16":
        return AutocastNetwork(network, device.type).eval(), engine
    require_extra("onnx", f"engine {engine!r}")
    from lightning_lookahead.inference.onnx_engine import onnx_network

    return onnx_network(predictor, quantized=engine == "onnx-int8"), engine


class AutocastNetwork(nn.Module):
    """The network under ``torch.autocast(bfloat16)``: matmuls in bf16, reductions and norms in fp32 (autocast's
    own op lists); logits come back as float32 so scores and decisions are computed as for fp32."""

    def __init__(self, network: nn.Module, device_type: str) -> None:
        super().__init__()
        self.network = network
        self.device_type = device_type

    def forward(self, batch: Mapping[str, Any]) -> NetworkOutput:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.network(batch)
        aux = None if out.aux_loss is None else out.aux_loss.float()
        return NetworkOutput(logits=out.logits.float(), aux_loss=aux)
