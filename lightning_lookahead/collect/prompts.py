"""The prompts to collect answers for, checked in full before any request is sent or any file written.

JSON lines with a ``prompt`` (a string or an OpenAI-style message list), an optional ``id`` and any other fields,
which travel to the output unchanged; or a ``.txt`` file with one prompt per line. A prompt is checked by the same
rules as the dataset reader, so everything collected can be read back as a dataset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_lookahead.data.dataset_file import prompt_text
from lightning_lookahead.data.io import iter_jsonl, read_text
from lightning_lookahead.errors import DataError

#: Output fields the collector writes; an input row must not bring its own.
RESERVED_FIELDS = ("responses", "tokens", "errors")


@dataclass(frozen=True)
class PromptRow:
    """One input row: its id, where it came from, the fields carried to the output and what is sent."""

    id: str
    line: int
    fields: dict[str, Any]
    messages: list[dict[str, Any]]
    digest: str


@dataclass(frozen=True)
class Prompts:
    """The rows of one prompts file, in file order."""

    path: Path
    rows: list[PromptRow]


def prompt_digest(prompt: Any) -> str:
    """A short hash of a prompt, recorded with each answer so a resumed run can tell that the prompt changed."""
    canonical = json.dumps(prompt, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def load_prompts(path: str | Path) -> Prompts:
    """Every row of ``path`` in file order; the first bad row raises a :class:`DataError` naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "prompts file not found")
    rows = _text_rows(path) if path.suffix == ".txt" else iter_jsonl(path)
    out: list[PromptRow] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        out.append(_row(path, line, row, seen))
    if not out:
        raise DataError(path, "the prompts file has no rows")
    return Prompts(path, out)


def _text_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Plain text: one prompt per non-blank line."""
    lines = read_text(path).splitlines()
    return [(i, {"prompt": text}) for i, text in enumerate(lines, start=1) if text.strip()]


def _row(path: Path, line: int, row: dict[str, Any], seen: dict[str, int]) -> PromptRow:
    if "prompt" not in row or row["prompt"] is None:
        raise DataError(path, "missing field 'prompt'", line=line, key="prompt")
    prompt = row["prompt"]
    prompt_text(prompt, (path, line))  # same rules as the dataset reader
    for name in RESERVED_FIELDS:
        if name in row:
            raise DataError(path, f"field {name!r} is written by the collector; remove it", line=line, key=name)
    raw_id = row.get("id", f"p{line}")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
        raise DataError(path, f"'id' must be a non-empty string or an integer, got {raw_id!r}", line=line, key="id")
    rid = str(raw_id)
    if rid in seen:
        raise DataError(path, f"duplicate id {rid!r} (first on line {seen[rid]})", line=line, key="id")
    seen[rid] = line
    fields = {"id": raw_id, **{k: v for k, v in row.items() if k != "id"}}
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return PromptRow(rid, line, fields, messages, prompt_digest(prompt))
