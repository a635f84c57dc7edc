"""The journal of `lookahead data score`: one line per scored (row, candidate), so an interrupted run resumes.

It sits beside the output (``OUT.scores.partial.jsonl``) and uses the collector's journal mechanism
(:class:`~lightning_lookahead.data.journal.AppendJournal`): a header naming the scorer, then one JSON line per
result, written and flushed the moment the scorer gives it (fsync'd at least every :data:`SYNC_EVERY_S` seconds),
locked against a second run. A rerun of the same command reuses every journaled score whose item is unchanged
(the hash of prompt, response, reference and domain) and scores only the rest; a null score is tried again, as a
rerun over a finished file would. A journal written by another scorer is refused rather than mixing two graders'
scores in one file. The journal is removed once the output is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lightning_lookahead.data.journal import AppendJournal
from lightning_lookahead.errors import DataError
from lightning_lookahead.scorers.base import ScoreItem, ScoreResult

HEADER_KEY = "lookahead_score_journal"
VERSION = 1
#: The longest a journaled score waits for its fsync (it is flushed to the operating system at once).
SYNC_EVERY_S = 0.5


def score_journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".scores.partial.jsonl")


def item_digest(item: ScoreItem) -> str:
    """What a score depends on in its row: the prompt, the response, the reference and the domain."""
    content = [item.prompt, item.response, item.reference, item.domain]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


class ScoreJournal:
    """An open, locked score journal: the results of earlier runs by (row id, candidate), and appends."""

    def __init__(self, journal: AppendJournal, earlier: dict[tuple[str, str], tuple[str, ScoreResult]]) -> None:
        self._journal = journal
        self.path = journal.path
        self._earlier = earlier
        self.appended = 0

    @classmethod
    def open(cls, path: Path, scorer: str, dataset: Path) -> ScoreJournal:
        """Open ``path`` for ``scorer``: resume its results, or start it; a journal of another scorer is refused."""
        journal = AppendJournal.open(
            path, header_key=HEADER_KEY, version=VERSION, command="data score", sync_every_s=SYNC_EVERY_S
        )
        try:
            if journal.header is None:
                journal.start({"scorer": scorer, "dataset": str(dataset)})
                return cls(journal, {})
            earlier_scorer = journal.header.get("scorer")
            if earlier_scorer != scorer:
                raise DataError(
                    path,
                    f"holds the scores of {earlier_scorer!r}, this run scores with {scorer!r}; rerun with the same "
                    "--scorer to resume, or delete the journal to start afresh",
                    line=1,
                    key="scorer",
                )
            earlier = dict(_entry(path, line, obj) for line, obj in journal.lines)
        except BaseException:
            journal.close()
            raise
        return cls(journal, earlier)

    @property
    def holds_results(self) -> bool:
        return bool(self._earlier) or self.appended > 0

    def earlier(self, item: ScoreItem) -> ScoreResult | None:
        """The journaled score of this exact item, or None (never scored, changed since, or a null score)."""
        found = self._earlier.get((item.row_id, item.candidate))
        if found is None or found[0] != item_digest(item) or found[1].value is None:
            return None
        return found[1]

    def append(self, item: ScoreItem, result: ScoreResult) -> None:
        self._journal.append(
            {
                "id": item.row_id,
                "candidate": item.candidate,
                "item_sha256": item_digest(item),
                "value": result.value,
                "error": result.error,
                "detail": result.detail,
            }
        )
        self.appended += 1

    def close(self) -> None:
        self._journal.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _entry(path: Path, line: int, obj: dict[str, Any]) -> tuple[tuple[str, str], tuple[str, ScoreResult]]:
    try:
        value = obj["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"score {value!r} is not a number")
        result = ScoreResult(value, _text(obj.get("error")), _text(obj.get("detail")))
        return (str(obj["id"]), str(obj["candidate"])), (str(obj["item_sha256"]), result)
    except (KeyError, ValueError) as exc:
        raise DataError(path, f"malformed journal line ({exc}); delete it to start afresh", line=line) from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
