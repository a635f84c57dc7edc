"""The candidate names a backends file lists, in file order: the default candidates of a collection."""

from __future__ import annotations

from pathlib import Path

import yaml

from lightning_lookahead.backends import load_backends
from lightning_lookahead.errors import DataError


def listed_candidates(path: str | Path) -> list[str]:
    """Every name under ``backends:``; the file's shape is checked by :func:`load_backends` first."""
    path = Path(path)
    load_backends(path, [])
    names = [str(name) for name in yaml.safe_load(path.read_text(encoding="utf-8"))["backends"]]
    if not names:
        raise DataError(path, "no backends listed", key="backends")
    return names
