"""`route --file LOG --out OUT`: route a prompt log shard by shard, resumably, in one process or in several.

Rank 0 (the only process with ``--devices 1``) checks the log, loads the router, opens the parts folder (resume or
refuse, see ``parts.py``) and lists the shards still to do. One process routes them in a plain loop, without
Lightning; several processes route them with Lightning's predict loop (``ddp.py``), one whole shard per step, so a
shard's bytes never depend on how the work was split. At the end rank 0 merges the shards into ``OUT`` in input order.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.bulk.job import BulkJob, LoadRouting, progress, rank_device, shard_text
from lightning_lookahead.inference.bulk.parts import Manifest, Parts, files_sha256
from lightning_lookahead.inference.bulk.shard import Routing
from lightning_lookahead.inference.bulk.source import PromptLog, read_shard, scan

if TYPE_CHECKING:
    from lightning_lookahead.bundle.router import BundleRouter
    from lightning_lookahead.inference.router import TrainedRouter


def router_identity(router: TrainedRouter | BundleRouter) -> dict[str, Any]:
    """What the manifest compares to tell whether parts were routed by this router (its files' digest, not path)."""
    source = router.source
    digest = files_sha256(source) if source is not None and source.exists() else None
    return {"kind": router.kind, "candidates": list(router.candidates), "sha256": digest}


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


def _route_here(routing: Routing, log: PromptLog, parts: Parts, todo: list[int], remaining: int) -> None:
    with progress(routing, remaining, len(todo)) as bar:
        for shard in todo:
            parts.write(shard, shard_text(routing, log, shard, bar.update))
