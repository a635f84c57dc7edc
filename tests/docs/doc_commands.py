"""The command blocks of the docs that tests run as written.

A fenced block is *marked* by an HTML comment on the line right before its opening fence:
``<!-- tested: tests/docs/test_x.py -->`` (a test runs every command in it) or ``<!-- not tested: why -->`` (the
reason, shown to readers too). :func:`commands` turns a shell block into argv lists the way a shell reads it: lines
continued with a trailing backslash are joined, ``# comments`` are dropped, words are split with :mod:`shlex`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_MARKER = re.compile(r"^<!--\s*(tested|not tested):\s*(.*?)\s*-->\s*$")
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file: its language, text, 1-based line of the fence and its marker."""

    path: Path
    line: int
    lang: str
    text: str
    marker: str | None  # "tested", "not tested" or None
    note: str  # the tested marker's test file, or the not-tested reason

    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` in order, with the marker on the line before its fence (if any)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{path}:{i + 1}: fenced block never closed"
        marker = _MARKER.match(lines[i - 1]) if i else None
        out.append(
            Block(
                path=path,
                line=i + 1,
                lang=fence.group(1),
                text="\n".join(lines[i + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
                note=marker.group(2) if marker else "",
            )
        )
        i = end + 1
    return out


def marked(path: Path, test_file: str) -> list[Block]:
    """The blocks of ``path`` marked ``tested: <test_file>`` (``test_file`` relative to the repository)."""
    return [b for b in blocks(path) if b.marker == "tested" and b.note == test_file]


def commands(block: Block, programs: tuple[str, ...] = ("lookahead",)) -> list[list[str]]:
    """The argv of every command of a shell block; each must start with one of ``programs``."""
    assert block.lang in ("bash", "sh", "shell"), f"{block.where()}: a {block.lang or 'plain'} block is not commands"
    joined = re.sub(r"\\\n", " ", block.text)
    argvs = [shlex.split(line, comments=True) for line in joined.splitlines()]
    argvs = [argv for argv in argvs if argv]
    for argv in argvs:
        assert argv[0] in programs, f"{block.where()}: {shlex.join(argv)!r} does not start with {' or '.join(programs)}"
    return argvs
