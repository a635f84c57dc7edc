"""A scriptable stub of OpenAI-compatible endpoints for `lookahead data collect`, served on loopback.

``POST /<name>/v1/chat/completions`` answers ``"<name>|<last user text>"`` with token usage, for any name. The test
scripts misbehaviour per (name, prompt text) as a list of actions taken by successive attempts, e.g.
``[{"status": 429, "headers": {"Retry-After": "1"}}]`` (then a normal answer), ``{"delay": 2}``, ``{"usage": False}``.
It records every request and the most requests in flight per name, and can hold every request after a number of
answers (``answer_limit``) to leave a collection half done.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

HOLD_LIMIT_S = 10.0


@dataclass
class StubState:
    delay: float = 0.0
    answer_limit: int | None = None
    script: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, float, dict[str, Any]]] = field(default_factory=list)
    answered: Counter = field(default_factory=Counter)
    in_flight: Counter = field(default_factory=Counter)
    max_in_flight: Counter = field(default_factory=Counter)

    def reset(self) -> None:
        self.__dict__.update(StubState().__dict__)

    def attempts(self, name: str, text: str) -> list[float]:
        return [t for n, p, t, _ in self.requests if (n, p) == (name, text)]


def create_app(state: StubState) -> FastAPI:
    app = FastAPI()

    @app.post("/{name}/v1/chat/completions")
    async def chat(name: str, request: Request) -> JSONResponse:
        body = await request.json()
        users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
        text = users[-1] if users else ""
        # this request's records: a reset between tests gives later requests new ones
        requests, answered, in_flight, peak = state.requests, state.answered, state.in_flight, state.max_in_flight
        requests.append((name, text, time.monotonic(), body))
        in_flight[name] += 1
        peak[name] = max(peak[name], in_flight[name])
        try:
            steps = state.script.get((name, text))
            action = steps.pop(0) if steps else {}
            await asyncio.sleep(float(action.get("delay", state.delay)))
            held = time.monotonic()
            while state.answer_limit is not None and state.answered.total() >= state.answer_limit:
                if time.monotonic() - held > HOLD_LIMIT_S:
                    return JSONResponse({"error": {"message": "held too long"}}, status_code=503)
                await asyncio.sleep(0.02)
            if action.get("status"):
                error = {"error": {"message": f"stub {name} says {action['status']}", "type": "stub"}}
                return JSONResponse(error, status_code=int(action["status"]), headers=action.get("headers"))
            answered[(name, text)] += 1
            return JSONResponse(_completion(name, body, text, usage=action.get("usage", True)))
        finally:
            in_flight[name] -= 1

    return app


def _completion(name: str, body: dict[str, Any], text: str, *, usage: bool) -> dict[str, Any]:
    return {
        "id": f"stub-{name}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"{name}|{text}"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": len(text), "completion_tokens": 2, "total_tokens": len(text) + 2} if usage else None,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(state: StubState) -> Iterator[str]:
    """The stub on a free loopback port in a background thread; yields its root URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("collect stub did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        state.answer_limit = None
        server.should_exit = True
        thread.join(10)
        sock.close()
