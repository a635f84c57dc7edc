"""The inference bundle: a self-contained router folder (``model.onnx``, ``tokenizer.json``, ``router.json``,
calibrations, ``README.md``) that routes with onnxruntime, tokenizers and numpy only.

Nothing in this package imports torch or transformers, so ``lookahead route`` / ``serve`` on a bundle start in about a
second. ``lookahead export RUN --format onnx`` writes a bundle (:mod:`lightning_lookahead.inference.bundle_export`);
docs/inference.md describes the folder.
"""

from __future__ import annotations

from lightning_lookahead.lazy import lazy_exports

_EXPORTS = {
    "BundleRouter": "lightning_lookahead.bundle.router",
    "RouteDecision": "lightning_lookahead.bundle.decisions",
    "is_bundle": "lightning_lookahead.bundle.layout",
    "resolve_router_path": "lightning_lookahead.bundle.hub",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
