"""The collector's journal: one fsync'd line per finished (prompt, candidate) pair, so `data collect` resumes.

It is an :class:`~lightning_lookahead.data.journal.AppendJournal` (header, locked, torn lines dropped) whose lines are
:class:`Record` objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_lookahead.collect.outcome import Outcome
from lightning_lookahead.data.journal import AppendJournal
from lightning_lookahead.errors import DataError

HEADER_KEY = "lookahead_collect_journal"
VERSION = 1


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.jsonl")


@dataclass(frozen=True)
class Record:
    """One collector journal line: which pair, the hash of the prompt it answered, and the outcome."""

    id: str
    candidate: str
    digest: str
    outcome: Outcome
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "candidate": self.candidate, "prompt_sha256": self.digest, **self.outcome.to_json()}


class Journal:
    """The collector's open, locked journal; ``header`` and ``records`` are what earlier runs left (None/[] when new).

    Every line is fsync'd as it is written.
    """

    def __init__(self, lines: AppendJournal, records: list[Record]):
        self._journal = lines
        self.path = lines.path
        self.records = records

    @property
    def header(self) -> dict[str, Any] | None:
        return self._journal.header

    @classmethod
    def open(cls, path: Path) -> Journal:
        lines = AppendJournal.open(path, header_key=HEADER_KEY, version=VERSION, command="data collect")
        try:
            records = [_record(path, i, obj) for i, obj in lines.lines]
        except BaseException:
            lines.close()
            raise
        return cls(lines, records)

    def start(self, header: dict[str, Any], seed: list[Record]) -> None:
        """Write the header (and answers carried over from an earlier output) to a new journal."""
        self._journal.start(header, (r.to_json() for r in seed))

    def append(self, record: Record) -> None:
        self._journal.append(record.to_json())

    def close(self) -> None:
        self._journal.close()


def _record(path: Path, line: int, obj: dict[str, Any]) -> Record:
    try:
        outcome = Outcome.from_json(obj)
        return Record(str(obj["id"]), str(obj["candidate"]), str(obj["prompt_sha256"]), outcome, line)
    except (KeyError, ValueError) as exc:
        raise DataError(path, f"malformed journal line ({exc}); delete it to start afresh", line=line) from None
