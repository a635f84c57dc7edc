"""Journals: append-only, locked JSON-lines files that let an interrupted command resume where it stopped.

:class:`AppendJournal` is the mechanism `lookahead data collect` and `lookahead data score` share: a header line
(what the work is, so a rerun with other settings is refused), then one line per finished piece of work, written
and flushed the moment it is done and fsync'd. A line cut short by a kill mid-write is dropped on the next open. A
lock stops two runs from writing the same journal at once, which would duplicate the work.

Each command keeps its own journal over it: the collector's (:mod:`lightning_lookahead.collect.journal`), one line
per finished (prompt, candidate) pair, and the scorer's (:mod:`lightning_lookahead.scorers.journal`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from lightning_lookahead.errors import DataError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]


class AppendJournal:
    """An open, locked journal; ``header`` and ``lines`` ((line number, object) pairs) are what earlier runs left.

    ``sync_every_s`` bounds how long an appended line may wait for its fsync (0: every line at once). Every line is
    flushed to the operating system as it is appended, so a killed process loses nothing either way; the fsync
    only matters when the machine itself goes down.
    """

    def __init__(
        self,
        path: Path,
        fh: IO[bytes],
        stamp: tuple[str, int],
        header: dict[str, Any] | None,
        lines: list[tuple[int, dict[str, Any]]],
        sync_every_s: float = 0.0,
    ) -> None:
        self.path = path
        self._fh = fh
        self._stamp = stamp
        self.header = header
        self.lines = lines
        self.sync_every_s = sync_every_s
        self._synced = time.monotonic()
        self._unsynced = False

    @classmethod
    def open(
        cls, path: Path, *, header_key: str, version: int, command: str, sync_every_s: float = 0.0
    ) -> AppendJournal:
        """Open (or create) and lock ``path``; ``command`` names the writer in errors (``data collect``).

        The header line carries ``header_key: version``; a file whose first line does not is refused.
        """
        fh = open(path, "a+b")  # noqa: SIM115 - held (and locked) for the whole run; closed by close()
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise DataError(path, f"another `lookahead {command}` is writing this journal") from None
            fh.seek(0)
            data = fh.read()
            complete = data[: data.rfind(b"\n") + 1]
            if len(complete) != len(data):  # torn last line
                fh.truncate(len(complete))
            header, lines = _parse(path, complete, header_key, version, command)
        except BaseException:
            fh.close()
            raise
        return cls(path, fh, (header_key, version), header, lines, sync_every_s)

    def start(self, header: dict[str, Any], lines: Iterable[dict[str, Any]] = ()) -> None:
        """Write the header and any seed lines to a new journal."""
        key, version = self._stamp
        self._write(b"".join(_encode(x) for x in [{key: version, **header}, *lines]), sync=True)
        self.header = dict(header)

    def append(self, obj: dict[str, Any]) -> None:
        self._write(_encode(obj), sync=False)

    def sync(self) -> None:
        if self._unsynced:
            os.fsync(self._fh.fileno())
            self._unsynced = False
            self._synced = time.monotonic()

    def close(self) -> None:
        try:
            if not self._fh.closed:
                self.sync()
        finally:
            self._fh.close()

    def _write(self, data: bytes, *, sync: bool) -> None:
        self._fh.write(data)
        self._fh.flush()
        self._unsynced = True
        if sync or time.monotonic() - self._synced >= self.sync_every_s:
            self.sync()


def _encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def _parse(
    path: Path, data: bytes, header_key: str, version: int, command: str
) -> tuple[dict[str, Any] | None, list[tuple[int, dict[str, Any]]]]:
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason}); delete it to start afresh") from None
    if not lines:
        return None, []
    header = _load(path, 1, lines[0])
    if header.pop(header_key, None) != version:
        raise DataError(path, f"not a `lookahead {command}` journal; delete it or choose another --out", line=1)
    return header, [(i, _load(path, i, text)) for i, text in enumerate(lines[1:], start=2)]


def _load(path: Path, line: int, text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON line ({exc.msg}); delete the journal to start afresh", line=line) from None
    if not isinstance(obj, dict):
        raise DataError(path, "expected a JSON object", line=line)
    return obj
