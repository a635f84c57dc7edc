"""The journal next to the output: one fsync'd JSON line per finished (prompt, candidate) pair.

It is the only state a resumed run needs, so an interrupted collection (Ctrl-C, a kill, a crash) loses no answer
that was already received. A line cut short by a kill mid-write is dropped on the next open. A lock stops two
collections from writing the same journal at once, which would duplicate requests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lightning_lookahead.collect.outcome import Outcome
from lightning_lookahead.errors import DataError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

HEADER_KEY = "lookahead_collect_journal"
VERSION = 1


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.jsonl")


@dataclass(frozen=True)
class Record:
    """One journal line: which pair, the hash of the prompt it answered, and the outcome."""

    id: str
    candidate: str
    digest: str
    outcome: Outcome
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "candidate": self.candidate, "prompt_sha256": self.digest, **self.outcome.to_json()}


class Journal:
    """An open, locked journal; ``header`` and ``records`` are what earlier runs left (None/[] when new)."""

    def __init__(self, path: Path, fh: IO[bytes], header: dict[str, Any] | None, records: list[Record]):
        self.path = path
        self._fh = fh
        self.header = header
        self.records = records

    @classmethod
    def open(cls, path: Path) -> Journal:
        fh = open(path, "a+b")  # noqa: SIM115 - held (and locked) for the whole run; closed by close()
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise DataError(path, "another `lookahead data collect` is writing this journal") from None
            fh.seek(0)
            data = fh.read()
            complete = data[: data.rfind(b"\n") + 1]
            if len(complete) != len(data):  # torn last line
                fh.truncate(len(complete))
            header, records = _parse(path, complete)
        except BaseException:
            fh.close()
            raise
        return cls(path, fh, header, records)

    def start(self, header: dict[str, Any], seed: list[Record]) -> None:
        """Write the header (and answers carried over from an earlier output) to a new journal."""
        lines = [{HEADER_KEY: VERSION, **header}, *(r.to_json() for r in seed)]
        self._write(b"".join(_encode(x) for x in lines))
        self.header = header

    def append(self, record: Record) -> None:
        self._write(_encode(record.to_json()))

    def close(self) -> None:
        self._fh.close()

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())


def _encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def _parse(path: Path, data: bytes) -> tuple[dict[str, Any] | None, list[Record]]:
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason}); delete it to start afresh") from None
    if not lines:
        return None, []
    header = _load(path, 1, lines[0])
    if header.pop(HEADER_KEY, None) != VERSION:
        raise DataError(path, "not a `lookahead data collect` journal; delete it or choose another --out", line=1)
    records = []
    for i, text in enumerate(lines[1:], start=2):
        obj = _load(path, i, text)
        try:
            outcome = Outcome.from_json(obj)
            record = Record(str(obj["id"]), str(obj["candidate"]), str(obj["prompt_sha256"]), outcome, i)
        except (KeyError, ValueError) as exc:
            raise DataError(path, f"malformed journal line ({exc}); delete it to start afresh", line=i) from None
        records.append(record)
    return header, records


def _load(path: Path, line: int, text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON line ({exc.msg}); delete the journal to start afresh", line=line) from None
    if not isinstance(obj, dict):
        raise DataError(path, "expected a JSON object", line=line)
    return obj
