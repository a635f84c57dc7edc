"""``lookahead export RUN --format onnx``: write a run's router as an inference bundle (lightning_lookahead.bundle).

The routing forward is exported with the ``onnx`` engine's own code (:mod:`~lightning_lookahead.inference.
onnx_engine`: probe the keys the network reads, ``torch.onnx.export``, onnxruntime's BERT fusions, int8 dynamic
quantisation), offline and into the folder instead of the model cache. Before the folder is renamed into place it is
loaded with the light loader and checked against the torch router: the numpy input builder must give exactly the
torch tensors, and the fp32 scores must agree within :data:`SCORE_ATOL`; int8 reports its decision agreement.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightning_lookahead.bundle.layout import (
    BUNDLE_FORMAT,
    BUNDLE_KINDS,
    BUNDLE_VERSION,
    CALIBRATIONS_FILE,
    CARD_FILE,
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    vocabulary_hash,
)
from lightning_lookahead.data.io import replace_folder
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.router import TrainedRouter
from lightning_lookahead.version import __version__

#: How far fp32 bundle scores may drift from the torch forward on the check prompts before the export is refused.
SCORE_ATOL = 1e-4
#: Prompts the bundle is checked on when no --check-prompts file is given: varied lengths and domains.
CHECK_PROMPTS: tuple[str, ...] = (
    "write a function that returns the sum of every number in a list",
    "What is 17 * 23?",
    "Tell me a short story about a lighthouse keeper who finds a message in a bottle.",
    "Prove that the square root of 2 is irrational.",
    "sort the list",
    "Explain the difference between TCP and UDP to a new network engineer, with examples of when to use each.",
    "Translate 'good morning' into French, German and Spanish.",
    "A train leaves at 3pm going 60 mph; another leaves at 4pm going 80 mph. When does the second catch up?",
    "hi",
    "Write a Python class for a bank account with deposit and withdraw methods and tests for both.",
    "Summarise the causes of the First World War in three sentences.",
    "Solve for x: 3x + 7 = 22.",
)


@dataclass(frozen=True)
class BundleCheck:
    """How the written bundle compares with the torch fp32 router on the check prompts."""

    prompts: int
    agreement: float  # % of prompts whose argmax decision is the same
    max_score_diff: float
    fp32_export_drift: float  # the fp32 graph's drift on the probe batch (before quantisation)

    def to_json(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "agreement": self.agreement,
            "max_score_diff": self.max_score_diff,
            "fp32_export_drift": self.fp32_export_drift,
        }


def input_builder_settings(router: TrainedRouter) -> dict[str, Any]:
    """``router.json``'s ``input_builder``: what the numpy input builder needs to rebuild the torch inputs."""
    from lightning_lookahead.models.encoder import pad_id_of

    inputs = router.predictor.inputs
    config = router.predictor.config
    pooling = getattr(config, "pooling", None)
    layout = getattr(inputs, "layout", None)
    if layout is not None:  # MLMInputs
        return {
            "type": "mlm_blocks",
            "window": int(layout.max_prompt_tokens),
            "slots_per_candidate": int(layout.mask_length),
            "position_scheme": str(layout.position_scheme),
            "cls_id": int(layout.cls_id),
            "sep_id": int(layout.sep_id),
            "pad_id": int(layout.pad_id),
            "model_id_tokens": [int(t) for t in layout.model_id_tokens],
            "pooling": "cls" if pooling is None else str(pooling),
        }
    return {
        "type": "prompt",
        "window": int(inputs.max_length),
        "truncation_side": "left",
        "pad_id": int(pad_id_of(inputs.tokenizer)),
        "pooling": None if pooling is None else str(pooling),
    }


def check_bundle_kind(kind: str) -> None:
    if kind not in BUNDLE_KINDS:
        raise LookaheadError(
            f"--format onnx cannot bundle a {kind!r} router: its inputs have no numpy input builder "
            f"(bundles hold {', '.join(BUNDLE_KINDS)}); it keeps the torch path (`lookahead export` without --format)"
        )


def _backend_tokenizer(router: TrainedRouter) -> Any:
    backend = getattr(router.predictor.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise LookaheadError(
            f"the {router.kind} router's tokenizer ({type(router.predictor.tokenizer).__name__}) has no tokenizers "
            "backend (tokenizer.json); only fast tokenizers can be bundled"
        )
    return backend


def _export_model(router: TrainedRouter, out: Path, *, quantize: bool) -> tuple[list[str], float]:
    """``model.onnx`` in ``out`` (fp32, or int8 from it); the graph's input names and the fp32 drift on the probe."""
    from lightning_lookahead.inference import onnx_engine as ox

    predictor = router.predictor
    batch = ox.probe_batch(predictor)
    keys, reference = ox.read_keys(predictor.network.eval(), batch)
    ox.check_inputs(predictor, "onnx", keys, batch)
    work = out / ".work"
    work.mkdir()
    shape = ox.bert_family(predictor.network)
    raw = work / ox.RAW_FILE
    ox.export_onnx(predictor.network, keys, batch, raw)
    fp32 = work / MODEL_FILE
    if shape:
        ox.fuse_bert(raw, fp32, *shape)
    else:
        raw.rename(fp32)
    drift = float((ox.run_session(ox.session(fp32), keys, batch) - reference).abs().max())
    if not drift <= ox.EXPORT_ATOL:
        raise LookaheadError(
            f"the ONNX export of the {router.kind} router drifts from the torch forward by {drift:.2e}"
        )
    if quantize:
        ox.quantize_onnx(fp32, out / MODEL_FILE)
    else:
        fp32.rename(out / MODEL_FILE)
    shutil.rmtree(work)
    return keys, drift


def _check_inputs_match(router: TrainedRouter, bundle: Any, prompts: Sequence[str], keys: Sequence[str]) -> None:
    """The numpy input builder must give exactly the torch collate's tensors for ``keys`` (else nothing is written)."""
    torch_batch = router.predictor.inputs.collate(router.featurize_prompts(prompts))
    arrays = bundle.inputs.collate(bundle.featurize_prompts(prompts))
    for key in keys:
        expected = torch_batch[key].numpy()
        if arrays[key].shape != expected.shape or not np.array_equal(arrays[key], expected):
            raise LookaheadError(
                f"the bundle's numpy input builder differs from the {router.kind} router's on {key!r}; not written"
            )


def compare(router: TrainedRouter, bundle: Any, prompts: Sequence[str], batch_size: int = 32) -> tuple[float, float]:
    """(% identical argmax decisions, max |score difference|) of the bundle against the torch router."""
    reference = router.score(list(prompts), batch_size=batch_size)
    got = bundle.score(list(prompts), batch_size=batch_size)
    agreement = 100.0 * float(np.mean(reference.argmax(1) == got.argmax(1)))
    return agreement, float(np.abs(reference - got).max())


def write_bundle(
    router: TrainedRouter,
    out: Path,
    *,
    quantize: bool = False,
    check_prompts: Sequence[str] = CHECK_PROMPTS,
    card: Callable[[BundleCheck], str] | None = None,
    source: str | None = None,
) -> BundleCheck:
    """Write the bundle of ``router`` to ``out`` atomically (a sibling temporary folder renamed into place);
    ``card`` makes the README.md text from the check's numbers."""
    from lightning_lookahead.bundle.router import BundleRouter

    check_bundle_kind(router.kind)
    backend = _backend_tokenizer(router)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        keys, drift = _export_model(router, tmp, quantize=quantize)
        backend.save(str(tmp / TOKENIZER_FILE))
        from tokenizers import Tokenizer

        saved_vocab = Tokenizer.from_file(str(tmp / TOKENIZER_FILE)).get_vocab(with_added_tokens=True)
        meta = _metadata(router, keys, quantize=quantize, vocab_hash=vocabulary_hash(saved_vocab), source=source)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        home = router.home
        if home is not None and (home / CALIBRATIONS_FILE).is_file():
            shutil.copyfile(home / CALIBRATIONS_FILE, tmp / CALIBRATIONS_FILE)
        bundle = BundleRouter(tmp)
        _check_inputs_match(router, bundle, check_prompts, keys)
        agreement, diff = compare(router, bundle, check_prompts)
        if not quantize and not diff <= SCORE_ATOL:
            raise LookaheadError(f"the bundle's scores drift from the torch router's by {diff:.2e} (> {SCORE_ATOL})")
        check = BundleCheck(len(check_prompts), agreement, diff, drift)
        meta["check"] = check.to_json()
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if card is not None:
            (tmp / CARD_FILE).write_text(card(check), encoding="utf-8")
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return check


def _metadata(router: TrainedRouter, keys: list[str], *, quantize: bool, vocab_hash: str, source: str | None) -> dict:
    from lightning_lookahead.typed import config_to_dict

    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "name": router.name,
        "kind": router.kind,
        "candidates": list(router.candidates),
        "precision": "int8" if quantize else "fp32",
        "inputs": list(keys),
        "outputs": ["logits"],
        "input_builder": input_builder_settings(router),
        "tokenizer": {"file": TOKENIZER_FILE, "vocabulary_sha256": vocab_hash},
        "response_tokens": router.response_tokens,
        "model": config_to_dict(router.predictor.config),
        "source": source,
        "versions": {"lightning_lookahead": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
