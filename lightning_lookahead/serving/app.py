"""The routing server: an OpenAI-compatible ``/v1/chat/completions`` that routes, forwards and relays.

Each request is routed (``model: router`` or ``router:λ=<value>``), forwarded to the chosen candidate's
OpenAI-compatible backend with ``model`` replaced by that backend's own model name, and the backend's answer is
returned with the chosen candidate in the ``model`` field and the ``x-lookahead-model`` header. Failures never hang:
every backend call is bounded (504), an unreachable or broken backend is a 502, and a backend's own 4xx/5xx is passed
through with its body. See docs/serving.md.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lightning_lookahead import __version__
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.serving.backends import Backend, candidate_costs
from lightning_lookahead.serving.batcher import RouteBatcher
from lightning_lookahead.serving.schemas import (
    ROUTER_MODEL,
    ChatCompletionRequest,
    RouteOn,
    error_body,
    is_router_model,
    parse_router_model,
)

if TYPE_CHECKING:
    from lightning_lookahead.inference.router import TrainedRouter

log = logging.getLogger("lightning_lookahead.serving")

MODEL_HEADER = "x-lookahead-model"
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class ServerSettings:
    """Server-wide options; per-backend timeouts live in backends.yaml."""

    #: Bearer token required on /v1/* (None: no auth). /health stays open for load balancers.
    api_key: str | None = None
    #: Largest request body accepted, counted as it arrives (so a missing or false Content-Length does not help).
    max_body_bytes: int = 4 * 1024 * 1024
    #: Which user text to route on: the first user turn (default), the last one, or all of them joined.
    route_on: RouteOn = "first"
    #: Most prompts in one routing call when requests arrive together.
    max_batch: int = 32
    #: Whether ``model: <candidate>`` skips routing and goes straight to that candidate's backend.
    allow_direct: bool = True
    #: Connection pool size towards all backends together.
    max_connections: int = 512
    #: (C,) expected USD per 1,000 requests used when the backends file sets no ``cost`` (e.g. from the price table
    #: and the run's recorded response lengths, see ``lookahead serve``); None: cost-aware models are refused.
    default_costs: np.ndarray | None = None


class ApiError(Exception):
    """An error answered in OpenAI's error format."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.type, self.code), status_code=self.status, headers=headers)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: from Content-Length when given, else by counting bytes as they arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large().response()(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited, send)

    def _too_large(self) -> ApiError:
        return ApiError(413, f"request body is larger than {self.max_bytes} bytes", code="request_too_large")


class _State:
    def __init__(self, router: TrainedRouter, backends: Mapping[str, Backend], settings: ServerSettings) -> None:
        self.router, self.backends, self.settings = router, dict(backends), settings
        self.candidates = list(router.candidates)
        self.costs = candidate_costs(self.backends, self.candidates)
        if self.costs is None and settings.default_costs is not None:
            self.costs = np.asarray(settings.default_costs, dtype=np.float64)
        self.batcher = RouteBatcher(router, self.costs, settings.max_batch)
        self.client: httpx.AsyncClient | None = None
        self.started = time.monotonic()


def create_app(
    router: TrainedRouter, backends: Mapping[str, Backend], settings: ServerSettings | None = None
) -> FastAPI:
    """The FastAPI app; ``backends`` must hold every router candidate (``load_backends`` guarantees it)."""
    settings = settings or ServerSettings()
    missing = [c for c in router.candidates if c not in backends]
    if missing:
        raise LookaheadError(f"no backend for candidate(s) {', '.join(map(repr, missing))}")
    if getattr(router, "needs_responses", False):
        raise LookaheadError(
            f"a {router.kind!r} router reads the candidates' real responses; it cannot route new prompts"
        )
    state = _State(router, backends, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits) as client:
            state.client = client
            state.batcher.start()
            try:
                yield
            finally:
                await state.batcher.stop()

    app = FastAPI(title="lightning_lookahead router", version=__version__, lifespan=lifespan)
    app.state.lookahead = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            message = "missing or invalid API key (send `Authorization: Bearer <key>`)"
            raise ApiError(401, message, code="invalid_api_key")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "router_kind": state.router.kind,
            "candidates": state.candidates,
            "cost_aware": state.costs is not None,
            "uptime_s": round(time.monotonic() - state.started, 3),
            "routing_calls": state.batcher.batches,
        }

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models() -> dict[str, Any]:
        created = int(time.time())
        ids = [ROUTER_MODEL, *(state.candidates if settings.allow_direct else [])]
        return {
            "object": "list",
            "data": [{"id": i, "object": "model", "created": created, "owned_by": "lightning_lookahead"} for i in ids],
        }

    @app.post(
        "/v1/chat/completions",
        dependencies=[Depends(authorize)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
            }
        },
    )
    async def chat_completions(request: Request) -> Response:
        return await _chat(state, request)

    return app


async def _chat(state: _State, request: Request) -> Response:
    started = time.perf_counter()
    rid = request.headers.get(REQUEST_ID_HEADER, "")
    rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
    line = _LogLine(rid, started)
    try:
        payload = _parse(await request.body())
        req = ChatCompletionRequest.model_validate(payload)
        line.requested = req.model
        chosen, line.route_ms = await _choose(state, req)
        line.chosen = chosen
        backend = state.backends[chosen]
        forward = {**payload, "model": backend.upstream_model}
        headers = {MODEL_HEADER: chosen, REQUEST_ID_HEADER: rid}
        if req.stream:
            return await _stream(state, backend, forward, headers, line)
        return await _complete(state, backend, forward, headers, line)
    except ValidationError as exc:
        error = ApiError(400, _validation_message(exc), code="invalid_request")
        line.emit(error.status)
        return error.response({REQUEST_ID_HEADER: rid})
    except ClientDisconnect:
        line.emit(499, note="client disconnected")
        return Response(status_code=499)
    except ApiError as exc:
        line.emit(exc.status)
        return exc.response({REQUEST_ID_HEADER: rid, **({MODEL_HEADER: line.chosen} if line.chosen else {})})


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return payload


async def _choose(state: _State, req: ChatCompletionRequest) -> tuple[str, float]:
    """(chosen candidate, routing milliseconds)."""
    if not is_router_model(req.model):
        if state.settings.allow_direct and req.model in state.backends:
            return req.model, 0.0
        valid = [ROUTER_MODEL, "router:λ=<value>", *(state.candidates if state.settings.allow_direct else [])]
        raise ApiError(404, f"model {req.model!r} does not exist (valid: {', '.join(valid)})", code="model_not_found")
    try:
        lam = parse_router_model(req.model)
    except LookaheadError as exc:
        raise ApiError(400, str(exc), code="invalid_model") from None
    try:
        text = req.routing_text(state.settings.route_on)
    except LookaheadError as exc:
        raise ApiError(400, str(exc), code="no_user_message") from None
    if lam is not None and state.costs is None:
        raise ApiError(
            400,
            f"model {req.model!r} needs candidate costs, but this server's backends file sets no `cost`; "
            "use model 'router' or add a `cost` to every backend",
            code="costs_not_configured",
        )
    t0 = time.perf_counter()
    try:
        decision = await state.batcher.route(text, lam)
    except Exception as exc:
        log.exception("routing failed")
        raise ApiError(500, f"routing failed ({type(exc).__name__})", "server_error", "routing_failed") from None
    if decision.model not in state.backends:
        raise ApiError(500, f"router chose unknown model {decision.model!r}", "server_error", "routing_failed")
    return decision.model, (time.perf_counter() - t0) * 1000


def _upstream_headers(backend: Backend) -> dict[str, str]:
    headers = {"accept": "application/json, text/event-stream"}
    if backend.api_key:
        headers["authorization"] = f"Bearer {backend.api_key}"
    return headers


def _upstream_error(backend: Backend, exc: BaseException) -> ApiError:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return ApiError(
            504, f"backend for {backend.name} did not answer within {backend.timeout:g} s", "upstream_error", "timeout"
        )
    return ApiError(
        502, f"backend for {backend.name} is unreachable or broke off ({type(exc).__name__})", "upstream_error",
        "backend_unavailable",
    )  # fmt: skip


async def _complete(
    state: _State, backend: Backend, forward: dict[str, Any], headers: dict[str, str], line: _LogLine
) -> Response:
    assert state.client is not None
    try:
        with anyio.fail_after(backend.timeout):  # bounds the whole exchange, not only each read
            upstream = await state.client.post(
                backend.chat_url, json=forward, headers=_upstream_headers(backend), timeout=backend.timeout
            )
    except (TimeoutError, httpx.TransportError) as exc:
        raise _upstream_error(backend, exc) from None
    line.upstream = upstream.status_code
    if upstream.status_code >= 400:
        line.emit(upstream.status_code)
        return _passthrough(upstream, upstream.content, headers)
    return _rewrite_json(upstream.content, backend, headers, line)


def _passthrough(upstream: httpx.Response, content: bytes, headers: dict[str, str]) -> Response:
    """A backend's own error, status and body unchanged."""
    media_type = upstream.headers.get("content-type", "application/json")
    return Response(content, status_code=upstream.status_code, media_type=media_type, headers=headers)


def _rewrite_json(content: bytes, backend: Backend, headers: dict[str, str], line: _LogLine) -> Response:
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        message = f"backend for {backend.name} answered with no JSON object"
        raise ApiError(502, message, "upstream_error", "bad_upstream")
    data["model"] = backend.name
    line.emit(200)
    return JSONResponse(data, headers=headers)


async def _stream(
    state: _State, backend: Backend, forward: dict[str, Any], headers: dict[str, str], line: _LogLine
) -> Response:
    """Open the upstream stream first, so connection errors and error statuses still get a proper status code."""
    assert state.client is not None
    request = state.client.build_request(
        "POST", backend.chat_url, json=forward, headers=_upstream_headers(backend), timeout=backend.timeout
    )
    try:
        with anyio.fail_after(backend.timeout):
            upstream = await state.client.send(request, stream=True)
    except (TimeoutError, httpx.TransportError) as exc:
        raise _upstream_error(backend, exc) from None
    line.upstream = upstream.status_code
    if upstream.status_code >= 400 or not upstream.headers.get("content-type", "").startswith("text/event-stream"):
        try:
            with anyio.fail_after(backend.timeout):
                content = await upstream.aread()
        except (TimeoutError, httpx.TransportError) as exc:
            raise _upstream_error(backend, exc) from None
        finally:
            await upstream.aclose()
        if upstream.status_code >= 400:
            line.emit(upstream.status_code)
            return _passthrough(upstream, content, headers)
        return _rewrite_json(content, backend, headers, line)  # the backend ignored stream=true
    stream_headers = {**headers, "cache-control": "no-cache"}
    return StreamingResponse(_relay(upstream, backend, line), media_type="text/event-stream", headers=stream_headers)


async def _relay(upstream: httpx.Response, backend: Backend, line: _LogLine) -> AsyncIterator[bytes]:
    """Server-sent events from the backend, one event at a time, with each chunk's ``model`` set to the candidate.

    The status line is already sent, so a backend that stalls (per-read timeout) or breaks off mid-stream ends the
    stream with an OpenAI-style ``data: {"error": ...}`` event instead of hanging.
    """
    outcome = "ok"
    event: list[str] = []
    try:
        async for text in upstream.aiter_lines():
            if text:
                event.append(_rewrite_sse_line(text, backend.name))
            elif event:
                yield ("\n".join(event) + "\n\n").encode()
                event = []
        if event:
            yield ("\n".join(event) + "\n\n").encode()
    except httpx.TransportError as exc:
        error = _upstream_error(backend, exc)
        outcome = error.code or "error"
        yield f"data: {json.dumps(error_body(error.message, error.type, error.code))}\n\n".encode()
    finally:
        await upstream.aclose()
        line.emit(200, note=f"stream={outcome}")


def _rewrite_sse_line(text: str, model: str) -> str:
    if not text.startswith("data:"):
        return text
    payload = text[5:].strip()
    if not payload.startswith("{"):
        return text  # e.g. "data: [DONE]"
    try:
        chunk = json.loads(payload)
    except ValueError:
        return text
    if isinstance(chunk, dict) and "model" in chunk:
        chunk["model"] = model
        return "data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
    return text


class _LogLine:
    """One log line per request, written once: ids, models, timings and statuses; never headers, keys or prompts."""

    def __init__(self, request_id: str, started: float) -> None:
        self.request_id, self.started = request_id, started
        self.requested: str | None = None
        self.chosen: str | None = None
        self.route_ms = 0.0
        self.upstream: int | None = None
        self._done = False

    def emit(self, status: int, note: str = "") -> None:
        if self._done:
            return
        self._done = True
        total_ms = (time.perf_counter() - self.started) * 1000
        requested = (self.requested or "-")[:80]
        log.info(
            "request_id=%s requested=%r chosen=%s route_ms=%.1f upstream_status=%s status=%d total_ms=%.1f%s",
            self.request_id, requested, self.chosen or "-", self.route_ms, self.upstream or "-", status, total_ms,
            f" {note}" if note else "",
        )  # fmt: skip


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"invalid request: {where}: {first['msg']}{more}"


def _add_error_handlers(app: FastAPI) -> None:
    """Every error, including unknown paths and methods, in OpenAI's error format."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(str(exc.detail), code=code), status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run ``app`` with uvicorn until interrupted; one log line per request (uvicorn's access log is off)."""
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=5)
