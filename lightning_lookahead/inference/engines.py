"""Routing forward paths (engines): wrap a predictor's network so it computes its routing logits faster.

Every engine returns a module called exactly like the network (collated batch → ``NetworkOutput`` with float32
``logits``), so :func:`~lightning_lookahead.models.scoring.score_features` and everything above it (``route``,
``serve``, ``evaluate --checkpoint``) run unchanged. The predictor's own network is never modified: ``int8`` works
on a copy, ``bf16`` and ``compile`` wrap it, the ONNX engines run an exported copy in onnxruntime
(:mod:`lightning_lookahead.inference.onnx_engine`). docs/benchmarks.md has each engine's measured speed and its
decision agreement with ``fp32`` on the quickstart router.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.inference.engine_names import ENGINES
from lightning_lookahead.models.predictor import NetworkOutput, Predictor
from lightning_lookahead.models.scoring import network_device

#: Engines whose kernels exist for the CPU only (quantised torch Linear layers, onnxruntime's CPU provider).
CPU_ONLY: tuple[str, ...] = ("int8", "onnx", "onnx-int8")


def apply_engine(predictor: Predictor, engine: str) -> nn.Module:
    """``predictor``'s network (put in eval mode) behind ``engine``: a module with the same call."""
    if engine not in ENGINES:
        raise unknown_name("engine", engine, ENGINES)
    network = predictor.network.eval()
    device = network_device(network)
    if engine in CPU_ONLY and device.type != "cpu":
        raise LookaheadError(
            f"engine {engine!r} runs on the CPU only; load the router with device='cpu' (it is on {device})"
        )
    if engine == "fp32":
        return network
    if engine == "bf16":
        return AutocastNetwork(network, device.type).eval()
    if engine == "int8":
        return quantize_linear_int8(network).eval()
    if engine == "compile":
        return compile_network(network)
    from lightning_lookahead.inference.onnx_engine import onnx_network

    return onnx_network(predictor, quantized=engine == "onnx-int8")


def unsupported(engine: str, kind: str, reason: str, *, also_unsupported: tuple[str, ...] = ()) -> LookaheadError:
    """One line: this engine cannot run this predictor kind, why, and which engines can."""
    others = [e for e in ENGINES if e != engine and e not in also_unsupported]
    return LookaheadError(
        f"engine {engine!r} cannot run a {kind!r} router: {reason}; engines that can: {', '.join(others)}"
    )


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


def quantize_linear_int8(network: nn.Module) -> nn.Module:
    """A copy whose backbone Linear layers are dynamically quantised to int8 (weights per output channel, activations
    per tensor at each call, so a prompt's scores move slightly with its batch-mates); the routing head stays fp32,
    as it is tiny and is where the candidates' margins form. Per-channel weights halve the largest score error of
    per-tensor ones on the quickstart router, for ~15% of the speed-up.

    ``torch.ao.quantization.quantize_dynamic`` is deprecated in favour of torchao (pytorch issue 184982), but it is
    the API with fast CPU kernels (fbgemm/oneDNN) in eager mode today; its deprecation warning is silenced here.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    clone = copy.deepcopy(network).eval()
    target = clone.backbone if isinstance(getattr(clone, "backbone", None), nn.Module) else clone
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        quantized = quantize_dynamic(target, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    if target is clone:
        return quantized
    clone.backbone = quantized
    return clone


def compile_network(network: nn.Module) -> nn.Module:
    """``torch.compile`` with dynamic shapes (batch and sequence vary per call). Compilation happens on the first
    call of each new specialisation (batch 1 is its own), so the first batches are slow; docs/benchmarks.md has the
    measured cost."""
    return torch.compile(network, dynamic=True)
