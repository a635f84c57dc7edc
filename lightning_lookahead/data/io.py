"""Reading JSON, JSON-lines and CSV files, plain or gzipped, with located errors.

A data directory holds decompressed files after ``lookahead data fetch``; the mirror holds ``.gz``
files. :func:`resolve` accepts either so readers work on both.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lightning_lookahead.errors import DataError


def resolve(path: Path) -> Path:
    """``path`` if it exists, else ``path.gz``; a clear error when neither does."""
    if path.exists():
        return path
    gz = path.with_name(path.name + ".gz")
    if gz.exists():
        return gz
    raise DataError(path, "file not found (run `lookahead data fetch` to get the benchmark data)")


def open_text(path: Path) -> IO[str]:
    """Open a plain or gzipped text file (decided by content, not by name)."""
    path = resolve(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def read_text(path: Path) -> str:
    """The whole text of a file, turning gzip corruption into a located error."""
    real = resolve(path)
    try:
        with open_text(real) as fh:
            return fh.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(real, f"corrupt or truncated gzip file ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(real, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_json(path: Path) -> Any:
    """Parse a whole JSON document."""
    real = resolve(path)
    text = read_text(real)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(real, f"invalid JSON ({exc.msg})", line=exc.lineno) from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON-lines file."""
    real = resolve(path)
    for lineno, line in enumerate(read_text(real).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(real, f"invalid JSON line ({exc.msg})", line=lineno) from None
        if not isinstance(obj, dict):
            raise DataError(real, f"expected a JSON object, got {type(obj).__name__}", line=lineno)
        yield lineno, obj


def require(obj: dict[str, Any], key: str, path: Path, *, line: int | None = None, kind: type | None = None) -> Any:
    """``obj[key]``, or a located error naming the missing/mistyped field."""
    if key not in obj:
        raise DataError(path, f"missing field {key!r}", line=line, key=key)
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        raise DataError(
            path, f"field {key!r} should be {kind.__name__}, got {type(value).__name__}", line=line, key=key
        )
    return value


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a failure never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def replace_folder(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out``, replacing what was there: a reader sees the old folder or the new
    one whole, never a half-written one (the exports' and bundles' last step)."""
    import shutil

    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
