"""The ``onnx`` and ``onnx-int8`` engines: the network's routing-logits forward exported once, run in onnxruntime.

Which tensors to feed is not hard-coded per predictor: a probe batch (two prompts of the router's own input builder)
goes through the network once with a dict that records the keys it reads, and exactly those become the graph's
inputs, in that order. Each must be a (batch, sequence) tensor; anything else (the CLM's (B, T, T) attention mask,
its (B, N) id positions) is refused with one line naming the engines that can run the router.

Exports are built once into the model cache (:func:`~lightning_lookahead.models.model_cache.build_once`: a
temporary directory renamed into place under a file lock), in a directory keyed by a hash of the weights, the
predictor settings, the engine and the torch / onnx / onnxruntime / lightning_lookahead versions, so a second load
of the same router reuses the file and a retrained one gets its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.engine_names import unsupported
from lightning_lookahead.models.model_cache import build_once, model_cache_root
from lightning_lookahead.models.predictor import NetworkOutput, Predictor

log = logging.getLogger(__name__)

#: Bump when the exported graph changes for the same weights and versions, so stale cached exports miss.
EXPORT_VERSION = 2
MODEL_FILE = "model.onnx"
#: The export before onnxruntime's BERT fusions (removed once the fused model is written).
RAW_FILE = "exported.onnx"
#: ``model_type`` of the backbones whose exports get onnxruntime's BERT fusions.
BERT_FAMILY = ("bert", "roberta", "xlm-roberta", "distilbert", "electra")
MARKER = ".complete"
#: Prompts of the probe batch: two lengths, so the sequence axis is seen to vary.
PROBE_PROMPTS = ("sort the list", "write a function that returns the sum of every number in a list and prints it")
#: How far the exported fp32 graph may drift from the torch forward on the probe batch before it is refused.
EXPORT_ATOL = 1e-3


class _ReadKeys(dict):
    """A batch dict that records which of its keys the network reads (``[]``, ``get``, ``in`` then ``[]``)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.read: list[str] = []

    def _note(self, key: str) -> None:
        if dict.__contains__(self, key) and key not in self.read:
            self.read.append(key)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)


def probe_batch(predictor: Predictor) -> dict[str, Any]:
    """A collated batch of the router's own inputs (responses given, for predictors that read them)."""
    n = len(predictor.candidates)
    rows = [
        {"prompt_id": f"probe-{i}", "prompt": p, "responses": ["a short answer"] * n, "scores": [], "benchmark": ""}
        for i, p in enumerate(PROBE_PROMPTS)
    ]
    inputs = predictor.inputs
    return inputs.collate([{**row, **inputs.featurize(dict(row))} for row in rows])


def read_keys(network: nn.Module, batch: Mapping[str, Any]) -> tuple[list[str], torch.Tensor]:
    """The batch keys ``network`` reads at inference, in reading order, and its logits on ``batch``."""
    recorder = _ReadKeys(batch)
    with torch.inference_mode():
        logits = network(recorder).logits.float()
    return recorder.read, logits


class LogitsForward(nn.Module):
    """The exported function: the read tensors, positionally → routing logits only (no auxiliary loss)."""

    def __init__(self, network: nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.network = network
        self.keys = keys

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.network(dict(zip(self.keys, tensors, strict=True))).logits.float()


def weights_hash(network: nn.Module) -> str:
    """sha256 of every tensor of the state dict (names, dtypes, shapes, bytes); tied tensors are read once each."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict(keep_vars=False).items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def export_key(predictor: Predictor, engine: str, keys: list[str]) -> str:
    """What an export depends on: weights, predictor settings, the graph's inputs, the engine and the versions."""
    import onnx
    import onnxruntime

    from lightning_lookahead.typed import config_to_dict
    from lightning_lookahead.version import __version__

    parts = {
        "weights": weights_hash(predictor.network),
        "config": config_to_dict(predictor.config),
        "candidates": list(predictor.candidates),
        "inputs": keys,
        "engine": engine,
        "export_version": EXPORT_VERSION,
        "versions": [torch.__version__, onnx.__version__, onnxruntime.__version__, __version__],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def check_inputs(predictor: Predictor, engine: str, keys: list[str], batch: Mapping[str, Any]) -> None:
    """Every read tensor must be an integer (batch, sequence) tensor, the shapes the export makes dynamic."""
    kind = str(predictor.config.kind)
    onnx_engines = ("onnx", "onnx-int8")
    if not keys:
        raise unsupported(engine, kind, "its network reads no tensor of the batch", also_unsupported=onnx_engines)
    for key in keys:
        value = batch[key]
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise unsupported(
                engine,
                kind,
                f"its network reads {key!r} of shape {shape}; the export makes only (batch, sequence) tensors dynamic",
                also_unsupported=onnx_engines,
            )


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporter's chatter (missing torchvision ops, axis renames, deprecations) is not the user's business; the
    result is checked against the torch forward instead."""
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "")  # "": onnxruntime.quantization
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(network: nn.Module, keys: list[str], batch: Mapping[str, Any], out: Path) -> None:
    """``torch.onnx.export`` (the dynamo exporter) of the logits forward, batch and sequence axes dynamic."""
    forward = LogitsForward(network, keys).eval()
    args = tuple(batch[k] for k in keys)
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
    with _quiet_export(), torch.no_grad():
        program = torch.onnx.export(
            forward,
            args,
            dynamo=True,
            dynamic_shapes=(tuple(axes for _ in keys),),
            input_names=keys,
            output_names=["logits"],
            verbose=False,
        )
        if program is None:
            raise LookaheadError("torch.onnx.export returned no program (the dynamo exporter is required)")
        program.save(str(out), external_data=False)


def bert_family(network: nn.Module) -> tuple[int, int] | None:
    """(heads, hidden) of a BERT-family backbone, whose graph onnxruntime's transformer optimizer knows how to fuse."""
    config = getattr(getattr(network, "backbone", None), "config", None)
    if getattr(config, "model_type", None) not in BERT_FAMILY:
        return None
    return int(getattr(config, "num_attention_heads", 0) or 0), int(getattr(config, "hidden_size", 0) or 0)


def fuse_bert(source: Path, out: Path, heads: int, hidden: int) -> None:
    """onnxruntime's offline BERT fusions (embedding + LayerNorm, bias + GELU, residual + LayerNorm, attention where
    the pattern matches): fewer, fused CPU kernels. The result is checked against the torch forward like the export."""
    from onnxruntime.transformers.optimizer import optimize_model

    with _quiet_export():
        optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(str(out))


def quantize_onnx(source: Path, out: Path) -> None:
    """onnxruntime's dynamic int8 quantisation of the MatMul weights, per output channel (activations quantised per
    call). Per-channel weights halve the largest score error of per-tensor ones on the quickstart router; the fused
    embedding op is left in fp32 (its quantised form fails on the MLM's restarted position ids)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_export():
        quantize_dynamic(source, out, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8, per_channel=True)


def session(path: Path) -> Any:
    """An onnxruntime CPU session using torch's intra-op thread count (one inter-op thread: the graph is a chain)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxNetwork(nn.Module):
    """An onnxruntime session behind the network's call: feeds the read tensors, returns float32 logits."""

    def __init__(self, sess: Any, keys: list[str], path: Path) -> None:
        super().__init__()
        self.session = sess
        self.keys = list(keys)
        #: The .onnx file the session runs (in the model cache).
        self.path = path
        self._dtypes = {i.name: i.type for i in sess.get_inputs()}

    def forward(self, batch: Mapping[str, Any]) -> NetworkOutput:
        feed = {}
        for key in self.keys:
            if key not in batch:
                raise LookaheadError(f"the ONNX export {self.path} reads {key!r}, which this batch lacks")
            feed[key] = np.ascontiguousarray(batch[key].detach().cpu().numpy())
        (logits,) = self.session.run(["logits"], feed)
        return NetworkOutput(logits=torch.from_numpy(np.asarray(logits, dtype=np.float32)))


def _write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    """``config.json`` (what ``build_once`` checks for) then the marker, last."""
    (directory / "config.json").write_text(json.dumps(dict(meta), indent=2) + "\n", encoding="utf-8")
    (directory / MARKER).write_text("", encoding="utf-8")


def build_export(predictor: Predictor, keys: list[str], batch: Mapping[str, Any], reference: torch.Tensor) -> Path:
    """The cached fp32 export's directory, exporting (and checking it against ``reference``) if it is not there."""
    key = export_key(predictor, "onnx", keys)
    target = model_cache_root() / "onnx" / f"{predictor.config.kind}-onnx-{key[:20]}"

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        start = time.perf_counter()
        log.warning("exporting the %s router to ONNX (once; cached in %s)", predictor.config.kind, target)
        shape = bert_family(predictor.network)
        export_onnx(predictor.network, keys, batch, tmp / (RAW_FILE if shape else MODEL_FILE))
        if shape:
            fuse_bert(tmp / RAW_FILE, tmp / MODEL_FILE, *shape)
            (tmp / RAW_FILE).unlink()
        got = run_session(session(tmp / MODEL_FILE), keys, batch)
        drift = float((got - reference).abs().max())
        if not drift <= EXPORT_ATOL:  # NaN fails too
            raise LookaheadError(
                f"the ONNX export of the {predictor.config.kind} router drifts from the torch forward by {drift:.2e} "
                f"(> {EXPORT_ATOL}) on a probe batch; use another engine"
            )
        _write_meta(
            tmp,
            {
                "engine": "onnx",
                "key": key,
                "inputs": keys,
                "max_drift": drift,
                "bert_fusions": shape is not None,
                "seconds": round(time.perf_counter() - start, 2),
            },
        )

    return build_once(target, MARKER, build)


def build_quantized(predictor: Predictor, keys: list[str], source: Path) -> Path:
    """The cached int8 model's directory, quantising the fp32 export in ``source`` if it is not there."""
    key = export_key(predictor, "onnx-int8", keys)
    target = model_cache_root() / "onnx" / f"{predictor.config.kind}-onnx-int8-{key[:20]}"

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        start = time.perf_counter()
        quantize_onnx(source / MODEL_FILE, tmp / MODEL_FILE)
        _write_meta(
            tmp,
            {
                "engine": "onnx-int8",
                "key": key,
                "inputs": keys,
                "source": str(source),
                "seconds": round(time.perf_counter() - start, 2),
            },
        )

    return build_once(target, MARKER, build)


def run_session(sess: Any, keys: list[str], batch: Mapping[str, Any]) -> torch.Tensor:
    """Logits of one batch through a session (used to check an export before it is cached)."""
    return OnnxNetwork(sess, keys, Path("?"))(batch).logits


def onnx_network(predictor: Predictor, *, quantized: bool) -> OnnxNetwork:
    """``onnx`` / ``onnx-int8``: probe the inputs, build (or reuse) the cached export, open an onnxruntime session."""
    engine = "onnx-int8" if quantized else "onnx"
    batch = probe_batch(predictor)
    keys, reference = read_keys(predictor.network.eval(), batch)
    check_inputs(predictor, engine, keys, batch)
    directory = build_export(predictor, keys, batch, reference)
    if quantized:
        directory = build_quantized(predictor, keys, directory)
    return OnnxNetwork(session(directory / MODEL_FILE), keys, directory / MODEL_FILE).eval()
