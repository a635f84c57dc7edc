"""Send every prompt to every candidate's endpoint and write the dataset file.

Each endpoint gets its own pool of ``concurrency`` workers pulling from its own to-do list, so at most that many
requests are in flight per endpoint (a slow endpoint cannot starve a fast one), and memory stays flat however many
prompts there are. Every outcome goes to the journal the moment it arrives; the output is written from it at the
end, whole, and only then is the journal removed. Pairs that failed after every attempt are written as the row's
``errors`` (the report counts them as unanswered); a rerun asks them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from lightning_lookahead.backends import Backend
from lightning_lookahead.collect.journal import Journal, Record, journal_path
from lightning_lookahead.collect.output import output_row, write_atomically
from lightning_lookahead.collect.prompts import PromptRow, Prompts
from lightning_lookahead.collect.report import CollectReport
from lightning_lookahead.collect.requester import Sampling, ask, make_client
from lightning_lookahead.collect.resume import Done, previous_outcomes
from lightning_lookahead.collect.retry import RetryPolicy


@dataclass(frozen=True)
class CollectSettings:
    concurrency: int = 8
    sampling: Sampling = field(default_factory=Sampling)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: bool = True


def collect(
    prompts: Prompts, backends: Mapping[str, Backend], out: str | Path, settings: CollectSettings | None = None
) -> CollectReport:
    """Blocking form of :func:`collect_async` (Ctrl-C keeps every answer already received in the journal)."""
    return asyncio.run(collect_async(prompts, backends, out, settings))


async def collect_async(
    prompts: Prompts, backends: Mapping[str, Backend], out: str | Path, settings: CollectSettings | None = None
) -> CollectReport:
    """Ask what earlier runs have not answered, then write ``out`` (one row per prompt, input order)."""
    settings = settings or CollectSettings()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = CollectReport(out, list(backends), len(prompts.rows))
    journal = Journal.open(journal_path(out))
    try:
        header = {"prompts": str(prompts.path), "sampling": settings.sampling.to_json()}
        done = previous_outcomes(journal, out, prompts, header)
        todo = {c: _todo(prompts.rows, c, done, report) for c in backends}
        await _run(todo, backends, settings, journal, done, report)
        for c in backends:
            for row in prompts.rows:
                outcome = done.get((row.id, c))
                if outcome is None or not outcome.ok:
                    report.unanswered[c] += 1
        names = list(dict.fromkeys([*backends, *(c for _, c in done)]))  # earlier runs' other candidates are kept
        write_atomically(out, [output_row(row, names, done) for row in prompts.rows])
        journal.path.unlink()
    except BaseException:
        if journal.header is None:  # refused before anything was written: leave no empty journal behind
            journal.path.unlink(missing_ok=True)
        raise
    finally:
        journal.close()
    return report


def _todo(rows: list[PromptRow], candidate: str, done: Done, report: CollectReport) -> list[PromptRow]:
    """The rows still to ask ``candidate``: never answered, or failed before."""
    todo = []
    for row in rows:
        earlier = done.get((row.id, candidate))
        if earlier is not None and earlier.ok:
            report.skipped[candidate] += 1
        else:
            todo.append(row)
    return todo


async def _run(
    todo: dict[str, list[PromptRow]],
    backends: Mapping[str, Backend],
    settings: CollectSettings,
    journal: Journal,
    done: Done,
    report: CollectReport,
) -> None:
    total = sum(len(rows) for rows in todo.values())
    clients = {c: make_client(backends[c]) for c, rows in todo.items() if rows}
    bar = tqdm(total=total, desc="collecting", unit="answer", disable=not settings.progress or total == 0)

    async def worker(candidate: str, queue: Iterator[PromptRow]) -> None:
        backend, client = backends[candidate], clients[candidate]
        for row in queue:  # workers share the iterator: each row is taken once
            outcome = await ask(client, backend, row.messages, settings.sampling, settings.retry)
            journal.append(Record(row.id, candidate, row.digest, outcome))
            done[(row.id, candidate)] = outcome
            report.record(candidate, row.id, outcome)
            if not outcome.ok:
                bar.set_postfix(failed=report.failed.total(), refresh=False)
            bar.update(1)

    try:
        async with asyncio.TaskGroup() as group:
            for candidate, rows in todo.items():
                queue = iter(rows)
                for _ in range(min(settings.concurrency, len(rows))):
                    group.create_task(worker(candidate, queue))
    finally:
        bar.close()
        await asyncio.gather(*(client.close() for client in clients.values()), return_exceptions=True)
