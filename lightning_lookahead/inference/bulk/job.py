"""What every process of a bulk run shares: the job, how a process loads its router, the unit of work (one shard's
text), the progress display and which device a rank routes on. ``run.py`` (one process) and ``ddp.py`` (several)
both build on it; neither imports the other's internals.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.bulk.shard import Routing
from lightning_lookahead.inference.bulk.source import PromptLog, read_shard
from lightning_lookahead.progress import counter

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


def shard_text(routing: Routing, log: PromptLog, shard: int, on_batch: Callable[[int], None]) -> str:
    """One shard's JSON lines: the unit every process reads, routes and writes."""
    return routing.shard(read_shard(log, shard), log.shard_range(shard).start, on_batch)


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


def rank_device(accelerator: str, local_rank: int) -> str:
    """The torch device Lightning gives local rank ``local_rank`` (the CPU, or this node's GPU ``local_rank``)."""
    if accelerator == "auto":
        import torch

        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    return f"cuda:{local_rank}" if accelerator == "gpu" else "cpu"


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))
