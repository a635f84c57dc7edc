"""The routing server: an OpenAI-compatible ``/v1/chat/completions`` that routes, forwards and relays.

Each request is routed (``model: router``, ``router:λ=<value>`` or a named calibration ``router:<name>``), forwarded
to the chosen candidate's OpenAI-compatible backend with ``model`` replaced by that backend's own model name, and the
backend's answer is returned with the chosen candidate in the ``model`` field and the ``x-lookahead-model`` header.
Failures never hang: every backend call is bounded (504), an unreachable or broken backend is a 502, a backend's own
4xx/5xx is passed through with its body, and an overloaded server sheds requests (503 + Retry-After). The router can
be loaded in the app's lifespan (``loader=``), in a thread, so ``/health`` answers at once and ``/ready`` turns 200
when routing can start. See docs/serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx
import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from lightning_lookahead.backends import COST_UNIT_REQUESTS, Backend
from lightning_lookahead.costs.request_costs import CandidateCosts
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.calibrations import load_calibrations
from lightning_lookahead.serving.batcher import QueueFull, RouteBatcher
from lightning_lookahead.serving.errors import RETRY_AFTER_NOT_READY_S, ApiError, error_body, overloaded
from lightning_lookahead.serving.metrics import ServerMetrics
from lightning_lookahead.serving.middleware import LOG_SCOPE_KEY, AdmissionMiddleware, BodyLimitMiddleware
from lightning_lookahead.serving.requestlog import REQUEST_ID_HEADER, RequestLog, request_id
from lightning_lookahead.serving.routing import UNKNOWN, ModelCatalog, Target
from lightning_lookahead.serving.schemas import ChatCompletionRequest, LookaheadOptions
from lightning_lookahead.serving.settings import ServerSettings
from lightning_lookahead.serving.upstream import Forwarder
from lightning_lookahead.version import __version__

if TYPE_CHECKING:
    from lightning_lookahead.inference.router import RouteDecision, TrainedRouter

log = logging.getLogger("lightning_lookahead.serving")

MODEL_HEADER = "x-lookahead-model"
#: Request header that opts in to per-candidate scores; the answer then carries them in ``SCORES_HEADER``.
RETURN_SCORES_HEADER = "x-lookahead-return-scores"
SCORES_HEADER = "x-lookahead-scores"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class LoadedRouter:
    """What a loader hands the app: the router, every candidate's backend, and the candidates' costs.

    ``costs`` is every candidate's cost as ``lookahead serve`` resolves it (backend ``cost``, else the price table);
    without it, a backend's ``cost`` applies, else ``default_costs`` (C,) (NaN: none), else the settings' own.
    """

    router: TrainedRouter
    backends: Mapping[str, Backend]
    default_costs: np.ndarray | None = None
    costs: CandidateCosts | None = None


RouterLoader = Callable[[], LoadedRouter]


class _State:
    """Everything one app holds; the router part is filled in by ``install`` (at once, or once a loader is done)."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.router: TrainedRouter | None = None
        self.backends: dict[str, Backend] = {}
        self.candidates: list[str] = []
        self.costs: np.ndarray | None = None
        self.catalog: ModelCatalog | None = None
        self.batcher: RouteBatcher | None = None
        self.forwarder: Forwarder | None = None
        self.load_error: str | None = None
        self.in_flight = 0
        self.started = time.monotonic()
        #: Loads the router in the lifespan (None: it was installed when the app was made).
        self.loader: RouterLoader | None = None
        self.on_load_error: Callable[[str], None] | None = None

    def install(self, loaded: LoadedRouter) -> None:
        """Check and adopt a loaded router (LookaheadError for a mismatch); ``start`` begins routing."""
        router, backends = loaded.router, dict(loaded.backends)
        missing = [c for c in router.candidates if c not in backends]
        if missing:
            raise LookaheadError(f"no backend for candidate(s) {', '.join(map(repr, missing))}")
        if getattr(router, "needs_responses", False):
            raise LookaheadError(
                f"a {router.kind!r} router reads the candidates' real responses; it cannot route new prompts"
            )
        candidates = list(router.candidates)
        default = loaded.default_costs if loaded.default_costs is not None else self.settings.default_costs
        priced = loaded.costs if loaded.costs is not None else _layered_costs(candidates, backends, default)
        if priced.candidates != tuple(candidates):
            raise LookaheadError(f"costs for {list(priced.candidates)}, but the router scores {candidates}")
        costs = priced.vector()
        calibrations = load_calibrations(getattr(router, "home", None), candidates)
        catalog = ModelCatalog(candidates, costs, calibrations, self.settings.allow_direct, priced)
        catalog.log_costs()
        self.batcher = RouteBatcher(
            router,
            self.settings.max_batch,
            self.settings.max_queue,
            on_batch=self.metrics.route_batch_size.observe,
            on_depth=self.metrics.queue_depth.set,
        )
        self.router, self.backends, self.candidates, self.costs, self.catalog = (
            router, backends, candidates, costs, catalog
        )  # fmt: skip

    def start(self) -> None:
        assert self.batcher is not None
        self.batcher.start()
        self.metrics.ready.set(1)

    async def stop(self) -> None:
        self.metrics.ready.set(0)
        if self.batcher is not None:
            await self.batcher.stop()

    @property
    def ready(self) -> bool:
        return self.batcher is not None and self.batcher.running and self.forwarder is not None

    @property
    def not_ready_reason(self) -> str:
        if self.load_error is not None:
            return f"the router failed to load: {self.load_error}"
        return "the router is still loading; retry shortly"

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    def count_error(self, code: str) -> None:
        self.metrics.errors.labels(code).inc()


def create_app(
    router: TrainedRouter | None = None,
    backends: Mapping[str, Backend] | None = None,
    settings: ServerSettings | None = None,
    *,
    loader: RouterLoader | None = None,
    on_load_error: Callable[[str], None] | None = None,
) -> FastAPI:
    """The FastAPI app, from a loaded ``router`` and its ``backends`` (checked now), or from a ``loader`` that the
    app's lifespan runs in a thread (``/ready`` answers 503 until it is done; ``on_load_error`` hears a failure)."""
    settings = settings or ServerSettings()
    if (router is None) == (loader is None) or (router is not None and backends is None):
        raise ValueError("create_app needs a router and its backends, or a loader")
    state = _State(settings, ServerMetrics())
    state.loader, state.on_load_error = loader, on_load_error
    if router is not None:
        assert backends is not None
        state.install(LoadedRouter(router, backends))
    app = FastAPI(title="lightning_lookahead router", version=__version__, lifespan=_lifespan)
    app.state.lookahead = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, on_refuse=state.count_error)
    app.add_middleware(AdmissionMiddleware, state=state)  # outermost: refuses before any body is read
    _add_error_handlers(app, state)
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/ready", ready, methods=["GET"])
    app.add_api_route("/metrics", prometheus_metrics, methods=["GET"])
    app.add_api_route("/v1/models", models, methods=["GET"], dependencies=[Depends(authorize)])
    app.add_api_route(
        "/v1/chat/completions",
        chat_completions,
        methods=["POST"],
        dependencies=[Depends(authorize)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
            }
        },
    )
    return app


def _state(request: Request) -> _State:
    return request.app.state.lookahead


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The backends' connection pool for the app's life; the router loaded in a thread (or started at once)."""
    state: _State = app.state.lookahead
    limits = httpx.Limits(max_connections=state.settings.max_connections, max_keepalive_connections=64)
    loading: asyncio.Task[None] | None = None
    async with httpx.AsyncClient(limits=limits) as client:
        state.forwarder = Forwarder(client, state.metrics, state.count_error)
        if state.loader is None:
            state.start()
        else:
            loading = asyncio.get_running_loop().create_task(_load(state, state.loader, state.on_load_error))
        try:
            yield
        finally:
            if loading is not None:
                loading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loading
            await state.stop()
            state.metrics.close()


def authorize(request: Request) -> None:
    """``Authorization: Bearer <key>`` on /v1/* when the server has a key (401 otherwise)."""
    api_key = _state(request).settings.api_key
    if api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        message = "missing or invalid API key (send `Authorization: Bearer <key>`)"
        raise ApiError(401, message, code="invalid_api_key")


async def health(request: Request) -> Response:
    """Liveness: answers at once, also while the router loads; 503 only when loading failed."""
    state = _state(request)
    router_ = state.router
    body = {
        "status": "failed" if state.load_error else "ok",
        "ready": state.ready,
        "pid": os.getpid(),
        "router_kind": None if router_ is None else router_.kind,
        "engine": getattr(router_, "engine", None),
        "candidates": state.candidates,
        "calibrations": [] if state.catalog is None else sorted(state.catalog.calibrations),
        "cost_aware": state.costs is not None,
        "uptime_s": round(time.monotonic() - state.started, 3),
        "routing_calls": 0 if state.batcher is None else state.batcher.batches,
        "in_flight": state.in_flight,
        "queue_depth": 0 if state.batcher is None else state.batcher.depth,
    }
    if state.load_error:
        body["error"] = state.load_error
    return JSONResponse(body, status_code=503 if state.load_error else 200)


async def ready(request: Request) -> Response:
    """Readiness: 200 once the router is loaded and routing runs (in every worker), else 503 (no traffic yet)."""
    state = _state(request)
    expected = state.settings.workers
    workers = {"workers": expected}
    if state.metrics.multiprocess:  # one port, several processes: ready once every one of them is
        workers["workers_ready"] = state.metrics.ready_workers()
    if state.ready and workers.get("workers_ready", expected) >= expected:
        return JSONResponse({"status": "ready", **workers})
    status = "failed" if state.load_error else "loading"
    body = {"status": status, **workers, **({"error": state.load_error} if state.load_error else {})}
    return JSONResponse(body, status_code=503, headers={"retry-after": str(RETRY_AFTER_NOT_READY_S)})


async def prometheus_metrics(request: Request) -> Response:
    content, media_type = _state(request).metrics.render()
    return Response(content, media_type=media_type)


async def models(request: Request) -> dict[str, Any]:
    """``/v1/models``: router, router:<calibration>..., then the candidates (with a calibration's detail)."""
    catalog = _state(request).catalog
    assert catalog is not None  # admission answers 503 until ready
    created = int(time.time())
    data = []
    for model_id in catalog.ids():
        entry: dict[str, Any] = {"id": model_id, "object": "model", "created": created}
        entry["owned_by"] = "lightning_lookahead"
        detail = catalog.describe(model_id)
        if detail is not None:
            entry["lookahead"] = detail
        data.append(entry)
    return {"object": "list", "data": data}


async def chat_completions(request: Request) -> Response:
    return await _chat(_state(request), request)


def _layered_costs(
    candidates: list[str], backends: Mapping[str, Backend], default: np.ndarray | None
) -> CandidateCosts:
    """Each candidate's backend ``cost``, else its entry in ``default`` (USD per 1,000 requests; NaN: none)."""
    from_backends = {c: COST_UNIT_REQUESTS * b.cost for c in candidates if (b := backends[c]).cost is not None}
    fallback = {}
    if default is not None:
        values = np.asarray(default, dtype=np.float64)
        if values.shape != (len(candidates),):
            raise LookaheadError(f"default costs: {values.shape} values for {len(candidates)} candidates")
        fallback = {c: float(v) for c, v in zip(candidates, values, strict=True) if np.isfinite(v)}
    layers = [(from_backends, "the backends' `cost`"), (fallback, "the server's default costs")]
    return CandidateCosts.layered(candidates, layers, default_reason="no `cost` in the backends file")


async def _load(state: _State, loader: RouterLoader, on_load_error: Callable[[str], None] | None) -> None:
    """Run the loader in a thread (the event loop keeps answering /health), then start routing."""
    started = time.perf_counter()
    try:
        await anyio.to_thread.run_sync(lambda: state.install(loader()), abandon_on_cancel=True)
    except Exception as exc:
        if isinstance(exc, LookaheadError):
            message = str(exc)
            log.error("the router could not be loaded: %s", message)
        else:
            message = f"{type(exc).__name__}: {exc}"
            log.exception("the router could not be loaded")
        state.load_error = message
        if on_load_error is not None:
            on_load_error(message)
        return
    state.start()
    assert state.router is not None
    log.info(
        "router loaded in %.1f s (%s, %d candidates, engine %s); ready",
        time.perf_counter() - started, state.router.kind, len(state.candidates), getattr(state.router, "engine", "-"),
    )  # fmt: skip


async def _chat(state: _State, request: Request) -> Response:
    line = request.scope.get(LOG_SCOPE_KEY)
    if not isinstance(line, RequestLog):
        line = RequestLog(request_id(request.headers.get(REQUEST_ID_HEADER)))
    try:
        payload = _parse(await request.body())
        req = ChatCompletionRequest.model_validate(payload)
        line.requested = req.model
        want_scores = _wants_scores(request.headers.get(RETURN_SCORES_HEADER), req.lookahead)
        assert state.catalog is not None and state.forwarder is not None  # admission answers 503 until ready
        line.route = UNKNOWN
        target = state.catalog.resolve(req.model)
        line.route = target.route
        chosen, decision = await _choose(state, req, target, line)
        line.chosen = chosen
        backend = state.backends[chosen]
        forward = {k: v for k, v in payload.items() if k != "lookahead"}  # the server's own options stay here
        forward["model"] = backend.upstream_model
        if "stream" in forward:
            forward["stream"] = req.stream  # the validated value, the one this server acts on
        headers = {MODEL_HEADER: chosen, REQUEST_ID_HEADER: line.request_id}
        extra = None
        if want_scores:
            info = _scores(chosen, decision, line.route_ms)
            headers[SCORES_HEADER] = json.dumps(info, separators=(",", ":"))
            extra = {"lookahead": info}
        if req.stream:
            return await state.forwarder.stream(backend, forward, headers, line, extra)
        return await state.forwarder.complete(backend, forward, headers, line, extra)
    except ValidationError as exc:
        return _error(state, ApiError(400, _validation_message(exc), code="invalid_request"), line)
    except ClientDisconnect:
        line.emit(499, note="client disconnected")
        return Response(status_code=499)
    except ApiError as exc:
        return _error(state, exc, line)


def _error(state: _State, error: ApiError, line: RequestLog) -> Response:
    state.count_error(error.code or "error")
    line.emit(error.status)
    return error.response({REQUEST_ID_HEADER: line.request_id, **({MODEL_HEADER: line.chosen} if line.chosen else {})})


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return payload


def _wants_scores(header: str | None, options: LookaheadOptions | None) -> bool:
    """Scores only on request: the header says true, or the body's ``lookahead.return_scores`` does."""
    if header is not None:
        value = header.strip().lower()
        if value in _TRUE:
            return True
        if value not in _FALSE:
            message = f"header {RETURN_SCORES_HEADER}: expected true or false, got {header[:40]!r}"
            raise ApiError(400, message, code="invalid_request")
    return options is not None and options.return_scores


def _scores(chosen: str, decision: RouteDecision | None, route_ms: float) -> dict[str, Any]:
    """Every candidate's raw score and top-choice probability (null for a candidate asked for directly)."""
    return {
        "model": chosen,
        "scores": None if decision is None else {k: float(v) for k, v in decision.scores.items()},
        "probabilities": None if decision is None else {k: float(v) for k, v in decision.probabilities.items()},
        "route_ms": round(route_ms, 3),
    }


async def _choose(
    state: _State, req: ChatCompletionRequest, target: Target, line: RequestLog
) -> tuple[str, RouteDecision | None]:
    """(chosen candidate, the routing decision; None when the candidate was asked for by name)."""
    if target.candidate is not None:
        return target.candidate, None
    assert target.rule is not None and state.batcher is not None
    try:
        text = req.routing_text(state.settings.route_on)
    except LookaheadError as exc:
        raise ApiError(400, str(exc), code="no_user_message") from None
    t0 = time.perf_counter()
    try:
        decision = await state.batcher.route(text, target.rule)
    except QueueFull:
        raise overloaded(f"{state.settings.max_queue} prompts waiting to be routed") from None
    except Exception as exc:
        log.exception("routing failed")
        raise ApiError(500, f"routing failed ({type(exc).__name__})", "server_error", "routing_failed") from None
    elapsed = time.perf_counter() - t0
    line.route_ms = elapsed * 1000
    state.metrics.route_seconds.observe(elapsed)
    if decision.model not in state.backends:
        raise ApiError(500, f"router chose unknown model {decision.model!r}", "server_error", "routing_failed")
    return decision.model, decision


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"invalid request: {where}: {first['msg']}{more}"


def _add_error_handlers(app: FastAPI, state: _State) -> None:
    """Every error, including unknown paths and methods, in OpenAI's error format (and counted)."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        state.count_error(exc.code or "error")
        return exc.response()

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        state.count_error(code or f"http_{exc.status_code}")
        return JSONResponse(error_body(str(exc.detail), code=code), status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
