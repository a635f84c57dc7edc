"""One record per chat request: what was asked, what was chosen, how long it took; one log line, metrics labels."""

from __future__ import annotations

import logging
import re
import time
import uuid

log = logging.getLogger("lightning_lookahead.serving")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id(sent: str | None) -> str:
    """The client's ``x-request-id`` when it is a plain token, else a new one."""
    return sent if sent and _REQUEST_ID.match(sent) else uuid.uuid4().hex


class RequestLog:
    """Written once per request: ids, models, timings and statuses; never headers, keys or prompts."""

    def __init__(self, rid: str, started: float | None = None) -> None:
        self.request_id = rid
        self.started = time.perf_counter() if started is None else started
        self.requested: str | None = None
        #: Bounded ``route`` label (router, router:lambda, router:<name>, direct, unknown, unrouted).
        self.route = "unrouted"
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
