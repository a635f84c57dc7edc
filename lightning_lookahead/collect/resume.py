"""What earlier runs already answered: the journal of an interrupted run, else the answers in an existing output.

A rerun of the same command therefore sends only what is missing: pairs that were never answered and pairs that
failed, whether the earlier run was interrupted (the journal) or finished with failures (the output). Each answer
is tied to the hash of its prompt, so a rerun against a changed prompts file (or with other sampling settings) is
refused instead of mixing answers to different questions in one dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_lookahead.collect.journal import Journal, Record
from lightning_lookahead.collect.outcome import Outcome
from lightning_lookahead.collect.prompts import PromptRow, Prompts, prompt_digest
from lightning_lookahead.data.io import iter_jsonl
from lightning_lookahead.errors import DataError

Done = dict[tuple[str, str], Outcome]


def previous_outcomes(journal: Journal, out: Path, prompts: Prompts, header: dict[str, Any]) -> Done:
    """Outcome per (id, candidate) from earlier runs; starts a new journal (seeded from ``out``) when there is none."""
    by_id, prompts_path = {p.id: p for p in prompts.rows}, prompts.path
    if journal.header is None:
        records = _from_output(out, by_id, prompts_path) if out.is_file() else []
        journal.start(header, records)
    else:
        _check_header(journal, header)
        records = journal.records
        for r in records:
            _check_prompt(journal.path, r.line, r.id, r.digest, by_id, prompts_path)
    return {(r.id, r.candidate): r.outcome for r in records}  # later lines win


def _check_header(journal: Journal, header: dict[str, Any]) -> None:
    old, new = (journal.header or {}).get("sampling"), header["sampling"]
    if old != new:
        raise DataError(
            journal.path,
            f"was written with sampling {old}, this run asks for {new}; rerun with the same settings, or delete "
            "the journal to start afresh",
            line=1,
            key="sampling",
        )


def _check_prompt(
    source: Path, line: int, rid: str, digest: str, by_id: dict[str, PromptRow], prompts_path: Path
) -> None:
    fix = f"rerun with the original prompts file, or delete {source.name} to collect afresh"
    row = by_id.get(rid)
    if row is None:
        raise DataError(source, f"id {rid!r} is not in {prompts_path} (the prompts changed); {fix}", line=line)
    if row.digest != digest:
        raise DataError(
            source, f"the prompt of id {rid!r} differs from {prompts_path}:{row.line}; {fix}", line=line, key="prompt"
        )


def _from_output(out: Path, by_id: dict[str, PromptRow], prompts_path: Path) -> list[Record]:
    """The outcomes of a finished earlier run: its answers, and its failures (which are asked again).

    A failure is carried over so that a candidate this run does not ask (``--candidates``) keeps its ``errors``
    entry in the rewritten output; a candidate this run asks is asked again wherever it failed.
    """
    records = []
    for line, row in iter_jsonl(out):
        responses, tokens, errors = row.get("responses"), row.get("tokens") or {}, row.get("errors") or {}
        shaped = isinstance(responses, dict) and isinstance(tokens, dict) and isinstance(errors, dict)
        if "id" not in row or "prompt" not in row or not shaped:
            problem = "not a `lookahead data collect` output row; delete the file or choose another --out"
            raise DataError(out, problem, line=line)
        rid, digest = str(row["id"]), prompt_digest(row["prompt"])
        _check_prompt(out, line, rid, digest, by_id, prompts_path)
        for name, message in errors.items():
            if responses.get(name) is None:
                records.append(Record(rid, str(name), digest, Outcome(error=str(message)), line))
        for name, text in responses.items():
            if isinstance(text, str):
                used = tokens.get(name)
                outcome = Outcome(response=text, tokens=used if isinstance(used, dict) else None)
                records.append(Record(rid, str(name), digest, outcome, line))
    return records
