"""Prometheus metrics: what the service counts (requests, the pool and its queue, mapped
failures), what counts requests (told of each by app.logs.RequestLogMiddleware), and GET /metrics.

With several worker processes (WEB_CONCURRENCY > 1) every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (the image sets it) and a scrape, whichever worker answers it, adds up
the files of all of them: one scrape reports the whole container."""

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.types import Scope

from app.config import Settings
from app.logs import RequestObserver

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
# Request durations of an API: a read by id takes a few milliseconds, DB_POOL_TIMEOUT and
# DB_STATEMENT_TIMEOUT end the slowest at seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Labels take bounded values only: any other method is "other", any unmatched path one label
# (app.logs.UNMATCHED_ROUTE).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TOO_MANY_CONNECTIONS = "53300"  # the SQLSTATE
FAILURE_KINDS = ("unavailable", "statement_timeout", "too_many_connections", "pool_timeout")
ENGINES = ("primary", "replica")


@dataclass(frozen=True)
class Metrics:
    """Every metric the service exports, made once per process (see `metrics`)."""

    requests: Counter
    request_duration: Histogram
    requests_in_flight: Gauge
    pool_size: Gauge
    pool_in_use: Gauge
    connections_opened: Counter
    connection_waiting: Gauge
    connection_wait: Histogram
    failures: Counter
    replica_configured: Gauge
    replica_in_use: Gauge
    reads: Counter
    reads_after_write: Counter


def multiprocess_directory() -> Path | None:
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    return Path(directory) if directory else None


@cache
def metrics() -> Metrics:
    """The process's metrics. In multiprocess mode the files a former process of the same id
    left (a restarted container reuses ids) and the gauges of dead processes are removed
    first: their values would otherwise be taken for this process's."""
    directory = multiprocess_directory()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_files(directory)
    # A counter's `_created` series doubles what is stored and scraped, and no query needs it.
    # (prometheus-client annotates its metrics but not these few functions: the ignores.)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    by_engine = ["engine"]
    registry = None if directory is not None else REGISTRY
    known = Metrics(
        requests=Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        ),
        request_duration=Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        ),
        requests_in_flight=Gauge(
            "http_requests_in_flight",
            "HTTP requests being served",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        pool_size=Gauge(
            "db_pool_size",
            "Connections the pool may hold",
            by_engine,
            registry=registry,
            multiprocess_mode="livesum",
        ),
        pool_in_use=Gauge(
            "db_pool_connections_in_use",
            "Connections checked out of the pool",
            by_engine,
            registry=registry,
            multiprocess_mode="livesum",
        ),
        connections_opened=Counter(
            "db_pool_connections_opened",
            "Connections opened to the database (steady when the pool keeps them)",
            by_engine,
            registry=registry,
        ),
        connection_waiting=Gauge(
            "db_connection_queue_waiting",
            "Requests waiting for a free connection",
            by_engine,
            registry=registry,
            multiprocess_mode="livesum",
        ),
        connection_wait=Histogram(
            "db_connection_queue_wait_seconds",
            "How long the requests that found no free connection waited for one",
            by_engine,
            buckets=WAIT_BUCKETS,
            registry=registry,
        ),
        failures=Counter(
            "db_failures",
            "Database failures answered 503 or 504, by kind",
            ["kind"],
            registry=registry,
        ),
        replica_configured=Gauge(
            "db_replica_configured",
            "1 when a replica is configured for reads",
            registry=registry,
            multiprocess_mode="livemax",
        ),
        replica_in_use=Gauge(
            "db_replica_in_use",
            "1 while reads go to the replica, 0 while they go to the primary",
            registry=registry,
            multiprocess_mode="livemostrecent",
        ),
        reads=Counter(
            "db_reads",
            "Reads with a replica, by the engine that served them: a Reader's statement, a session",
            by_engine,
            registry=registry,
        ),
        reads_after_write=Counter(
            "db_reads_after_write",
            "Reads sent to the primary because their client had just written (read-your-writes)",
            registry=registry,
        ),
    )
    # Every series a dashboard or an alert reads exists from the start, at 0.
    for kind in FAILURE_KINDS:
        known.failures.labels(kind)
    for engine in ENGINES:
        known.connection_waiting.labels(engine)
        known.connection_wait.labels(engine)
        known.connections_opened.labels(engine)
        known.reads.labels(engine)
    return known


def _remove_stale_files(directory: Path) -> None:
    for path, pid in _files_by_pid(directory):
        if pid == os.getpid() or (path.name.startswith("gauge_live") and not _alive(pid)):
            path.unlink(missing_ok=True)


def _files_by_pid(directory: Path) -> Iterator[tuple[Path, int]]:
    """The client's files (`counter_1234.db`, `gauge_livesum_1234.db`, ...) and their pids."""
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit():
            yield path, int(pid)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def forget_this_process() -> None:
    """At shutdown: this process's gauges leave the sums (its counters stay in the totals)."""
    directory = multiprocess_directory()
    if directory is not None:
        mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]


class WorkerProcesses(Collector):
    """The process metrics (CPU, memory, open files) of every live worker, labelled by pid:
    the client's own process collector sees only the worker answering the scrape."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterable[Metric]:
        pids = {pid for _, pid in _files_by_pid(self._directory)}
        merged: dict[str, Metric] = {}
        for pid in sorted(filter(_alive, pids)):
            for family in _process_collector(pid).collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return merged.values()


def _process_collector(pid: int) -> ProcessCollector:
    return ProcessCollector(pid=lambda: pid, registry=None)


def exposition() -> bytes:
    """The text a scrape gets: this process's metrics, or every worker's in multiprocess mode."""
    directory = multiprocess_directory()
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]
    registry.register(WorkerProcesses(directory))
    return generate_latest(registry)


async def serve_metrics(request: Request) -> Response:
    router = getattr(request.app.state, "replica_router", None)  # None before the lifespan
    if router is not None:  # as this worker sees it; each scrape refreshes it
        metrics().replica_configured.set(int(router.replica_configured))
        metrics().replica_in_use.set(int(router.replica_in_use))
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def count_failure(kind: str) -> None:
    """A database failure answered 503 or 504; `kind` is one of FAILURE_KINDS."""
    metrics().failures.labels(kind).inc()


def count_unavailable(reason: str) -> None:
    """A 503 for a database that cannot serve; `reason` holds its SQLSTATE when it sent one:
    too many connections is counted apart (the connection budget, not an outage)."""
    count_failure("too_many_connections" if TOO_MANY_CONNECTIONS in reason else "unavailable")


class HttpMetrics:
    """Counts requests by method, route template and status, times them, and counts those in
    flight; app.logs.RequestLogMiddleware tells it of each request."""

    def __init__(self) -> None:
        self.metrics = metrics()
        self.in_flight = self.metrics.requests_in_flight
        # The labelled series of each (method, route, status) seen, resolved once: `labels()`
        # on every request would build and look up its label values each time. Bounded as the
        # labels are.
        self.series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def started(self, scope: Scope) -> None:
        self.in_flight.inc()

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self.in_flight.dec()
        if method not in METHODS:
            method = "other"
        series = self.series.get((method, route, status))
        if series is None:
            series = self.series[method, route, status] = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.request_duration.labels(method, route),
            )
        count, duration = series
        count.inc()
        duration.observe(seconds)


def add_metrics(app: FastAPI, settings: Settings) -> list[RequestObserver]:
    """GET /metrics (left out of the API's schema), and what counts the requests, for
    app.logs.RequestLogMiddleware; neither when METRICS_ENABLED is false."""
    if not settings.metrics_enabled:
        return []
    app.add_api_route("/metrics", serve_metrics, methods=["GET"], include_in_schema=False)
    return [HttpMetrics()]
