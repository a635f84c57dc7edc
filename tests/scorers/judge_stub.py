"""A loopback OpenAI-compatible judge for the judge scorer's tests: real HTTP, scripted verdicts.

``POST /v1/chat/completions`` looks at the graded answer (between the judge prompt's answer markers):
``verdict:TEXT`` → answers TEXT; ``fail:CODE`` → HTTP CODE; ``slow:TEXT`` → TEXT after 0.2 s. It records each
request's body, graded answer and Authorization header and the most requests it had in flight at once, and can
hold every request after a number of answers (``answer_limit``) to leave a scoring run half done.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ANSWER_START = "[The Start of the Assistant's Answer]\n"
ANSWER_END = "\n[The End of the Assistant's Answer]"


HOLD_LIMIT_S = 10.0


@dataclass
class JudgeLog:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    answered: int = 0
    answer_limit: int | None = None


def create_judge_app(log: JudgeLog) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        log.bodies.append(body)
        log.authorization.append(request.headers.get("authorization"))
        log.in_flight += 1
        log.most_in_flight = max(log.most_in_flight, log.in_flight)
        try:
            user = body["messages"][-1]["content"]
            answer = user.split(ANSWER_START, 1)[1].split(ANSWER_END, 1)[0]
            log.answers.append(answer)
            kind, _, text = answer.partition(":")
            if kind == "fail":
                return JSONResponse({"error": {"message": "judge down", "type": "stub"}}, status_code=int(text))
            if kind == "slow":
                await asyncio.sleep(0.2)
            held = time.monotonic()
            while log.answer_limit is not None and log.answered >= log.answer_limit:
                if time.monotonic() - held > HOLD_LIMIT_S:
                    return JSONResponse({"error": {"message": "held too long", "type": "stub"}}, status_code=503)
                await asyncio.sleep(0.02)
            log.answered += 1
            return JSONResponse(_completion(body.get("model"), text if kind in ("verdict", "slow") else answer))
        finally:
            log.in_flight -= 1

    return app


def _completion(model: str | None, content: str) -> dict[str, Any]:
    return {
        "id": "judge-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@contextmanager
def serve_judge(log: JudgeLog, timeout_s: float = 10.0) -> Iterator[str]:
    """The stub on a free loopback port in a background thread; yields its ``/v1`` base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_judge_app(log), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("judge stub did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        log.answer_limit = None
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
