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


def parse_prompts(lines: Iterable[str], where: str) -> list[str]:
    """Prompts in input order; blank lines are skipped; a bad JSON line is a ``where:line`` error."""
    numbered = [(i, line.rstrip("\r\n")) for i, line in enumerate(lines, start=1)]
    numbered = [(i, line) for i, line in numbered if line.strip()]
    if not numbered:
        return []
    if _json_object(numbered[0][1]) is None:
        return [line for _, line in numbered]
    prompts = []
    for i, line in numbered:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                where, f"invalid JSON ({exc.msg}); JSON-lines input needs one object per line", line=i
            ) from None
        if not isinstance(value, dict) or not isinstance(value.get("prompt"), str):
            raise DataError(where, 'expected an object with a string "prompt"', line=i)
        prompts.append(value["prompt"])
    return prompts
