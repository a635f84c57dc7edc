"""Forwarding one routed request to its candidate's backend and relaying the answer, bounded in time.

A non-streaming call is bounded as a whole by the backend's timeout; a streaming one until its response headers,
then per chunk. Connection failures are 502, timeouts 504, and a backend's own 4xx/5xx passes through unchanged.
The ``model`` of every answer (each chunk when streaming) is set to the chosen candidate's name.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse

from lightning_lookahead.backends import Backend
from lightning_lookahead.serving.errors import ApiError, error_body
from lightning_lookahead.serving.metrics import ServerMetrics
from lightning_lookahead.serving.requestlog import RequestLog


def upstream_error(backend: Backend, exc: BaseException) -> ApiError:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return ApiError(
            504, f"backend for {backend.name} did not answer within {backend.timeout:g} s", "upstream_error", "timeout"
        )
    return ApiError(
        502, f"backend for {backend.name} is unreachable or broke off ({type(exc).__name__})", "upstream_error",
        "backend_unavailable",
    )  # fmt: skip


def incomplete_stream(backend: Backend, why: str) -> ApiError:
    """A stream the backend ended before its answer was complete: the client must not take it for a whole answer."""
    message = f"backend for {backend.name} ended the stream before the answer was complete ({why})"
    return ApiError(502, message, "upstream_error", "backend_unavailable")


class Forwarder:
    """Sends requests through one pooled client and records upstream latency per candidate."""

    def __init__(self, client: httpx.AsyncClient, metrics: ServerMetrics, count_error: Callable[[str], None]) -> None:
        self.client, self.metrics, self.count_error = client, metrics, count_error

    def _request(self, backend: Backend, forward: dict[str, Any]) -> httpx.Request:
        headers = {"accept": "application/json, text/event-stream"}
        if backend.api_key:
            headers["authorization"] = f"Bearer {backend.api_key}"
        return self.client.build_request(
            "POST", backend.chat_url, json=forward, headers=headers, timeout=backend.timeout
        )

    async def complete(
        self,
        backend: Backend,
        forward: dict[str, Any],
        headers: dict[str, str],
        line: RequestLog,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """Forward a non-streaming request; ``extra`` top-level fields are added to a successful answer."""
        started = time.perf_counter()
        upstream = await self._open(backend, forward, line, started)
        # the backend's timeout bounds the whole exchange, not only each read
        content = await self._read(upstream, backend, started, backend.timeout - (time.perf_counter() - started))
        return self._answer(upstream, content, backend, headers, line, extra)

    async def stream(
        self,
        backend: Backend,
        forward: dict[str, Any],
        headers: dict[str, str],
        line: RequestLog,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """Open the upstream stream first, so connection errors and error statuses still get a proper status code."""
        started = time.perf_counter()
        upstream = await self._open(backend, forward, line, started)
        if upstream.status_code >= 400 or not upstream.headers.get("content-type", "").startswith("text/event-stream"):
            content = await self._read(upstream, backend, started, backend.timeout)
            return self._answer(upstream, content, backend, headers, line, extra)  # an error, or stream=true ignored
        stream_headers = {**headers, "cache-control": "no-cache"}
        relay = self._relay(upstream, backend, line, started)
        return StreamingResponse(relay, media_type="text/event-stream", headers=stream_headers)

    async def _relay(
        self, upstream: httpx.Response, backend: Backend, line: RequestLog, started: float
    ) -> AsyncIterator[bytes]:
        """Server-sent events from the backend, one event at a time, with each chunk's ``model`` set to the candidate.

        The status line is already sent, so a backend that stalls (per-read timeout), breaks off, or ends its stream
        before it is complete (neither ``data: [DONE]`` nor a ``finish_reason``, whatever ended the HTTP body) ends the
        stream with an OpenAI-style ``data: {"error": ...}`` event instead of hanging or passing for a full answer.
        A backend's own error event is relayed as it is and counted as ``backend_error``.
        """
        outcome = "ok"
        state = _StreamState()
        event: list[str] = []
        error: ApiError | None = None
        try:
            async for text in upstream.aiter_lines():
                if text:
                    event.append(_rewrite_sse_line(text, backend.name, state))
                elif event:
                    yield ("\n".join(event) + "\n\n").encode()
                    event = []
            if event:
                yield ("\n".join(event) + "\n\n").encode()
            if not state.complete and not state.upstream_error:
                reason = "neither `data: [DONE]` nor a finish_reason"
                error = incomplete_stream(backend, reason)
        except httpx.TransportError as exc:
            error = upstream_error(backend, exc)
            if not isinstance(exc, httpx.TimeoutException):
                error = incomplete_stream(backend, f"the connection broke off: {type(exc).__name__}")
        finally:
            await upstream.aclose()
            self.metrics.upstream_seconds.labels(backend.name).observe(time.perf_counter() - started)
            if error is not None:
                outcome = error.code or "error"
            elif state.upstream_error:  # relayed as it came; the client may hang up as soon as it reads it
                outcome = "backend_error"
            if outcome != "ok":
                self.count_error(outcome)
            line.emit(200, note=f"stream={outcome}")
        if error is not None:
            yield f"data: {json.dumps(error_body(error.message, error.type, error.code))}\n\n".encode()

    async def _open(
        self, backend: Backend, forward: dict[str, Any], line: RequestLog, started: float
    ) -> httpx.Response:
        """Send the request and wait for the response headers, within the backend's timeout (502/504 otherwise)."""
        try:
            with anyio.fail_after(backend.timeout):
                upstream = await self.client.send(self._request(backend, forward), stream=True)
        except (TimeoutError, httpx.TransportError) as exc:
            raise upstream_error(backend, exc) from None
        self.metrics.upstream_headers_seconds.labels(backend.name).observe(time.perf_counter() - started)
        line.upstream = upstream.status_code
        return upstream

    async def _read(self, upstream: httpx.Response, backend: Backend, started: float, within: float) -> bytes:
        """The whole body within ``within`` seconds (502/504 otherwise); the response is closed either way."""
        try:
            with anyio.fail_after(within):
                content = await upstream.aread()
        except (TimeoutError, httpx.TransportError) as exc:
            raise upstream_error(backend, exc) from None
        finally:
            await upstream.aclose()
        self.metrics.upstream_seconds.labels(backend.name).observe(time.perf_counter() - started)
        return content

    def _answer(
        self,
        upstream: httpx.Response,
        content: bytes,
        backend: Backend,
        headers: dict[str, str],
        line: RequestLog,
        extra: dict[str, Any] | None,
    ) -> Response:
        """A read answer: the backend's own error passed through, else its JSON with ``model`` and ``extra`` set."""
        if upstream.status_code >= 400:
            return self._passthrough(upstream, content, headers, line)
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            message = f"backend for {backend.name} answered with no JSON object"
            raise ApiError(502, message, "upstream_error", "bad_upstream")
        data["model"] = backend.name
        data.update(extra or {})
        line.emit(200)
        return JSONResponse(data, headers=headers)

    def _passthrough(
        self, upstream: httpx.Response, content: bytes, headers: dict[str, str], line: RequestLog
    ) -> Response:
        """A backend's own error, status and body unchanged."""
        self.count_error("backend_error")
        line.emit(upstream.status_code)
        media_type = upstream.headers.get("content-type", "application/json")
        return Response(content, status_code=upstream.status_code, media_type=media_type, headers=headers)


class _StreamState:
    """What the relayed events said so far: whether the stream is complete, and whether the backend sent an error."""

    def __init__(self) -> None:
        self.complete = False
        self.upstream_error = False


def _rewrite_sse_line(text: str, model: str, state: _StreamState) -> str:
    """One SSE line with a JSON chunk's ``model`` set to ``model``; ``state`` notes ``[DONE]``, a finish_reason and
    an error event."""
    if not text.startswith("data:"):
        return text
    payload = text[5:].strip()
    if payload == "[DONE]":
        state.complete = True
        return text
    if not payload.startswith("{"):
        return text
    try:
        chunk = json.loads(payload)
    except ValueError:
        return text
    if not isinstance(chunk, dict):
        return text
    if chunk.get("error"):
        state.upstream_error = True
    choices = chunk.get("choices")
    if isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
        state.complete = True
    if "model" in chunk:
        chunk["model"] = model
        return "data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
    return text
