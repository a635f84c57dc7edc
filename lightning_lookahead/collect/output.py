"""The finished dataset file, written whole or not at all (temporary file, fsync, rename)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.collect.outcome import Outcome
from lightning_lookahead.collect.prompts import PromptRow


def output_row(row: PromptRow, candidates: Sequence[str], done: dict[tuple[str, str], Outcome]) -> dict[str, Any]:
    """The input fields plus ``responses``, ``tokens`` and, only for candidates that failed, ``errors``."""
    outcomes = [(c, done[(row.id, c)]) for c in candidates if (row.id, c) in done]
    result = {
        **row.fields,
        "responses": {c: o.response for c, o in outcomes if o.ok},
        "tokens": {c: o.tokens for c, o in outcomes if o.ok},
    }
    errors = {c: o.error for c, o in outcomes if not o.ok}
    if errors:
        result["errors"] = errors
    return result


def write_atomically(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Replace ``path`` by the JSON lines of ``rows`` so that a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
