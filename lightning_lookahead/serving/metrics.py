"""Prometheus metrics of one routing server (``GET /metrics``), correct with one process or several behind one port.

Each app owns a ``CollectorRegistry`` (tests build many apps in one process). With several worker processes
(``lookahead serve --workers N``) prometheus_client's multiprocess mode is on: ``PROMETHEUS_MULTIPROC_DIR`` is set
before the workers start, every process writes its values to files there, and a scrape of any worker merges them
all (counters and histograms summed, gauges summed over live processes). docs/serving.md lists the metrics.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import values as prometheus_values

from lightning_lookahead.serving.errors import ERROR_CODES

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: routing (queue wait + one batched forward pass) takes milliseconds on a GPU, up to seconds on a busy CPU.
ROUTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds: an LLM answers in tens of milliseconds (first byte) to minutes (a long generation).
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def multiprocess_mode() -> bool:
    """Whether prometheus_client writes values to files (it decides when first imported, from the environment)."""
    return prometheus_values.ValueClass is not prometheus_values.MutexValue


class ServerMetrics:
    """Every metric the server records, registered in this app's own registry."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "lookahead_requests",
            "Chat-completion requests answered, by chosen candidate (none: not routed), requested kind and status.",
            ["model", "route", "status"],
            registry=r,
        )
        self.errors = Counter(
            "lookahead_errors", "Error answers and mid-stream errors, by OpenAI error code.", ["code"], registry=r
        )
        self.route_seconds = Histogram(
            "lookahead_route_seconds",
            "Routing time per request: waiting for a batch plus the batched routing call.",
            buckets=ROUTE_BUCKETS,
            registry=r,
        )
        self.route_batch_size = Histogram(
            "lookahead_route_batch_size",
            "Prompts per routing call (micro-batching).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.upstream_headers_seconds = Histogram(
            "lookahead_upstream_headers_seconds",
            "Time from forwarding a request to the backend's response headers, by candidate.",
            ["model"],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "lookahead_upstream_seconds",
            "Time from forwarding a request to the end of the backend's answer (the last chunk when streaming).",
            ["model"],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "lookahead_in_flight_requests",
            "Chat-completion requests being handled now (routing, forwarding or streaming).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "lookahead_route_queue_depth",
            "Prompts waiting for a routing call.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ready = Gauge(
            "lookahead_ready",
            "1 once the router has loaded and the batcher runs (one series per worker in multiprocess mode).",
            registry=r,
            multiprocess_mode="liveall",
        )
        for code in ERROR_CODES:
            self.errors.labels(code)  # a zero series per code from the start
        if not self.multiprocess:  # process_* (memory, CPU, open files); multiprocess mode cannot merge these
            ProcessCollector(registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type: this process's registry, or every worker's files merged."""
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def ready_workers(self) -> int:
        """Worker processes whose ``lookahead_ready`` is 1, from the shared files (multiprocess mode only).

        A worker that was killed (not stopped) leaves its file behind and still counts until the folder is wiped.
        """
        from prometheus_client.multiprocess import MultiProcessCollector

        for metric in MultiProcessCollector(None).collect():
            if metric.name == "lookahead_ready":
                return sum(1 for sample in metric.samples if sample.value == 1)
        return 0

    def close(self) -> None:
        """Drop this process's live gauges from the shared files (a worker that exits no longer counts as in flight)."""
        if self.multiprocess:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())
