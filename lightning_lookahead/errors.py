"""One exception type for every user-facing failure.

The CLI turns a :class:`LookaheadError` into a single line on stderr and a non-zero exit, so
every message must name the file (and line or key) and say what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class LookaheadError(Exception):
    """A failure the user can fix: bad input, missing data, unknown name."""


class DataError(LookaheadError):
    """Malformed or missing data, located by file and, where it applies, line or key."""

    def __init__(self, path: str | Path, problem: str, *, line: int | None = None, key: str | None = None):
        where = str(path)
        if line is not None:
            where += f":{line}"
        if key is not None:
            where += f" [{key}]"
        super().__init__(f"{where}: {problem}")
        self.path = Path(path)
        self.line = line
        self.key = key


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The most similar valid name, for 'did you mean' hints."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        return lowered.get(name.lower())
    return matches[0]


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> LookaheadError:
    """An error for an unknown model/benchmark/router name that suggests the closest valid one."""
    choices = list(choices)
    hint = closest(name, choices)
    suggestion = f"; did you mean {hint!r}?" if hint else ""
    return LookaheadError(f"unknown {kind} {name!r}{suggestion} (valid: {', '.join(choices)})")
