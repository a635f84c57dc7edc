"""Test doubles for the routing server: a stub OpenAI-compatible backend, a keyword router and a server thread.

The stub serves ``POST /<name>/v1/chat/completions`` for any backend name, so one process stands in for every
candidate (``base_url = http://host:port/<name>/v1``). It answers ``"<name>|<last user text>"`` and echoes what it
received (upstream model name, Authorization header, extra fields) so tests can check what the router forwarded.
A top-level ``"stub"`` field in the request (passed through by the router like any other OpenAI field) tells it to
misbehave: ``{"fail": 503}``, ``{"delay": 2.0}`` (seconds before answering, capped at 10), ``{"stall_after": 1}``
(stream one chunk, then stall).

Run alone (for the benchmark): ``python tests/serving/stub_backend.py --port 9001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from lightning_lookahead.costs.rules import ARGMAX, DecisionRule

MAX_DELAY_S = 10.0
STREAM_PIECES = 3


def create_stub_app() -> FastAPI:
    app = FastAPI()

    @app.post("/{name}/v1/chat/completions")
    async def chat(name: str, request: Request) -> Response:
        body = await request.json()
        stub = body.get("stub") or {}
        if stub.get("delay"):
            await asyncio.sleep(min(float(stub["delay"]), MAX_DELAY_S))
        if stub.get("fail"):
            error = {"error": {"message": f"stub {name} failed on purpose", "type": "stub", "code": None}}
            return JSONResponse(error, status_code=int(stub["fail"]))
        user = [m.get("content") for m in body["messages"] if m.get("role") == "user"]
        content = f"{name}|{user[-1] if user else ''}"
        echo = {
            "stub_backend": name,
            "stub_received_model": body.get("model"),
            "stub_received_stream": body.get("stream", "absent"),
            "stub_authorization": request.headers.get("authorization"),
            "stub_extra": sorted(set(body) - {"model", "messages", "stream"}),
        }
        if body.get("stream"):
            return StreamingResponse(_events(name, body, content, stub), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": f"stub-{name}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                **echo,
            }
        )

    return app


async def _events(name: str, body: dict[str, Any], content: str, stub: dict[str, Any]) -> AsyncIterator[bytes]:
    size = -(-len(content) // STREAM_PIECES)
    pieces = [content[i : i + size] for i in range(0, len(content), size)]
    for i, piece in enumerate(pieces):
        if stub.get("stall_after") is not None and i >= int(stub["stall_after"]):
            await asyncio.sleep(MAX_DELAY_S)
            return
        chunk = {
            "id": f"stub-{name}",
            "object": "chat.completion.chunk",
            "model": body.get("model"),
            "stub_backend": name,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    if (body.get("stream_options") or {}).get("include_usage"):  # OpenAI's last chunk: no choices, the usage
        usage = {"prompt_tokens": 1, "completion_tokens": len(pieces), "total_tokens": 1 + len(pieces)}
        chunk = {"id": f"stub-{name}", "object": "chat.completion.chunk", "model": body.get("model"), "choices": []}
        yield f"data: {json.dumps({**chunk, 'usage': usage})}\n\n".encode()
    yield b"data: [DONE]\n\n"


@dataclass(frozen=True)
class FakeDecision:
    model: str
    index: int
    scores: dict[str, float] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)


class KeywordRouter:
    """Deterministic stand-in for ``Router``: "code" → candidate 4, "math" → candidate 1, anything else → 0.

    A prompt containing "explode" makes the whole call fail (to test routing errors).
    The chosen candidate gets probability 0.9 and the others 0.1, so the penalty rule ``argmax p − λ·cost`` switches
    to a cheaper candidate once λ·(cost difference) > 0.8, and the threshold rule (cheapest with p ≥ τ) keeps the
    keyword's pick for τ > 0.1. ``calls`` records the size of every routing call, ``rules`` its (rule, λ, τ).
    ``home`` is where calibrations are read from, like ``TrainedRouter.home``.
    """

    kind = "keyword"

    def __init__(self, candidates: Sequence[str], delay_s: float = 0.0, home: str | None = None) -> None:
        self.candidates = list(candidates)
        self.delay_s = delay_s
        self.home = home
        self.rules: list[tuple[str, float, float]] = []
        self.calls: list[int] = []
        self._lock = threading.Lock()
        self._busy = False

    def route(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        rule: DecisionRule = ARGMAX,
        costs: np.ndarray | None = None,
        progress: bool = False,
    ) -> list[FakeDecision]:
        with self._lock:
            if self._busy:
                raise RuntimeError("KeywordRouter.route called concurrently")
            self._busy = True
        try:
            self.calls.append(len(prompts))
            self.rules.append((rule.rule, rule.lam, rule.tau))
            if self.delay_s:
                time.sleep(self.delay_s)
            return [self._one(p, rule, costs) for p in prompts]
        finally:
            self._busy = False

    def _one(self, prompt: str, rule: DecisionRule, costs: np.ndarray | None) -> FakeDecision:
        text = prompt.lower()
        if "explode" in text:
            raise RuntimeError("KeywordRouter was asked to fail")
        best = 4 if "code" in text else 1 if "math" in text else 0
        p = np.full(len(self.candidates), 0.1)
        p[best] = 0.9
        assert costs is None and rule.needs_costs == (rule.costs is not None)  # cost-aware rules carry their costs
        best = int(rule.choose(p[None], probabilities=p[None])[0])
        names = self.candidates
        return FakeDecision(names[best], best, dict(zip(names, p, strict=True)), dict(zip(names, p, strict=True)))


KEYWORD_CANDIDATES = ["alpha", "bravo", "charlie", "delta", "echo"]


def keyword_loader(spec: Any) -> Any:
    """A ``ServeSpec.loader`` that serves a KeywordRouter (no torch: worker processes start in a second or two).

    Its calibrations are read from ``spec.checkpoint`` (a folder), its backends from ``spec.backends``.
    """
    from lightning_lookahead.serving import LoadedRouter, load_backends

    router = KeywordRouter(KEYWORD_CANDIDATES, home=spec.checkpoint)
    return LoadedRouter(router, load_backends(spec.backends, router.candidates))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app: Any, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a background thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_stub_app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
