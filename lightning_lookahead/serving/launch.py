"""Running the server: one process, or several uvicorn workers behind one port, each loading its own router.

``lookahead serve`` turns its options into a :class:`ServeSpec`. With one worker the app runs in this process;
with ``--workers N`` uvicorn's supervisor starts N fresh (spawned) processes that each import
``worker_app`` (an app factory) and read the spec from ``$LOOKAHEAD_SERVE_SPEC`` (JSON). Either way the router is
loaded in the app's lifespan, in a thread, by the process that serves with it: ``/health`` answers at once and
``/ready`` turns 200 once routing can start. With several workers prometheus_client's multiprocess mode is switched
on (``PROMETHEUS_MULTIPROC_DIR``, a fresh folder unless one is given) so any worker's ``/metrics`` reports them all.

SIGTERM stops accepting connections, lets in-flight requests finish for up to ``graceful_timeout`` seconds, and
exits 0. A router that fails to load ends the server with the error: ``error: ...`` and exit 2 from the CLI.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import write_atomic
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.serving.app import LoadedRouter, create_app
from lightning_lookahead.serving.metrics import MULTIPROC_ENV
from lightning_lookahead.serving.settings import ServeSpec, peek_candidates

log = logging.getLogger("lightning_lookahead.serving")

SPEC_ENV = "LOOKAHEAD_SERVE_SPEC"
APP_FACTORY = "lightning_lookahead.serving.launch:worker_app"
#: uvicorn's exit status for a worker that cannot start: its supervisor then stops instead of restarting it.
_STARTUP_FAILURE = 3


# --- loading (in the worker) ------------------------------------------------------------------------------------


def load_router(spec: ServeSpec) -> LoadedRouter:
    """The router, its backends and price-table costs; runs in the app's lifespan thread of each worker.

    The backends come from the document ``lookahead serve`` read once at start-up (``spec.backends_document``);
    only a spec that was never checked reads the file, once, here.
    """
    spec = spec.with_backends_read()
    candidates = peek_candidates(spec.checkpoint)
    if candidates is not None:  # a wrong backends file fails before the slow model load
        spec.load_backends(candidates)
    from lightning_lookahead.costs.request_costs import resolve_costs

    router = _load_model(spec)
    backends = spec.load_backends(router.candidates)
    backend_costs = {name: backend.cost for name, backend in backends.items()}
    # backend `cost`, else the price table where it names the candidate, else none: as `lookahead calibrate`
    costs = resolve_costs(
        router.candidates, backend_costs, router.response_tokens, spec.prices, backends_label=spec.backends
    )
    return LoadedRouter(router, backends, costs=costs)


def _load_model(spec: ServeSpec) -> Any:
    """An ONNX bundle loads the light router (no torch in the worker); anything else the torch one. With several
    workers on one host each gets its share of the cores (onnxruntime and torch would each take them all)."""
    from lightning_lookahead.bundle.hub import resolve_router_path
    from lightning_lookahead.bundle.layout import is_bundle
    from lightning_lookahead.bundle.router import THREADS_ENV
    from lightning_lookahead.inference.loading import load_router

    path = resolve_router_path(spec.checkpoint)  # once: a Hub id is looked up here, not again by the loader
    if not is_bundle(path):
        _share_cores(spec.workers)
    elif spec.workers > 1 and not os.environ.get(THREADS_ENV):
        os.environ[THREADS_ENV] = str(max(1, (os.cpu_count() or 1) // spec.workers))
    return load_router(path, device=spec.device, engine=spec.engine, what="lookahead serve")


def _share_cores(workers: int) -> None:
    """With several workers on one host, give each its share of the cores (torch would take them all in each)."""
    if workers <= 1 or os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def build_app(spec: ServeSpec, on_load_error: Callable[[str], None] | None = None):  # -> FastAPI
    """The app of one worker: settings from the spec, the router loaded in its lifespan by ``spec.loader``."""
    try:
        settings = spec.settings()
        load = _import_loader(spec.loader)
    except LookaheadError as exc:  # surfaces through the load-failure path (a factory must not raise)
        message = str(exc)

        def failing() -> LoadedRouter:
            raise LookaheadError(message)

        return create_app(loader=failing, on_load_error=on_load_error)
    return create_app(settings=settings, loader=lambda: load(spec), on_load_error=on_load_error)


def _import_loader(target: str) -> Callable[[ServeSpec], LoadedRouter]:
    module, _, name = target.partition(":")
    try:
        loader = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise LookaheadError(f"router loader {target!r} cannot be imported ({exc})") from None
    if not callable(loader):
        raise LookaheadError(f"router loader {target!r} is not a function")
    return loader


def worker_app():  # -> FastAPI
    """uvicorn's app factory in each worker process (``--workers N``): the spec comes from ``$LOOKAHEAD_SERVE_SPEC``."""
    spec = ServeSpec.from_json(os.environ[SPEC_ENV])
    configure_logging(spec.log_level)

    def fail(message: str) -> None:
        # Tell the parent why, then stop with uvicorn's startup-failure status so its supervisor stops too
        # (instead of restarting a worker that would fail the same way). Nothing is in flight: /v1/* was 503.
        if spec.failure_dir:
            with contextlib.suppress(OSError):
                write_atomic(Path(spec.failure_dir) / f"{os.getpid()}.txt", message)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(_STARTUP_FAILURE)

    return build_app(spec, on_load_error=fail)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))  # one line per request is ours


# --- running (in the parent) ------------------------------------------------------------------------------------


def serve(spec: ServeSpec) -> None:
    """Serve until SIGTERM/SIGINT; LookaheadError if the router could not be loaded or the port not bound."""
    spec = spec.checked()  # as it is when ``lookahead serve`` checked it already
    configure_logging(spec.log_level)
    if spec.workers == 1:
        _serve_here(spec)
    else:
        _serve_workers(spec)


def _uvicorn_options(spec: ServeSpec) -> dict[str, Any]:
    return {
        "host": spec.host,
        "port": spec.port,
        "log_level": spec.log_level,
        "access_log": False,  # one line per request from lightning_lookahead.serving instead
        "timeout_graceful_shutdown": spec.graceful_timeout,
        "lifespan": "on",
    }


def _serve_here(spec: ServeSpec) -> None:
    import uvicorn

    failure: list[str] = []
    server: uvicorn.Server | None = None

    def on_load_error(message: str) -> None:
        failure.append(message)
        if server is not None:
            server.should_exit = True

    config = uvicorn.Config(build_app(spec, on_load_error), **_uvicorn_options(spec))
    server = uvicorn.Server(config)
    with _sigterm_exits_cleanly(server):
        try:
            server.run()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise LookaheadError(f"could not serve on {spec.host}:{spec.port} (see the log above)") from None
    if failure:
        raise LookaheadError(failure[0])


@contextmanager
def _sigterm_exits_cleanly(server: Any) -> Iterator[None]:
    """After its graceful shutdown, uvicorn re-raises SIGTERM with the previous handler: make that a no-op, so
    ``lookahead serve`` exits 0 (a SIGTERM before uvicorn's own handler is installed asks the server to stop)."""
    if sys.platform == "win32":
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_workers(spec: ServeSpec) -> None:
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="lookahead-serve-") as tmp:
        metrics_dir = _metrics_dir(Path(tmp))
        failures = Path(tmp) / "load-failures"
        worker_spec = replace(spec, failure_dir=str(failures))
        previous = {name: os.environ.get(name) for name in (SPEC_ENV, MULTIPROC_ENV)}
        os.environ[SPEC_ENV] = worker_spec.to_json()  # inherited by the spawned workers
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
        try:
            uvicorn.run(APP_FACTORY, factory=True, workers=spec.workers, **_uvicorn_options(spec))
        except SystemExit as exc:
            if exc.code not in (0, None) and not _first_failure(failures):
                raise LookaheadError(f"could not serve on {spec.host}:{spec.port} (see the log above)") from None
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        failure = _first_failure(failures)
        if failure:
            raise LookaheadError(failure)


def _first_failure(folder: Path) -> str | None:
    reports = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    return reports[0].read_text(encoding="utf-8") if reports else None


def _metrics_dir(tmp: Path) -> Path:
    """``$PROMETHEUS_MULTIPROC_DIR`` when set (emptied of old ``*.db`` files, as prometheus_client requires), else a
    fresh folder removed on exit."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        path = tmp / "metrics"
        path.mkdir()
        return path
    path = Path(given)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    return path
