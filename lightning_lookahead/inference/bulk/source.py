"""The prompt log of a bulk run: one checking pass that finds where each shard starts, then shard-by-shard reads.

The pass reads the file once as bytes: it validates every line with the same rules as ``route`` (``prompts.py``:
the first non-blank line decides between JSON lines and one prompt per line), counts the prompts, hashes the bytes
(the resume manifest's identity of the input) and records where every shard of ``shard_size`` prompts starts. Any
process can then read just its shards, so no process holds the whole log. Lines split as Python's text mode splits
them (``\\n``, ``\\r\\n`` or a lone ``\\r``), so line numbers and prompts are ``route``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from lightning_lookahead.errors import DataError, LookaheadError
from lightning_lookahead.inference.prompts import is_json_lines, parse_prompt_line

#: Show the checking pass's bar only for inputs this large (bytes): smaller ones take well under a second.
_BAR_BYTES = 64 << 20


@dataclass(frozen=True)
class ShardStart:
    """Where a shard's first prompt is: the byte offset of its physical line, that line's number, and how many
    ``\\r``-separated pieces of it come before the prompt (0 unless the file has lone ``\\r`` line ends)."""

    offset: int
    line: int
    skip: int = 0


@dataclass(frozen=True)
class PromptLog:
    """A checked prompt file: its identity, format, size in prompts and where each shard starts."""

    path: Path
    size: int
    sha256: str
    json_lines: bool
    prompts: int
    shard_size: int
    starts: tuple[ShardStart, ...]

    @property
    def shards(self) -> int:
        return len(self.starts)

    def shard_range(self, shard: int) -> range:
        """The input indices (``prompt_index``) of ``shard``."""
        first = shard * self.shard_size
        return range(first, min(first + self.shard_size, self.prompts))


def _pieces(raw: bytes) -> list[bytes]:
    """The text-mode lines of one ``\\n``-terminated physical line, without their ends."""
    body = raw[:-1] if raw.endswith(b"\n") else raw
    body = body[:-1] if body.endswith(b"\r") else body
    return body.split(b"\r")


def _decode(raw: bytes, where: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(where, f"not UTF-8 text ({exc.reason})", line=lineno) from None


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except (FileNotFoundError, IsADirectoryError):
        raise LookaheadError(f"prompt file {path} not found") from None


def scan(path: Path, shard_size: int) -> PromptLog:
    """Check every line of ``path`` and index its shards; a bad line is a one-line ``file:line`` error."""
    if shard_size < 1:
        raise LookaheadError(f"--shard-size must be ≥ 1, got {shard_size}")
    path = Path(path)
    digest = hashlib.sha256()
    json_lines: bool | None = None
    starts: list[ShardStart] = []
    count, offset, lineno = 0, 0, 1
    with _open(path) as fh:
        total = path.stat().st_size
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=f"checking {path.name}", disable=total < _BAR_BYTES
        ) as bar:
            for raw in fh:
                digest.update(raw)
                for skip, piece in enumerate(_pieces(raw)):
                    text = _decode(piece, path, lineno + skip)
                    if not text.strip():
                        continue
                    if json_lines is None:
                        json_lines = is_json_lines(text)
                    parse_prompt_line(text, json_lines, str(path), lineno + skip)
                    if count % shard_size == 0:
                        starts.append(ShardStart(offset, lineno, skip))
                    count += 1
                lineno += len(_pieces(raw))
                offset += len(raw)
                bar.update(len(raw))
    return PromptLog(path, offset, digest.hexdigest(), bool(json_lines), count, shard_size, tuple(starts))


def _prompts_from(log: PromptLog, fh: BinaryIO, start: ShardStart) -> Iterator[str]:
    lineno, skip = start.line, start.skip
    for raw in fh:
        pieces = _pieces(raw)
        for k, piece in enumerate(pieces[skip:], start=skip):
            text = _decode(piece, log.path, lineno + k)
            if text.strip():
                yield parse_prompt_line(text, log.json_lines, str(log.path), lineno + k)
        lineno += len(pieces)
        skip = 0


def read_shard(log: PromptLog, shard: int) -> list[str]:
    """The prompts of ``shard``, read from where :func:`scan` found it starts."""
    start, want = log.starts[shard], len(log.shard_range(shard))
    prompts: list[str] = []
    with _open(log.path) as fh:
        fh.seek(start.offset)
        for prompt in _prompts_from(log, fh, start):
            prompts.append(prompt)
            if len(prompts) == want:
                break
    if len(prompts) != want:
        raise LookaheadError(f"{log.path} changed while it was being routed (shard {shard} came up short); rerun")
    return prompts
