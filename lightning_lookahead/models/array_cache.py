"""Numpy arrays cached on disk (embeddings, reward scores): read if whole and well-shaped, written atomically.

A cache only saves time, so an unreadable or unwritable file is a warning, never an error.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def read_array(path: Path | None, what: str, fits: Callable[[np.ndarray], bool]) -> np.ndarray | None:
    """The cached array at ``path`` if it loads and ``fits``; None otherwise (``what`` names it in the warning)."""
    if path is None or not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s cache file %s (%s)", what, path, exc)
        return None
    return array if fits(array) else None


def write_array(path: Path | None, array: np.ndarray, what: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    if path is None:
        return
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not cache %s in %s (%s)", what, path.parent, exc)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
