"""Micro-batching of routing calls: concurrent requests share one ``TrainedRouter.route`` call, off the event loop.

The router is a CPU-bound torch module that is not guaranteed to be thread-safe, so exactly one worker task calls it,
in a worker thread (the event loop keeps serving other requests meanwhile). Requests that arrive while a batch is
being scored queue up and form the next batch, so under load the router sees batches without any added waiting,
and a lone request is routed at once. A batch holds one routing call per distinct decision rule (argmax, a λ, a
calibration): requests asking for equal rules share a call whatever name they used. The queue is bounded: past
``max_queue`` waiting prompts, ``route`` raises ``QueueFull`` at once instead of letting latency grow without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from lightning_lookahead.costs.rules import ARGMAX, DecisionRule

if TYPE_CHECKING:
    from lightning_lookahead.inference.router import RouteDecision, TrainedRouter


class QueueFull(Exception):
    """The routing queue holds ``max_queue`` prompts already."""


@dataclass
class _Pending:
    text: str
    rule: DecisionRule
    future: asyncio.Future[Any]


class RouteBatcher:
    """``await batcher.route(text, rule)`` → one decision (``rule`` defaults to the argmax)."""

    def __init__(
        self,
        router: TrainedRouter,
        max_batch: int = 32,
        max_queue: int | None = None,
        *,
        on_batch: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be ≥ 1, got {max_batch}")
        if max_queue is not None and max_queue < 1:
            raise ValueError(f"max_queue must be ≥ 1, got {max_queue}")
        self.router = router
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.batches = 0  # routing calls made, for tests and /health
        self._on_batch = on_batch or (lambda size: None)
        self._on_depth = on_depth or (lambda depth: None)
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def depth(self) -> int:
        """Prompts waiting for a routing call (the one being scored not included)."""
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        """Start the worker on the running event loop (the app's lifespan calls this)."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lookahead-route-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue is not None and not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the server is shutting down"))
        self._on_depth(0)

    async def route(self, text: str, rule: DecisionRule = ARGMAX) -> RouteDecision:
        if self._queue is None or not self.running:
            raise RuntimeError("the route batcher is not running")
        if self.max_queue is not None and self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self.max_queue} prompts are already waiting to be routed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(text, rule, future))
        self._on_depth(self._queue.qsize())
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._on_depth(self._queue.qsize())
            groups: dict[DecisionRule, list[_Pending]] = {}
            for item in batch:
                if not item.future.done():  # done = the client went away while queued
                    groups.setdefault(item.rule, []).append(item)
            for rule, items in groups.items():
                await self._route_group(rule, items)

    async def _route_group(self, rule: DecisionRule, items: list[_Pending]) -> None:
        call = partial(self.router.route, [p.text for p in items], batch_size=self.max_batch, rule=rule, progress=False)
        try:
            decisions = list(await anyio.to_thread.run_sync(call))
            self.batches += 1
            self._on_batch(len(items))
            if len(decisions) != len(items):
                raise RuntimeError(f"router returned {len(decisions)} decisions for {len(items)} prompts")
        except Exception as exc:
            for p in items:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p, decision in zip(items, decisions, strict=True):
            if not p.future.done():
                p.future.set_result(decision)
