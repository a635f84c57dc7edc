"""The serve options, declared once: each field's default, help and check are what ``lookahead serve`` offers.

:class:`ServeOptions` holds the options a server process acts on and :class:`ServerSettings` adds what only code
sets (the key itself, the connection pool, fallback costs); :class:`ServeSpec` adds where the router and backends
are and how to run the processes. ``commands/serve.py`` builds its flags from these fields (:func:`cli_options`), so
a default or a help text lives in one place and a bad value fails in one ``__post_init__``, with the flag's name.
No fastapi or torch here: the command-line parser reads this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lightning_lookahead.backends import DEFAULT_TIMEOUT_S, Backend, backends_from, read_backends
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE, ENGINES

if TYPE_CHECKING:
    import numpy as np

RouteOn = Literal["first", "last", "all"]
ROUTE_ON: tuple[str, ...] = ("first", "last", "all")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
DEFAULT_PORT = 8000
MIB = 1024 * 1024


def cli(help: str = "", **keywords: Any) -> dict[str, Any]:
    """A field's metadata that makes it a ``lookahead serve`` flag: ``help`` (``{default}`` is filled in), and argparse
    keywords (``choices``, ``metavar``, ``type``; ``cli_default`` when the flag's default differs, e.g. --port's)."""
    return {"help": help, **keywords}


def positive(value: float, flag: str) -> None:
    if not value > 0:
        raise LookaheadError(f"{flag} must be positive, got {value}")


@dataclass(frozen=True)
class ServeOptions:
    """What one server process acts on; every field is a ``lookahead serve`` flag."""

    #: Counted as the body arrives (so a missing or false Content-Length does not help).
    max_body_bytes: int = field(default=4 * MIB, metadata=cli("largest request body (default 4 MiB)"))
    route_on: RouteOn = field(
        default="first", metadata=cli("user turn(s) to route on (default {default})", choices=ROUTE_ON)
    )
    #: Most prompts in one routing call when requests arrive together.
    max_batch: int = field(default=32, metadata=cli("most prompts in one routing call (default {default})"))
    max_in_flight: int = field(
        default=256,
        metadata=cli(
            "chat requests handled at once per worker; more get 503 overloaded + Retry-After (default {default})"
        ),
    )
    #: Bounds the routing delay when the router is the bottleneck.
    max_queue: int = field(
        default=128,
        metadata=cli(
            "prompts waiting to be routed per worker; more get 503 overloaded + Retry-After (default {default})"
        ),
    )
    #: ``/ready`` waits for all of them in multiprocess mode.
    workers: int = field(
        default=1, metadata=cli("worker processes behind the port, each with its own router (default {default})")
    )

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch", "max_in_flight", "max_queue", "workers"):
            positive(getattr(self, name), flag(name))
        if self.route_on not in ROUTE_ON:
            raise LookaheadError(f"--route-on must be one of {', '.join(ROUTE_ON)}, got {self.route_on!r}")

    def options(self) -> dict[str, Any]:
        """This object's :class:`ServeOptions` fields, to build another settings object from."""
        return {f.name: getattr(self, f.name) for f in fields(ServeOptions)}


@dataclass(frozen=True)
class ServerSettings(ServeOptions):
    """Server-wide options of one app; per-backend timeouts live in backends.yaml."""

    #: Bearer token required on /v1/* (None: no auth). /health, /ready and /metrics stay open for probes/scrapers.
    api_key: str | None = field(default=None, repr=False)
    #: Whether ``model: <candidate>`` skips routing and goes straight to that candidate's backend.
    allow_direct: bool = True
    #: Connection pool size towards all backends together.
    max_connections: int = 512
    #: (C,) expected USD per 1,000 requests for the candidates whose backend sets no ``cost`` (NaN: none); None: no
    #: such fallback. Cost-aware models are refused (400 ``costs_not_configured``) unless every candidate has a cost.
    default_costs: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class ServeSpec(ServeOptions):
    """Everything a worker needs to build its app, as plain JSON values (secrets stay in the environment)."""

    checkpoint: str = field(metadata=cli("run directory, its export/ or a .ckpt", metavar="RUN_DIR"))
    backends: str = field(metadata=cli("YAML like examples/backends.yaml", metavar="FILE", type=Path))
    host: str = field(default="127.0.0.1", metadata=cli("bind address (default {default})"))
    port: int = field(
        default=DEFAULT_PORT,
        metadata=cli("port (default: the PORT environment variable when set, else {default})", cli_default=None),
    )
    #: Name of the environment variable holding the bearer token (never the token itself).
    api_key_env: str | None = field(
        default=None, metadata=cli("require `Bearer $NAME` on /v1/* (optional)", metavar="NAME")
    )
    backend_timeout: float = field(
        default=DEFAULT_TIMEOUT_S, metadata=cli("seconds per backend call unless the YAML sets one")
    )
    device: str = field(default="cpu", metadata=cli("torch device of the router (default {default})"))
    engine: str = field(
        default=DEFAULT_ENGINE, metadata=cli("routing forward path (default {default})", choices=ENGINES)
    )
    prices: str | None = field(
        default=None,
        metadata=cli(
            "price YAML for router:λ=... for the candidates whose backend sets no cost (default: the shipped table, "
            "with the run's mean response lengths); candidates priced nowhere only lose router:λ=...",
            type=Path,
        ),
    )
    graceful_timeout: float = field(
        default=30.0,
        metadata=cli(
            "on SIGTERM, how long in-flight requests may take to finish before the server exits (default {default:g})",
            metavar="SECONDS",
        ),
    )
    log_level: str = field(default="info", metadata=cli("", choices=LOG_LEVELS))
    #: ``module:function`` taking this spec and returning a LoadedRouter, run in each worker's lifespan thread.
    loader: str = "lightning_lookahead.serving.launch:load_router"
    #: Folder where a worker writes why its router failed to load (set by ``serve`` for workers > 1).
    failure_dir: str | None = None
    #: The backends file as read, once, by :meth:`checked` (None until then): workers build their backends from it.
    backends_document: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self.backend_timeout, "--backend-timeout")
        if self.graceful_timeout < 0:
            raise LookaheadError(f"--graceful-timeout must be ≥ 0, got {self.graceful_timeout}")
        if self.engine not in ENGINES:
            raise LookaheadError(f"--engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.log_level not in LOG_LEVELS:
            raise LookaheadError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")

    def checked(self) -> ServeSpec:
        """This spec with its backends file read (the only read at start-up), after the checks that need the
        filesystem or the environment; one-line errors before any process starts or any model loads. A spec that
        carries its backends document was checked already and is returned as it is."""
        if self.backends_document is not None:
            return self
        if not Path(self.backends).is_file():
            raise LookaheadError(f"{self.backends}: backends file not found (see examples/backends.yaml)")
        self.api_key()
        if self.prices is not None:  # a missing or broken price file fails now, not once the router has loaded
            from lightning_lookahead.costs.prices import load_prices

            load_prices(self.prices)
        spec = self.with_backends_read()
        candidates = peek_candidates(self.checkpoint)
        if candidates is not None:  # an export: a backends file that misses a candidate fails before serving
            spec.load_backends(candidates)
        return spec

    def with_backends_read(self) -> ServeSpec:
        """This spec carrying its backends document: the file is read here unless it was already."""
        if self.backends_document is not None:
            return self
        return replace(self, backends_document=read_backends(self.backends))

    def load_backends(self, candidates: list[str]) -> dict[str, Backend]:
        """Each candidate's Backend, from the document read once (:meth:`with_backends_read`)."""
        document = self.with_backends_read().backends_document
        assert document is not None
        return backends_from(document, self.backends, candidates, default_timeout=self.backend_timeout)

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LookaheadError(f"--api-key-env {self.api_key_env}: that environment variable is not set or empty")
        return key

    def settings(self) -> ServerSettings:
        return ServerSettings(api_key=self.api_key(), **self.options())

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> ServeSpec:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def cli_options() -> Iterator[tuple[str, dict[str, Any]]]:
    """(flag, argparse keywords) of every :class:`ServeSpec` field that is a flag, in declaration order."""
    ordered: list[Field[Any]] = sorted(
        (f for f in fields(ServeSpec) if "help" in f.metadata), key=lambda f: f.default is not MISSING
    )
    for f in ordered:
        meta = dict(f.metadata)
        required = f.default is MISSING
        default = meta.pop("cli_default", None if required else f.default)
        kind = meta.pop("type", None) or (type(f.default) if f.default not in (MISSING, None) else str)
        text = meta.pop("help").format(default=f.default)
        keywords = {"default": default, "type": kind, "help": text or None, **meta}
        if required:
            keywords = {**keywords, "required": True}
            del keywords["default"]
        yield flag(f.name), keywords


def peek_candidates(checkpoint: str) -> list[str] | None:
    """The candidates an export's ``router.json`` lists, read without torch (None for a .ckpt or anything odd)."""
    root = Path(checkpoint).expanduser()
    for meta in (root / "router.json", root / "export" / "router.json"):
        if meta.is_file():
            try:
                candidates = json.loads(meta.read_text(encoding="utf-8")).get("candidates")
            except (ValueError, UnicodeDecodeError, AttributeError):
                return None
            return [str(c) for c in candidates] if isinstance(candidates, list) else None
    return None
