"""The dataset rows `lookahead data score` reads and writes: JSON lines in, the same rows out, written atomically.

Only the fields scoring needs are checked (``id``, ``prompt``, ``responses``, and ``scores``, ``reference``,
``benchmark``/``domain`` when present); every other field passes through untouched, in its original order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl, write_atomic
from lightning_lookahead.errors import DataError

Row = dict[str, Any]


def read_rows(path: Path) -> list[Row]:
    """Every row of a JSON-lines dataset (blank lines skipped); the first malformed row raises :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "dataset file not found")
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for number, row in iter_jsonl(path):
        _check_row(path, number, row)
        key = str(row["id"])
        if key in seen:
            raise DataError(path, f"duplicated id {row['id']!r} (first on line {seen[key]})", line=number, key="id")
        seen[key] = number
        rows.append(row)
    if not rows:
        raise DataError(path, "the dataset has no rows")
    return rows


def write_rows(path: Path, rows: list[Row]) -> None:
    """Write the rows atomically (a temporary file and a rename): never half a file."""
    write_atomic(Path(path), "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _check_row(path: Path, line: int, row: Any) -> None:
    for key in ("id", "prompt", "responses"):
        if key not in row:
            raise DataError(path, f"missing field {key!r}", line=line, key=key)
    if isinstance(row["id"], bool) or not isinstance(row["id"], str | int):
        raise DataError(path, f"`id` must be a string or an integer, got {row['id']!r}", line=line, key="id")
    _check_prompt(path, line, row["prompt"])
    responses = row["responses"]
    if not isinstance(responses, dict):  # empty is fine: every request failed, nothing to score (kept as is)
        raise DataError(path, "`responses` must be a {candidate: text} object", line=line, key="responses")
    for name, text in responses.items():
        if text is not None and not isinstance(text, str):
            raise DataError(path, "a response must be a string or null", line=line, key=f"responses.{name}")
    scores = row.get("scores")
    if scores is not None and not isinstance(scores, dict):
        raise DataError(path, "`scores` must be a {candidate: number or null} object", line=line, key="scores")
    for name, value in (scores or {}).items():
        ok = value is None or (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value))
        if not ok:
            raise DataError(
                path, f"a score must be a finite number or null, got {value!r}", line=line, key=f"scores.{name}"
            )
    for key in ("reference", "benchmark", "domain"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise DataError(path, f"`{key}` must be a string or null", line=line, key=key)
    for key in ("score_errors", "score_details"):
        if row.get(key) is not None and not isinstance(row[key], dict):
            raise DataError(path, f"`{key}` must be a {{candidate: text}} object", line=line, key=key)


def _check_prompt(path: Path, line: int, prompt: Any) -> None:
    """A string, or a non-empty list of ``{"role": ..., "content": ...}`` messages."""
    if isinstance(prompt, str):
        return
    if not isinstance(prompt, list) or not prompt:
        raise DataError(path, "`prompt` must be a string or a non-empty list of messages", line=line, key="prompt")
    for i, message in enumerate(prompt):
        if not isinstance(message, dict) or "content" not in message or not isinstance(message.get("role", ""), str):
            raise DataError(path, 'each message must be {"role": ..., "content": ...}', line=line, key=f"prompt[{i}]")
