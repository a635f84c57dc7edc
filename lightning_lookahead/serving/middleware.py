"""ASGI middleware in front of the API: admission (ready? under the in-flight limit?), request metrics, body limit.

Admission answers before any body is read, so an overloaded or still-loading server sheds a request for the cost of
its headers: 503 ``not_ready`` while the router loads, 503 ``overloaded`` past ``max_in_flight`` chat requests, both
with ``Retry-After``. Every chat request is counted once, with its final status, when its answer (stream included)
has been sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lightning_lookahead.serving.errors import ApiError, not_ready, overloaded
from lightning_lookahead.serving.metrics import ServerMetrics
from lightning_lookahead.serving.requestlog import REQUEST_ID_HEADER, RequestLog, request_id

CHAT_PATH = "/v1/chat/completions"
#: Key of the request's RequestLog in the ASGI scope (set here, filled in by the chat handler).
LOG_SCOPE_KEY = "lookahead.request_log"


class AdmissionState(Protocol):
    """What admission reads from the app's state."""

    in_flight: int
    metrics: ServerMetrics

    @property
    def ready(self) -> bool: ...

    @property
    def not_ready_reason(self) -> str: ...

    @property
    def max_in_flight(self) -> int: ...

    def count_error(self, code: str) -> None: ...


class AdmissionMiddleware:
    """503 for ``/v1/*`` until ready; 503 past the in-flight limit of chat requests; counts every chat request."""

    def __init__(self, app: ASGIApp, state: AdmissionState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state = self.state
        is_chat = scope["path"] == CHAT_PATH
        rid = request_id(_header(scope, REQUEST_ID_HEADER))
        line = RequestLog(rid)
        if not state.ready:
            await self._refuse(not_ready(state.not_ready_reason), line, is_chat, scope, receive, send)
            return
        if not is_chat:
            await self.app(scope, receive, send)
            return
        if state.in_flight >= state.max_in_flight:
            await self._refuse(
                overloaded(f"{state.max_in_flight} requests in flight"), line, True, scope, receive, send
            )
            return
        scope[LOG_SCOPE_KEY] = line
        status = 500  # if the app ends without starting a response

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        state.in_flight += 1
        state.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed)
        finally:
            state.in_flight -= 1
            state.metrics.in_flight.dec()
            state.metrics.requests.labels(line.chosen or "none", line.route, str(status)).inc()
            line.emit(status)  # a no-op when the handler already wrote the line; else e.g. a 401 or an early 413

    async def _refuse(
        self, error: ApiError, line: RequestLog, is_chat: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.state.count_error(error.code or "error")
        if is_chat:
            self.state.metrics.requests.labels("none", line.route, str(error.status)).inc()
            line.emit(error.status, note=f"refused={error.code}")
        await error.response({REQUEST_ID_HEADER: line.request_id})(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: from Content-Length when given, else by counting bytes as they arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_refuse: Callable[[str], None] | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.on_refuse = on_refuse or (lambda code: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, "content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            error = self.too_large()
            self.on_refuse(error.code or "request_too_large")
            await error.response()(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.too_large()  # the chat handler answers (and counts) it
            return message

        await self.app(scope, limited, send)

    def too_large(self) -> ApiError:
        return ApiError(413, f"request body is larger than {self.max_bytes} bytes", code="request_too_large")


def _header(scope: Scope, name: str) -> str | None:
    raw = dict(scope["headers"]).get(name.encode())
    return None if raw is None else raw.decode("latin-1")
