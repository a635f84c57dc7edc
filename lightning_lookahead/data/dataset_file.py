"""A user's own routing dataset: any candidates, any names, one prompt per row (docs/data.md, "Your own dataset").

JSON lines (``.jsonl`` / ``.json``, plain or ``.gz``) are read line by line so every error names its line; Parquet
files and ``datasets`` folders (``save_to_disk``) go through ``datasets``. A row::

    {"id": "q1", "prompt": "..." | [{"role": "user", "content": "..."}], "responses": {"a": "...", "b": "..."},
     "scores": {"a": 7, "b": 3}, "domain": "math", "split": "train", "reference": "42",
     "tokens": {"a": {"prompt": 12, "completion": 80}}, "cost": {"a": 0.0004}}

Rows whose candidates all score the same carry no routing signal and are dropped, as the paper does; rows where
a candidate has no response or no score yet (a failed collection, an unscored verdict) are dropped too, counted
per candidate (``no response from coder-7b``). A row with no response at all (``responses: {}``, every request
failed) is such a drop, not an error. Every drop is counted, never silent.

A row's ``split`` is ``train``, ``val`` or ``test``; ``validation`` (what ``datasets`` calls it), ``valid`` and
``dev`` mean ``val``, in any case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl
from lightning_lookahead.data.schema import PROMPT_TOKENS_KEY, RESPONSE_TOKENS_KEY, RoutingExample, check_score
from lightning_lookahead.errors import DataError, LookaheadError

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Other names a file may give a split (lower-cased before the look-up).
SPLIT_ALIASES: dict[str, str] = {"validation": "val", "valid": "val", "dev": "val"}
#: The collector's field naming the candidates whose request failed (they belong to the pool all the same).
COLLECT_ERRORS = "errors"
#: The domain of rows that name none (a table column and a test benchmark of its own).
DEFAULT_DOMAIN = "default"
_ROLES = ("system", "user", "assistant", "tool", "developer")


@dataclass
class DatasetFile:
    """The usable rows of a dataset file as routing examples, with their split and what was dropped."""

    path: Path
    candidates: tuple[str, ...]
    examples: list[RoutingExample]
    splits: list[str | None]
    rows: int
    #: Dropped rows per reason; a row missing several candidates' responses (or scores) counts under each.
    dropped: Counter = field(default_factory=Counter)
    #: How many rows were dropped (each once, whatever its reasons).
    dropped_rows: int = 0
    #: How many of those lack a candidate's response or score (an incomplete collection or scoring, not a tie).
    incomplete_rows: int = 0

    def by_split(self) -> dict[str | None, int]:
        return dict(Counter(self.splits))

    def drop_text(self) -> str:
        """``5 of 12 rows: 4 no response from a, 1 where every candidate scores the same`` (or ``none``)."""
        if not self.dropped_rows:
            return "none"
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.dropped.items()))
        several = self.dropped.total() > self.dropped_rows
        several_text = " (a row missing several candidates counts under each)" if several else ""
        return f"{self.dropped_rows} of {self.rows} rows: {reasons}{several_text}"

    def summary(self) -> str:
        """The lines `lookahead data check --dataset` prints."""
        counts = self.by_split()
        split_text = ", ".join(f"{name or 'unassigned'} {n}" for name, n in sorted(counts.items(), key=str))
        domains = Counter(e.benchmark for e in self.examples)
        return "\n".join(
            [
                f"{self.path}: {self.rows} rows, {len(self.candidates)} candidates: {', '.join(self.candidates)}",
                f"usable rows by split: {split_text or 'none'}",
                f"domains: {', '.join(f'{d} {n}' for d, n in sorted(domains.items())) or 'none'}",
                f"dropped: {self.drop_text()}",
            ]
        )


def prompt_text(prompt: Any, where: tuple[Path, int | None]) -> str:
    """The text a router reads: the prompt string, or the first user turn of a message list (as ``serve``)."""
    path, line = where
    if isinstance(prompt, str):
        if not prompt.strip():
            raise DataError(path, "field 'prompt' is empty", line=line, key="prompt")
        return prompt
    if not isinstance(prompt, list) or not prompt:
        raise DataError(
            path, "field 'prompt' must be a string or a non-empty list of messages", line=line, key="prompt"
        )
    for i, message in enumerate(prompt):
        ok = isinstance(message, dict) and message.get("role") in _ROLES and isinstance(message.get("content"), str)
        if not ok:
            raise DataError(
                path, f"message {i} must be {{'role': one of {', '.join(_ROLES)}, 'content': text}}", line=line,
                key="prompt",
            )  # fmt: skip
    users = [m["content"] for m in prompt if m["role"] == "user" and m["content"].strip()]
    if not users:
        raise DataError(path, "the message list has no user turn with text", line=line, key="prompt")
    return users[0]


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) from JSON lines, Parquet or a ``datasets`` folder."""
    if path.is_dir() or path.suffix == ".parquet":
        import datasets

        try:
            data = datasets.load_from_disk(str(path)) if path.is_dir() else datasets.Dataset.from_parquet(str(path))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise DataError(path, f"not a readable datasets folder or Parquet file ({exc})") from None
        if isinstance(data, datasets.DatasetDict):
            raise DataError(path, "a DatasetDict: save one split table, and name the split in a 'split' column")
        for i, row in enumerate(data, start=1):
            yield i, dict(row)
        return
    if not path.is_file():
        raise LookaheadError(f"data.dataset {str(path)!r}: file not found")
    yield from iter_jsonl(path)


def _responses(row: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    """The row's ``responses`` mapping; empty is allowed (a row whose every request failed: a counted drop)."""
    value = row.get("responses")
    if not isinstance(value, dict):
        raise DataError(path, "field 'responses' must be a mapping of candidate → text", line=line, key="responses")
    return value


def _named(row: dict[str, Any], path: Path, line: int) -> list[str]:
    """The candidates a row names: its responses, then those the collector records as failed (``errors``)."""
    errors = row.get(COLLECT_ERRORS)
    failed = list(errors) if isinstance(errors, dict) else []
    return [str(name) for name in (*_responses(row, path, line), *failed)]


def _split(value: Any, path: Path, line: int) -> str | None:
    """``train``, ``val`` or ``test`` (aliases and case folded), None when the row names no split."""
    if value is None:
        return None
    name = value.strip().lower() if isinstance(value, str) else value
    name = SPLIT_ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in SPLITS:
        allowed = f"train, val ({', '.join(SPLIT_ALIASES)} mean val), test"
        raise DataError(path, f"split {value!r} is not one of {allowed}", line=line, key="split")
    return name


def _token_extras(tokens: Any, names: Sequence[str], path: Path, line: int) -> dict[str, Any]:
    """``tokens: {candidate: {prompt, completion}}`` as the counts the cost sweep reads (costs/token_counts.py)."""
    if tokens is None:
        return {}
    if not isinstance(tokens, dict):
        raise DataError(path, "field 'tokens' must map candidate → {prompt, completion}", line=line, key="tokens")
    completion, prompt = [], None
    for name in names:
        entry = tokens.get(name) or {}
        if not isinstance(entry, dict):
            raise DataError(path, "expected {prompt: n, completion: m}", line=line, key=f"tokens.{name}")
        value = entry.get("completion")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DataError(path, f"completion tokens must be a count, got {value!r}", line=line, key=f"tokens.{name}")
        completion.append(value)
        prompt = prompt if prompt is not None else entry.get("prompt")
    out: dict[str, Any] = {RESPONSE_TOKENS_KEY: completion}
    if isinstance(prompt, int) and not isinstance(prompt, bool):
        out[PROMPT_TOKENS_KEY] = prompt
    return out


def read_dataset(path: str | Path, candidates: Sequence[str] | None = None) -> DatasetFile:
    """Check every row and return the usable ones; the first bad row raises a located :class:`DataError`.

    ``candidates`` selects (and orders) a subset; by default the pool is every candidate the file names in a
    ``responses`` (or, for a failed request, the collector's ``errors``), in the order the file first names them.
    """
    path = Path(path)
    raw = list(_rows(path))
    if not raw:
        raise DataError(path, "the dataset has no rows")
    names: list[str] = []
    for line, row in raw:
        if not isinstance(row, dict):
            raise DataError(path, "expected a JSON object", line=line)
        for name in _named(row, path, line):
            if name not in names:
                names.append(name)
    if candidates is not None:
        missing = [c for c in candidates if c not in names]
        if missing:
            raise LookaheadError(f"{path}: candidates {missing} are not in the file (it has {names})")
        names = list(candidates)
    if len(names) < 2:
        raise LookaheadError(f"{path}: a router needs at least 2 candidates, the file has {names}")

    out = DatasetFile(path=path, candidates=tuple(names), examples=[], splits=[], rows=len(raw))
    seen: dict[str, int] = {}
    for line, row in raw:
        where = (path, line)
        prompt = prompt_text(row.get("prompt"), where)
        rid = str(row.get("id", f"row-{line}"))
        if rid in seen:
            raise DataError(path, f"duplicate id {rid!r} (first on line {seen[rid]})", line=line, key="id")
        seen[rid] = line
        split = _split(row.get("split"), path, line)
        domain = row.get("domain", row.get("benchmark")) or DEFAULT_DOMAIN
        if not isinstance(domain, str):
            raise DataError(path, f"domain must be a string, got {domain!r}", line=line, key="domain")
        responses = _responses(row, path, line)
        scores = row.get("scores") or {}
        if not isinstance(scores, dict):
            raise DataError(path, "field 'scores' must be a mapping of candidate → number", line=line, key="scores")
        for name, text in responses.items():
            if text is not None and not isinstance(text, str):
                raise DataError(path, f"response of {name!r} must be text", line=line, key=f"responses.{name}")
        missing = [f"no response from {c}" for c in names if responses.get(c) is None]
        missing = missing or [f"no score for {c}" for c in names if scores.get(c) is None]
        if missing:
            out.dropped.update(missing)
            out.dropped_rows += 1
            out.incomplete_rows += 1
            continue
        values = tuple(check_score(scores[c], str(path), line=line, key=f"scores.{c}") for c in names)
        if len(set(values)) == 1:
            out.dropped["where every candidate scores the same"] += 1
            out.dropped_rows += 1
            continue
        extras = {k: row[k] for k in ("reference", "cost") if row.get(k) is not None}
        extras.update(_token_extras(row.get("tokens"), names, path, line))
        out.examples.append(
            RoutingExample(rid, prompt, tuple(str(responses[c]) for c in names), values, domain, extras)
        )
        out.splits.append(split)
    return out
