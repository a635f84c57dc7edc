"""Replace one generated section of a Markdown file, between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

The study scripts write their tables into docs/results.md this way, so the hand-written reading around a table stays
and a rerun only refreshes the numbers.
"""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, name: str, section: str) -> bool:
    """Put ``section`` between the file's ``name`` markers; False (file untouched) when a marker is missing."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{section.rstrip()}\n{end}{tail}", encoding="utf-8")
    return True
