"""What a bundle folder holds and how its ``router.json`` is checked before anything loads.

A bundle is recognised by its ``router.json`` (``"format": "lightning-lookahead-bundle"``) or, when that file is
missing, by a ``model.onnx`` beside it, so that a damaged bundle is reported as a damaged bundle and not as "no
router here".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_lookahead.errors import DataError

BUNDLE_FORMAT = "lightning-lookahead-bundle"
#: Bump when a reader of an older version could not use the folder; a newer bundle is refused with one line.
BUNDLE_VERSION = 1
META_FILE = "router.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "README.md"
CALIBRATIONS_FILE = "calibrations.json"
#: Files every bundle must hold (calibrations are optional: a run may have none).
REQUIRED_FILES: tuple[str, ...] = (META_FILE, MODEL_FILE, TOKENIZER_FILE)
#: Predictor kinds whose inputs the numpy input builders express (CLM's (B, T, T) masks cannot be).
BUNDLE_KINDS: tuple[str, ...] = ("mlm", "mlc", "routerdc")


def vocabulary_hash(vocab: Mapping[str, int]) -> str:
    """sha256 of the token → id mapping in id order (added tokens included), as ``inference.export`` records it."""
    ordered = sorted(vocab.items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(ordered, ensure_ascii=False).encode("utf-8")).hexdigest()


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a bundle folder (possibly a damaged one): no model is loaded, nothing heavy imported."""
    p = Path(path)
    if not p.is_dir():
        return False
    meta = p / META_FILE
    if meta.is_file():
        try:
            return json.loads(meta.read_text(encoding="utf-8")).get("format") == BUNDLE_FORMAT
        except (ValueError, UnicodeDecodeError, AttributeError):
            return (p / MODEL_FILE).is_file()
    return (p / MODEL_FILE).is_file()


def read_bundle_meta(folder: Path) -> dict[str, Any]:
    """``router.json`` of a bundle, checked: every file present, format and version readable, keys there."""
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise DataError(
                folder / name, "missing; the bundle is incomplete (re-run `lookahead export --format onnx`)"
            )
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise DataError(path, f"not a router bundle (format != {BUNDLE_FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise DataError(path, "format_version must be an integer", key="format_version")
    if version > BUNDLE_VERSION:
        raise DataError(
            path,
            f"bundle format {version} is newer than this package reads ({BUNDLE_VERSION}); upgrade lightning_lookahead",
        )
    for key in ("kind", "candidates", "inputs", "input_builder", "tokenizer"):
        if key not in meta:
            raise DataError(path, "missing", key=key)
    if meta["kind"] not in BUNDLE_KINDS:
        raise DataError(
            path, f"kind {meta['kind']!r} has no numpy input builder ({', '.join(BUNDLE_KINDS)})", key="kind"
        )
    candidates = meta["candidates"]
    if not isinstance(candidates, list) or not candidates or not all(isinstance(c, str) for c in candidates):
        raise DataError(path, "expected a non-empty list of candidate names", key="candidates")
    return meta
