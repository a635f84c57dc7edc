"""A router loaded from a bundle: tokenizers → numpy input builder → onnxruntime → decision rules.

It answers the calls ``route``, ``serve`` and ``calibrate`` make of :class:`~lightning_lookahead.inference.router.
TrainedRouter` (``score``, ``route``, ``decide``, ``candidates``, ``home``, ``response_tokens``, ``engine``), so the
commands take it where they took the torch router.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_lookahead.bundle.decisions import RouteDecision, decide
from lightning_lookahead.bundle.inputs import ArrayInputs, array_inputs
from lightning_lookahead.bundle.layout import (
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    read_bundle_meta,
    vocabulary_hash,
)
from lightning_lookahead.costs.rules import ARGMAX, DecisionRule
from lightning_lookahead.data.lengths import longest_first
from lightning_lookahead.errors import DataError, LookaheadError

#: Environment variable: onnxruntime intra-op threads of a bundle session (default: onnxruntime's, the core count).
THREADS_ENV = "LOOKAHEAD_ONNX_THREADS"


def _tokenizer(folder: Path, meta: Mapping[str, Any]) -> Any:
    from tokenizers import Tokenizer

    path = folder / TOKENIZER_FILE
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise DataError(path, f"not a readable tokenizers file ({str(exc).splitlines()[0][:200]})") from None
    saved = (meta.get("tokenizer") or {}).get("vocabulary_sha256")
    if saved and vocabulary_hash(tokenizer.get_vocab(with_added_tokens=True)) != saved:
        raise DataError(path, "vocabulary hash differs from router.json's; the tokenizer does not belong to this model")
    return tokenizer


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    threads = os.environ.get(THREADS_ENV)
    if threads:
        options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's InvalidProtobuf / Fail / InvalidGraph are not exported types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"not a loadable ONNX model, truncated or corrupt ({first[:200]})") from None


class BundleRouter:
    """Score and route new prompts from a bundle folder without torch or transformers."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta = read_bundle_meta(self.folder)
        self.meta = meta
        self.candidates: list[str] = [str(c) for c in meta["candidates"]]
        self.kind: str = str(meta["kind"])
        self.name: str = str(meta.get("name") or self.folder.name)
        #: ``onnx`` (fp32) or ``onnx-int8``: what ``model.onnx`` holds, named as the engines are.
        self.engine: str = "onnx-int8" if meta.get("precision") == "int8" else "onnx"
        tokens = meta.get("response_tokens")
        self.response_tokens: dict[str, float] | None = (
            None if tokens is None else {k: float(v) for k, v in tokens.items()}
        )
        self.keys: list[str] = [str(k) for k in meta["inputs"]]
        try:
            self.inputs: ArrayInputs = array_inputs(meta["input_builder"], _tokenizer(self.folder, meta))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                self.folder / META_FILE, f"bad input_builder settings ({exc})", key="input_builder"
            ) from None
        self.session = _session(self.folder / MODEL_FILE)
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if graph_inputs != self.keys:
            raise DataError(
                self.folder / MODEL_FILE, f"graph inputs {graph_inputs} differ from router.json's inputs {self.keys}"
            )
        self.batch_size = 32

    def __repr__(self) -> str:
        where = f"candidates={self.candidates}, engine={self.engine!r}"
        return f"BundleRouter(kind={self.kind!r}, name={self.name!r}, {where})"

    #: A bundle routes new prompts only; oracle-style predictors are never bundled.
    needs_responses = False

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> BundleRouter:
        """A bundle folder or a Hugging Face Hub id holding one (``huggingface_hub.snapshot_download``)."""
        from lightning_lookahead.bundle.hub import resolve_router_path

        return cls(resolve_router_path(name_or_path))

    @property
    def source(self) -> Path:
        """The file that makes the scores (bulk routing's manifest digests it: calibrations may change, the model
        may not)."""
        return self.folder / MODEL_FILE

    @property
    def home(self) -> Path:
        """Where this router's calibrations are kept: the bundle folder (``calibrations.json``)."""
        return self.folder

    def featurize_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        if isinstance(prompts, str):
            prompts = [prompts]
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise LookaheadError(f"prompt {i} is a {type(prompt).__name__}, not a string")
        return [self.inputs.featurize(p) for p in prompts]

    def score_featurized(self, rows: Sequence[Sequence[int]], *, batch_size: int | None = None) -> np.ndarray:
        """Scores (n, C) of featurised prompts in input order, batched longest first like the torch path."""
        size = self.batch_size if batch_size is None else batch_size
        if size < 1:
            raise LookaheadError(f"batch size must be ≥ 1, got {size}")
        out = np.zeros((len(rows), len(self.candidates)), dtype=np.float32)
        order = longest_first(rows)
        for start in range(0, len(order), size):
            index = order[start : start + size]
            batch = self.inputs.collate([rows[i] for i in index])
            (logits,) = self.session.run(["logits"], {k: batch[k] for k in self.keys})
            out[index] = np.asarray(logits, dtype=np.float32)
        return out

    def score(self, prompts: Sequence[str], *, batch_size: int = 32, **_: Any) -> np.ndarray:
        """Raw routing scores (logits), shape (len(prompts), C), in input order."""
        return self.score_featurized(self.featurize_prompts(prompts), batch_size=batch_size)

    def route(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        rule: DecisionRule = ARGMAX,
        costs: np.ndarray | None = None,
        progress: bool = False,
    ) -> list[RouteDecision]:
        """One decision per prompt (``progress`` is accepted for the torch router's call and ignored)."""
        return self.decide(self.score(prompts, batch_size=batch_size), rule=rule, costs=costs)

    def decide(
        self, scores: np.ndarray, *, rule: DecisionRule = ARGMAX, costs: np.ndarray | None = None
    ) -> list[RouteDecision]:
        """Scores (n, C) → one :class:`RouteDecision` per row by ``rule``."""
        return decide(self.candidates, scores, rule=rule, costs=costs)
