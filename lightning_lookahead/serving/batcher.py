"""Micro-batching of routing calls: concurrent requests share one ``TrainedRouter.route`` call, off the event loop.

The router is a CPU-bound torch module that is not guaranteed to be thread-safe, so exactly one worker task calls it,
in a worker thread (the event loop keeps serving other requests meanwhile). Requests that arrive while a batch is
being scored queue up and form the next batch, so under load the router sees batches without any added waiting,
and a lone request is routed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np

if TYPE_CHECKING:
    from lightning_lookahead.inference.router import RouteDecision, TrainedRouter


@dataclass
class _Pending:
    text: str
    lam: float | None
    future: asyncio.Future[Any]


class RouteBatcher:
    """``await batcher.route(text, lam)`` → one decision; ``lam=None`` is the argmax rule, a number the penalty rule."""

    def __init__(self, router: TrainedRouter, costs: np.ndarray | None = None, max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be ≥ 1, got {max_batch}")
        self.router = router
        self.costs = costs
        self.max_batch = max_batch
        self.batches = 0  # routing calls made, for tests and /health
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

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

    async def route(self, text: str, lam: float | None = None) -> RouteDecision:
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("the route batcher is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(text, lam, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            groups: dict[float | None, list[_Pending]] = {}
            for item in batch:
                if not item.future.done():  # done = the client went away while queued
                    groups.setdefault(item.lam, []).append(item)
            for lam, items in groups.items():
                await self._route_group(lam, items)

    async def _route_group(self, lam: float | None, items: list[_Pending]) -> None:
        rule = "argmax" if lam is None else "penalty"
        call = partial(
            self.router.route,
            [p.text for p in items],
            batch_size=self.max_batch,
            rule=rule,
            lam=lam or 0.0,
            costs=None if lam is None else self.costs,
            progress=False,
        )
        try:
            decisions = list(await anyio.to_thread.run_sync(call))
            self.batches += 1
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
