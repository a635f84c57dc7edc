"""The model cache: directories derived from a model (a GGUF conversion, a warmed-up MLM head), built once.

A directory is built into a temporary sibling and renamed into place only when complete, under a file lock, so a
directory that exists is complete and two processes building the same one at once share one result (the second
waits, then reuses it). Completeness is a marker file the builder writes last.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from lightning_lookahead.errors import LookaheadError

#: Environment variable naming the folder that holds converted models.
CACHE_ENV = "LOOKAHEAD_MODEL_CACHE"
DEFAULT_CACHE = Path("~/.cache/lightning_lookahead/models")


def model_cache_root() -> Path:
    """``$LOOKAHEAD_MODEL_CACHE`` or ``~/.cache/lightning_lookahead/models``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def is_built(directory: Path, marker: str) -> bool:
    """True for a complete directory: the marker is written last, inside the renamed directory."""
    return (directory / marker).is_file() and (directory / "config.json").is_file()


def build_once(target: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """``target``, calling ``build(tmp)`` first if it is not complete yet (``build`` writes ``marker`` last)."""
    if is_built(target, marker):
        return target
    root = target.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LookaheadError(f"cannot create the model cache {str(root)!r} (set {CACHE_ENV}): {exc}") from exc
    from filelock import FileLock

    with FileLock(str(root / f".{target.name}.lock")):
        if is_built(target, marker):  # another process finished while we waited
            return target
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            if target.exists():  # an incomplete leftover (no marker): replace it
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp, ignore_errors=True)
    return target
