"""A servable export of a trained router, and loading it (or a Lightning checkpoint) without unpickling code.

A Lightning ``.ckpt`` is a pickle: loading one with ``weights_only=False`` runs whatever it names, so serving never
does that. At the end of training the recipe writes ``<run_dir>/export/``:

- ``model.safetensors``: the network's ``state_dict`` (tied weights stored once);
- ``router.json``: kind, config class, the ``model`` (and, as a record, ``loss`` / ``optim``) settings, the candidate
  pool, the tokenizer's vocabulary hash and the package versions; everything needed to rebuild the network through
  the registry, without Lightning;
- ``tokenizer/``: the tokenizer as ``save_pretrained`` writes it (with any model-id tokens added in training), for
  tools outside this package and as a record of what the router read.

Rebuilding loads the backbone *architecture* named by ``model.backbone`` (an alias, a local directory or a cached hub
id), then every weight from ``model.safetensors`` strictly, so the pretrained backbone weights never matter (and
modules the backbone checkpoint lacks are not reported as freshly initialised); only modules routing never runs (the
MLM head) may be absent from the file. A damaged file is reported as such (:func:`check_weights_file`). Older
runs without an export load from ``checkpoints/*.ckpt`` with ``torch.load(weights_only=True)``; ``lookahead export``
turns such a checkpoint into an export.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import pickle
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lightning_lookahead.data.io import replace_folder
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.version import __version__

EXPORT_DIR = "export"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "router.json"
TOKENIZER_DIR = "tokenizer"
FORMAT = "lightning-lookahead-router"
FORMAT_VERSION = 1


def vocabulary_hash(tokenizer: Any) -> str:
    """sha256 of the token → id mapping (added tokens included): what must match for the weights to mean the same.

    Not :func:`~lightning_lookahead.data.inputs.tokenizer_fingerprint`: its serialised backend also records
    truncation settings, which change once an input builder has used the tokenizer.
    """
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import transformers

    versions = {
        "lightning_lookahead": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    with contextlib.suppress(PackageNotFoundError):
        versions["lightning"] = version("lightning")
    return versions


def router_metadata(
    predictor: Predictor,
    *,
    name: str,
    source: str | None = None,
    response_tokens: Mapping[str, float] | None = None,
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``router.json`` content of a predictor.

    ``response_tokens`` (mean response length per candidate on the training split) lets cost-aware rules price a
    new prompt, which has no responses yet, without the user guessing a length; ``training`` records the ``loss``
    and ``optim`` settings the network was trained with.
    """
    from lightning_lookahead.typed import config_to_dict

    config = predictor.config
    tokenizer = predictor.tokenizer
    cls = type(config)
    training = dict(training or {})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "kind": str(config.kind),
        "predictor": f"{cls.__module__}.{cls.__qualname__}",
        "needs_responses": bool(config.needs_responses),
        "model": config_to_dict(config),
        "loss": training.get("loss"),
        "optim": training.get("optim"),
        "candidates": list(predictor.candidates),
        "tokenizer": None
        if tokenizer is None
        else {
            "dir": TOKENIZER_DIR,
            "class": type(tokenizer).__name__,
            "size": len(tokenizer),
            "vocabulary_sha256": vocabulary_hash(tokenizer),
        },
        "weights": WEIGHTS_FILE,
        "response_tokens": None if response_tokens is None else {k: float(v) for k, v in response_tokens.items()},
        "source_checkpoint": source,
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def export_router(
    predictor: Predictor,
    out_dir: str | Path,
    *,
    name: str,
    source: str | Path | None = None,
    response_tokens: Mapping[str, float] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``out_dir`` (usually ``<run_dir>/export``) atomically: a reader sees the old export or the new one.

    The files go to a sibling temporary folder that replaces ``out_dir`` by renames once complete.
    """
    from safetensors.torch import save_model

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_model(predictor.network, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        tokenizer = predictor.tokenizer
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        meta = router_metadata(
            predictor,
            name=name,
            source=_relative_to(source, out.parent),
            response_tokens=response_tokens,
            training=training,
        )
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _relative_to(path: str | Path | None, base: Path) -> str | None:
    """``path`` relative to the run directory where it lies inside it (so a moved run still names its checkpoint)."""
    if not path:
        return None
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------


def read_metadata(export_dir: Path) -> dict[str, Any]:
    """``router.json`` of an export, checked for format and the keys the rebuild needs."""
    path = export_dir / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LookaheadError(f"{export_dir} has no {META_FILE}; is it a router export?") from None
    except json.JSONDecodeError as exc:
        raise LookaheadError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LookaheadError(f"{path}: not a lightning_lookahead router export (format != {FORMAT!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise LookaheadError(
            f"{path}: export format {meta['format_version']} is newer than this package reads ({FORMAT_VERSION}); "
            "upgrade lightning_lookahead"
        )
    for key in ("kind", "model", "candidates"):
        if key not in meta:
            raise LookaheadError(f"{path}: missing key {key!r}")
    if not isinstance(meta["model"], dict) or meta["model"].get("kind") != meta["kind"]:
        raise LookaheadError(f"{path}: 'kind' ({meta['kind']!r}) and 'model.kind' disagree; the file was edited")
    return meta


def _register_saved_kind(kind: str, class_path: str | None) -> None:
    """Import the package module that registers ``kind`` when it is not registered yet.

    Only ``lightning_lookahead.*`` modules are imported from a saved path: a run directory must not be able to make
    the loader import arbitrary code.
    """
    from lightning_lookahead.models.registry import PREDICTORS

    if kind not in PREDICTORS and class_path and class_path.startswith("lightning_lookahead."):
        with contextlib.suppress(ImportError):  # the registry's unknown-kind error says what is available
            importlib.import_module(class_path.rsplit(".", 1)[0])


def rebuild_predictor(settings: Mapping[str, Any], *, backbone: str | None = None, where: str) -> Predictor:
    """A fresh predictor from saved settings (``model``, ``candidates``); the weights are loaded after."""
    from lightning_lookahead.models.backbones import weights_loaded_after
    from lightning_lookahead.models.registry import build_predictor

    model = dict(settings["model"])
    if backbone is not None:
        model["backbone"] = str(backbone)
    _register_saved_kind(str(model.get("kind")), settings.get("predictor"))
    try:
        with weights_loaded_after():  # every weight comes from the saved file: no "freshly initialised" report
            return build_predictor(model, settings["candidates"])
    except LookaheadError as exc:
        raise LookaheadError(f"{where}: cannot rebuild the {model.get('kind')} router: {exc}") from exc


def _load_error(where: str, exc: Exception) -> LookaheadError:
    lines = str(exc).strip().splitlines()
    detail = "; ".join(line.strip() for line in lines[1:3]) or (lines[0] if lines else type(exc).__name__)
    return LookaheadError(f"{where}: the weights do not fit the rebuilt predictor ({detail[:300]})")


def load_export(
    export_dir: Path, *, device: str | torch.device = "cpu", backbone: str | None = None
) -> tuple[Predictor, dict[str, Any]]:
    """Rebuild the predictor of an export and load its safetensors weights strictly; (predictor, router.json).

    Strictly but for the modules routing never runs (``network.routing_unused()``, the MLM head): an export written
    from a router loaded for routing has none, and the network then drops them too (``network.routing_only()``).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    meta = read_metadata(export_dir)
    weights = export_dir / str(meta.get("weights") or WEIGHTS_FILE)
    if not weights.is_file():
        raise LookaheadError(f"{export_dir}: weights file {weights.name} is missing")
    check_weights_file(weights, export_dir)  # before the backbone loads: a damaged file says so, in one line
    predictor = rebuild_predictor(meta, backbone=backbone, where=str(export_dir))
    _check_tokenizer(predictor, meta, export_dir)
    network = predictor.network
    try:
        missing, unexpected = load_model(network, str(weights), strict=False, device="cpu")
    except SafetensorError as exc:
        raise _corrupt(weights, exc, export_dir) from exc
    except RuntimeError as exc:
        raise _load_error(str(weights), exc) from exc
    optional = network.routing_unused() if callable(getattr(network, "routing_unused", None)) else ()
    absent = sorted(key for key in missing if not key.startswith(optional))
    if absent or unexpected:
        detail = "; ".join(
            f"{what} key(s) {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}"
            for what, keys in (("missing", absent), ("unexpected", sorted(unexpected)))
            if keys
        )
        raise LookaheadError(f"{weights}: the weights do not fit the rebuilt predictor ({detail[:300]})")
    if missing:  # only what routing never runs is absent: do not keep it freshly initialised
        network.routing_only()
    return _ready(predictor, device), meta


def _corrupt(weights: Path, exc: Exception, export_dir: Path) -> LookaheadError:
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    run_dir = export_dir.parent if export_dir.name == EXPORT_DIR else "RUN_DIR"
    return LookaheadError(
        f"{weights}: corrupt or truncated safetensors file ({detail}); re-export with `lookahead export {run_dir}`"
    )


def check_weights_file(weights: Path, export_dir: Path) -> None:
    """The safetensors header parses and the file holds every byte it announces (a truncated copy does not)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise _corrupt(weights, exc, export_dir) from exc


def _check_tokenizer(predictor: Predictor, meta: Mapping[str, Any], where: Path) -> None:
    """The rebuilt backbone's tokenizer must map tokens to the ids the weights were trained with."""
    saved = (meta.get("tokenizer") or {}).get("vocabulary_sha256")
    tokenizer = predictor.tokenizer
    if saved and tokenizer is not None and vocabulary_hash(tokenizer) != saved:
        raise LookaheadError(
            f"{where}: the tokenizer of backbone {getattr(predictor.config, 'backbone', None)!r} differs from the one "
            "this router was trained with (vocabulary hash mismatch); point it at the original backbone"
        )


def network_state(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's weights in a training checkpoint: keys under ``network.`` (checkpoints written before networks
    were separate modules hold the network's keys at the top level, and load as they are)."""
    prefix = "network."
    if any(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return dict(state_dict)


def load_checkpoint_file(ckpt: Path, *, device: str | torch.device = "cpu", backbone: str | None = None) -> Predictor:
    """A predictor from a Lightning checkpoint read with ``weights_only=True`` (tensors and plain containers only)."""
    if not ckpt.is_file():
        raise LookaheadError(f"checkpoint {ckpt} does not exist")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LookaheadError(
            f"{ckpt}: holds objects other than tensors and plain containers, refused by weights_only loading ({first})"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise LookaheadError(f"{ckpt}: not a readable PyTorch checkpoint ({exc})") from exc
    hparams = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hparams, dict) or "model" not in hparams or "candidates" not in hparams:
        raise LookaheadError(f"{ckpt}: not a lightning_lookahead router checkpoint (no model/candidates hparams)")
    if not isinstance(state.get("state_dict"), dict):
        raise LookaheadError(f"{ckpt}: no state_dict")
    predictor = rebuild_predictor(hparams, backbone=backbone, where=str(ckpt))
    try:
        predictor.network.load_state_dict(network_state(state["state_dict"]), strict=True)
    except RuntimeError as exc:
        raise _load_error(str(ckpt), exc) from exc
    return _ready(predictor, device)


def _ready(predictor: Predictor, device: str | torch.device) -> Predictor:
    try:
        predictor.network.to(torch.device(device))
    except (RuntimeError, AssertionError) as exc:
        raise LookaheadError(f"cannot move the router to device {device!r}: {exc}") from exc
    predictor.network.eval()
    predictor.network.requires_grad_(False)
    return predictor
