"""Small helpers the readers share: finding models on disk, picking the pool, comparing id sets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl, require
from lightning_lookahead.data.schema import check_candidates
from lightning_lookahead.errors import DataError


def models_in(folder: Path, suffix: str, prefix: str = "") -> list[str]:
    """Model names of files ``<prefix><model><suffix>`` (plain or ``.gz``) in ``folder``; [] when it is absent.

    Listing never fails, so a missing folder surfaces later as a "file not found, run fetch" error
    for the exact file, rather than as a confusing "unknown model".
    """
    if not folder.is_dir():
        return []
    names = set()
    for entry in folder.iterdir():
        name = entry.name.removesuffix(".gz")
        if entry.is_file() and name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix + suffix):
            names.add(name[len(prefix) : len(name) - len(suffix)])
    return sorted(names)


def select_pool(candidates: Sequence[str], known: Iterable[str], on_disk: Iterable[str], where: str) -> tuple[str, ...]:
    """Validate the pool against the models the source ships or has on disk.

    Names the source is known to ship are accepted even when their file is missing, so the
    reader then reports the missing file (with the fetch hint) instead of an "unknown model".
    """
    return check_candidates(candidates, sorted(set(known) | set(on_disk)), where)


def read_questions(path: Path, id_type: type) -> Iterator[tuple[int, dict[str, Any], Any]]:
    """(line, object, question_id) of each line of a benchmark's questions file; an id seen before is a located error
    naming the line it was first on (a repeated question would be scored twice)."""
    first: dict[Any, int] = {}
    for line, obj in iter_jsonl(path):
        qid = require(obj, "question_id", path, line=line, kind=id_type)
        if qid in first:
            raise DataError(path, f"duplicate question_id {qid!r} (first on line {first[qid]})", line=line)
        first[qid] = line
        yield line, obj, qid


def first_turn(turns: Any, path: Path, key: str) -> str:
    """The text of the first turn of an OpenCompass ``[{role, prompt}]`` list (or a bare string)."""
    if isinstance(turns, str):
        return turns
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], dict):
        raise DataError(path, "expected a non-empty list of {role, prompt} turns", key=key)
    text = turns[0].get("prompt")
    if not isinstance(text, str):
        raise DataError(path, "first turn has no text field 'prompt'", key=key)
    return text


def check_same_ids(expected: Sequence[str], got: Iterable[str], path: Path, against: Path | str) -> None:
    """Raise a located error naming one offending id when two id sets differ."""
    got_set = set(got)
    expected_set = set(expected)
    if got_set == expected_set:
        return
    missing = [i for i in expected if i not in got_set]
    extra = sorted(got_set - expected_set)
    parts = []
    if missing:
        parts.append(f"{len(missing)} id(s) of {against} missing here, e.g. {missing[0]!r}")
    if extra:
        parts.append(f"{len(extra)} id(s) not in {against}, e.g. {extra[0]!r}")
    raise DataError(path, "id sets differ: " + "; ".join(parts))


def mapping(obj: Any, path: Path, key: str | None = None) -> dict[str, Any]:
    """``obj`` when it is a JSON object, else a located error (keeps readers' type checks one-liners)."""
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", key=key)
    return obj
