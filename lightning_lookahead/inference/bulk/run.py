"""`route --file LOG --out OUT`: route a prompt log shard by shard, resumably, in one process or in several.

Rank 0 (the only process with ``--devices 1``) checks the log, loads the router, opens the parts folder (resume or
refuse, see ``parts.py``) and lists the shards still to do. One process routes them in a plain loop, without
Lightning; several processes route them with Lightning's predict loop (``ddp.py``), one whole shard per step, so a
shard's bytes never depend on how the work was split. At the end rank 0 merges the shards into ``OUT`` in input order.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.bulk.parts import Manifest, Parts, files_sha256
from lightning_lookahead.inference.bulk.shard import Routing
from lightning_lookahead.inference.bulk.source import PromptLog, read_shard, scan
from lightning_lookahead.training.progress import counter

if TYPE_CHECKING:
    from lightning_lookahead.inference.router import TrainedRouter

#: Loads what a process routes with onto a torch device ("cpu", "cuda:1"); each process calls it exactly once.
LoadRouting = Callable[[str], Routing]
ACCELERATORS: tuple[str, ...] = ("cpu", "gpu", "auto")


@dataclass(frozen=True)
class BulkJob:
    """One `route --file --out` run: what to route, where to, and on how many processes."""

    file: Path
    out: Path
    shard_size: int = 4096
    devices: int = 1
    accelerator: str = "cpu"
    #: The torch device of a one-process run (``--device``); several processes take theirs from ``accelerator``.
    device: str = "cpu"
    restart: bool = False

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise LookaheadError(f"--devices must be ≥ 1, got {self.devices}")
        if self.accelerator not in ACCELERATORS:
            raise LookaheadError(f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}")


def router_identity(router: TrainedRouter) -> dict[str, Any]:
    """What the manifest compares to tell whether parts were routed by this router (its files' digest, not path)."""
    source = router.source
    digest = files_sha256(source) if source is not None and source.exists() else None
    return {"kind": router.kind, "candidates": list(router.candidates), "sha256": digest}


def shard_text(routing: Routing, log: PromptLog, shard: int, on_batch: Callable[[int], None]) -> str:
    """One shard's JSON lines: the unit every process reads, routes and writes."""
    return routing.shard(read_shard(log, shard), log.shard_range(shard).start, on_batch)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _check_relaunchable() -> None:
    """Lightning starts ranks 1..N-1 by re-running this process's command line, which must be this command."""
    if "route" not in sys.argv[1:]:
        raise LookaheadError(
            "--devices N > 1 starts N-1 more copies of this process's command line; run it as `lookahead route ...`"
        )


def route_file(job: BulkJob, load: LoadRouting) -> int:
    """Route ``job.file`` into ``job.out``; returns the exit code. The other ranks of a multi-process run come here
    too (Lightning re-runs the command for each) and only route the shards rank 0 hands them."""
    if job.devices > 1:
        from lightning_lookahead.inference.bulk import ddp

        if ddp.is_worker():
            return ddp.work(job, load)
        _check_relaunchable()
    log = scan(job.file, job.shard_size)
    if log.prompts == 0:
        raise LookaheadError(f"no prompts to route ({job.file} is empty)")
    routing = load(job.device if job.devices == 1 else rank_device(job.accelerator, 0))
    routing.costs(routing.router, read_shard(log, 0)[:1])  # a cost rule's missing input fails now, not in shard 1
    manifest = Manifest.of(log, router_identity(routing.router), routing.settings.to_json())
    parts = Parts.open(job.out, manifest, restart=job.restart)
    done = parts.done()
    todo = [k for k in range(log.shards) if k not in done]
    remaining = sum(len(log.shard_range(k)) for k in todo)
    if done and todo:
        _say(f"resuming {parts.folder}: {len(done)} of {log.shards} shards already routed, {remaining} prompts to go")
    processes = min(job.devices, len(todo))  # every rank needs a shard (Lightning's predict sampler insists)
    if 0 < processes < job.devices:
        _say(f"{len(todo)} shard{'s' * (len(todo) > 1)} to route: {processes} of the {job.devices} processes suffice")
    try:
        if processes == 1:
            _route_here(routing, log, parts, todo, remaining)
        elif processes > 1:
            from lightning_lookahead.inference.bulk import ddp

            _say(f"routing {remaining} prompts ({len(todo)} shards) on {processes} processes")
            ddp.lead(job, processes, routing, parts, todo, remaining)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C; Lightning turns it into SystemExit on several processes
        _say(f"{len(parts.done())} of {log.shards} shards are kept in {parts.folder}; rerun the command to finish")
        raise
    lines = parts.merge(job.out)
    _say(f"wrote {lines} routing decisions to {job.out}")
    return 0


def progress(routing: Routing, remaining: int, shards: int) -> Any:
    """A bar on a terminal, else a line every $LOOKAHEAD_PROGRESS_INTERVAL seconds (stderr); none for one batch."""
    return counter(
        remaining,
        desc=f"routing ({routing.router.name})",
        label="route",
        unit="prompt",
        line_unit="prompts",
        note=f"{shards} shard{'s' * (shards > 1)}, router {routing.router.name}",
        disable=remaining <= routing.settings.batch_size,
    )


def _route_here(routing: Routing, log: PromptLog, parts: Parts, todo: list[int], remaining: int) -> None:
    with progress(routing, remaining, len(todo)) as bar:
        for shard in todo:
            parts.write(shard, shard_text(routing, log, shard, bar.update))


def rank_device(accelerator: str, local_rank: int) -> str:
    """The torch device Lightning gives local rank ``local_rank`` (the CPU, or this node's GPU ``local_rank``)."""
    if accelerator == "auto":
        import torch

        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    return f"cuda:{local_rank}" if accelerator == "gpu" else "cpu"


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))
