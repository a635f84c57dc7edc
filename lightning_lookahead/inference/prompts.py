"""Prompts for `lookahead route` from a file or stdin: one prompt per line, or JSON lines with a ``prompt`` key.

The format is decided once per input, from its first non-blank line: if that line is a JSON object, every line must be
one (JSON lines are how multi-line prompts are written); otherwise every non-blank line is a prompt as it stands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from lightning_lookahead.errors import DataError


def _json_object(line: str) -> dict | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def is_json_lines(first_line: str) -> bool:
    """Whether an input whose first non-blank line is ``first_line`` is JSON lines (else one prompt per line)."""
    return _json_object(first_line) is not None


def parse_prompt_line(line: str, json_lines: bool, where: str, lineno: int) -> str:
    """The prompt of one non-blank line (newline stripped); a bad JSON line is a ``where:lineno`` error."""
    if not json_lines:
        return line
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            where, f"invalid JSON ({exc.msg}); JSON-lines input needs one object per line", line=lineno
        ) from None
    if not isinstance(value, dict) or not isinstance(value.get("prompt"), str):
        raise DataError(where, 'expected an object with a string "prompt"', line=lineno)
    return value["prompt"]


def parse_prompts(lines: Iterable[str], where: str) -> list[str]:
    """Prompts in input order; blank lines are skipped; a bad JSON line is a ``where:line`` error."""
    numbered = [(i, line.rstrip("\r\n")) for i, line in enumerate(lines, start=1)]
    numbered = [(i, line) for i, line in numbered if line.strip()]
    if not numbered:
        return []
    json_lines = is_json_lines(numbered[0][1])
    return [parse_prompt_line(line, json_lines, where, i) for i, line in numbered]
