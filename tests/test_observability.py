"""Metrics for real: the rendered service under uvicorn (one worker, then WEB_CONCURRENCY=2) on
an embedded PostgreSQL, both drivers. Real requests (a 404, a 409, a pool wait behind a lock, a
503 with the database stopped) must move the values a scrape of /metrics reports, parsed as
Prometheus parses them."""

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from harness.answers import choices
from harness.environments import project_environment
from harness.faults import DATABASE, Stage, stage_for
from harness.paths import ROOT
from harness.service import (
    Standby,
    free_port,
    prepare,
    server_workdir,
    stop,
    uvicorn_command,
    wait_until_live,
)

DRIVERS = choices("db_driver")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
OBSERVABILITY = ROOT / "template" / "deploy" / "observability"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset"}
PROMQL_LABELS = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)")
# A name not called as a function: \b keeps "rate(" from matching as "rat".
PROMQL_NAME = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()")


def queried_metrics() -> set[str]:
    """The metric names the generated dashboard's panels and alert rules query."""
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text())
    queries += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    names = set()
    for query in queries:
        bare = PROMQL_LABELS.sub(" ", query)
        names |= {name for name in PROMQL_NAME.findall(bare) if name not in PROMQL_WORDS}
    return names


def test_queries_name_metrics_by_what_they_read() -> None:
    """The extraction itself: functions, label matchers, ranges and groupings are not names."""
    query = 'sum by (job, le) (rate(http_requests_total{status=~"5.."}[5m])) > 0.5 and up == 1'
    bare = PROMQL_LABELS.sub(" ", query)

    assert {name for name in PROMQL_NAME.findall(bare) if name not in PROMQL_WORDS} == {
        "http_requests_total",
        "up",
    }
    assert len(queried_metrics()) >= 12


def scrape(base_url: str) -> Samples:
    """Every sample of one scrape, keyed by name and labels."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_of(samples: Samples, method: str, route: str, status: int) -> float:
    return value(samples, "http_requests_total", method=method, route=route, status=str(status))


@pytest.fixture(scope="module")
def project_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    projects: dict[str, tuple[Path, Path]] = {}

    def project(driver: str) -> tuple[Path, Path]:
        if driver not in projects:
            projects[driver] = prepare(tmp_path_factory.mktemp(f"obs-{driver}"), db_driver=driver)
        return projects[driver]

    return project


@pytest.fixture(params=DRIVERS)
def stage(
    request: pytest.FixtureRequest,
    project_for: Callable[[str], tuple[Path, Path]],
) -> Iterator[Stage]:
    driver: str = request.param
    # The embedded server runs as its own user: outside pytest's private temporary directories.
    with (
        server_workdir("observability-") as workdir,
        stage_for(driver, workdir / "stage", project_for(driver)) as prepared,
    ):
        yield prepared


async def post_user(client: httpx.AsyncClient, email: str) -> int:
    response = await client.post("/users", json={"email": email, "name": "Metrics"})
    return response.status_code


def test_requests_move_the_metrics_a_scrape_reports(stage: Stage) -> None:
    pool_size = 2
    settings = {
        "db_pool_size": str(pool_size),
        "db_max_overflow": "0",
        "db_pool_timeout": "3",
        "db_pool_ping_after": "0",
    }
    with stage.serve("metrics", **settings) as running:
        base = running.base_url
        before = scrape(base)
        assert value(before, "db_pool_size", engine="primary") == pool_size
        assert value(before, "process_cpu_seconds_total") > 0

        async def ordinary_requests() -> list[int]:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                statuses = [(await client.get("/users/999999")).status_code]
                statuses.append((await client.get("/no/such/path")).status_code)
                statuses.append(await post_user(client, "metrics@example.com"))
                statuses.append(await post_user(client, "metrics@example.com"))
                return statuses

        assert asyncio.run(ordinary_requests()) == [404, 404, 201, 409]
        after = scrape(base)
        for method, route, status in [
            ("GET", "/users/{user_id}", 404),
            ("GET", "<unmatched>", 404),
            ("POST", "/users", 201),
            ("POST", "/users", 409),
        ]:
            change = requests_of(after, method, route, status) - requests_of(
                before, method, route, status
            )
            assert change == 1, f"{method} {route} {status} moved by {change}"
        timed = "http_request_duration_seconds_count"
        labels = {"method": "POST", "route": "/users"}
        assert value(after, timed, **labels) - value(before, timed, **labels) == 2
        assert value(after, "db_pool_connections_opened_total", engine="primary") >= 1
        assert value(after, "db_pool_connections_in_use", engine="primary") == 0

        # Every connection held behind a lock: two more readers wait for one, then time out.
        during: list[Samples] = []

        async def readers_behind_a_lock() -> list[int]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                holders = [asyncio.create_task(client.get("/users/1")) for _ in range(pool_size)]
                await asyncio.sleep(0.5)
                waiters = [asyncio.create_task(client.get("/users/1")) for _ in range(2)]
                # Scraped while they wait (DB_POOL_TIMEOUT, 3 s): once both are queued.
                for _ in range(40):
                    during.append(await asyncio.to_thread(scrape, base))
                    if value(during[-1], "db_connection_queue_waiting", engine="primary") == 2:
                        break
                    await asyncio.sleep(0.05)
                waited = [response.status_code for response in await asyncio.gather(*waiters)]
                await asyncio.gather(*holders)  # answered once the lock is released
                return waited

        with stage.postgres.table_locked("users", DATABASE, seconds=8):
            assert asyncio.run(readers_behind_a_lock()) == [503, 503]
        waited = scrape(base)
        assert value(during[-1], "db_pool_connections_in_use", engine="primary") == pool_size
        assert value(during[-1], "db_connection_queue_waiting", engine="primary") == 2
        assert value(during[-1], "http_requests_in_flight") >= pool_size + 2
        waits = "db_connection_queue_wait_seconds_count"
        assert value(waited, waits, engine="primary") - value(after, waits, engine="primary") == 2
        over_half_a_second = "db_connection_queue_wait_seconds_bucket"
        quick = value(waited, over_half_a_second, engine="primary", le="0.5")
        assert quick == value(after, over_half_a_second, engine="primary", le="0.5")
        timeouts = value(waited, "db_failures_total", kind="pool_timeout")
        assert timeouts - value(after, "db_failures_total", kind="pool_timeout") == 2
        assert value(waited, "db_connection_queue_waiting", engine="primary") == 0

        # The database stopped: a 503, counted as unavailable; started again, new connections.
        stage.postgres.stop()
        try:
            assert httpx.get(f"{base}/users/1", timeout=10).status_code == 503
            down = scrape(base)
        finally:
            stage.postgres.start()
        unavailable = value(down, "db_failures_total", kind="unavailable")
        assert unavailable - value(waited, "db_failures_total", kind="unavailable") == 1
        assert (
            requests_of(down, "GET", "/users/{user_id}", 503)
            - requests_of(waited, "GET", "/users/{user_id}", 503)
            == 1
        )
        assert httpx.get(f"{base}/users/1", timeout=10).status_code in {200, 404}
        back = scrape(base)
        opened = "db_pool_connections_opened_total"
        assert value(back, opened, engine="primary") > value(down, opened, engine="primary")
    # Every metric the dashboard and the alert rules query, this scrape has.
    assert queried_metrics() - {name for name, _ in back} == set()


def test_reads_on_the_replica_are_reported_and_its_failure_too(stage: Stage) -> None:
    standby = Standby(stage.postgres, stage.workdir / "replica")
    replica_url = standby.url(DATABASE, stage.driver)
    try:
        with stage.serve(
            "replica-metrics", database_replica_url=replica_url, db_replica_retry_after="60"
        ) as running:
            base = running.base_url
            before = scrape(base)
            assert httpx.get(f"{base}/users/999999", timeout=10).status_code == 404
            up = scrape(base)
            standby.stop()
            assert httpx.get(f"{base}/users/999999", timeout=10).status_code == 404  # primary
            down = scrape(base)
    finally:
        standby.close()

    opened = "db_pool_connections_opened_total"
    assert value(up, opened, engine="replica") - value(before, opened, engine="replica") == 1
    assert value(up, opened, engine="primary") == value(before, opened, engine="primary")
    assert value(up, "db_pool_size", engine="replica") == 15  # DB_POOL_SIZE + DB_MAX_OVERFLOW
    assert (value(up, "db_replica_configured"), value(up, "db_replica_in_use")) == (1, 1)
    assert (value(down, "db_replica_configured"), value(down, "db_replica_in_use")) == (1, 0)


@pytest.fixture
def two_workers(stage: Stage, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """uvicorn with WEB_CONCURRENCY=2 and a multiprocess directory, as the image runs it; its
    base URL and that directory."""
    directory = tmp_path / "prometheus"
    port = free_port()
    env = project_environment(
        stage.python,
        environment="development",
        database_url=stage.database_url(),
        web_concurrency="2",
        prometheus_multiproc_dir=directory,
    )
    log = tmp_path / "workers.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            uvicorn_command(stage.python, "app.main:create_app", port),
            cwd=stage.project,
            env=env,
            stdout=output,
            stderr=output,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        # Two workers importing the app at once, on a loaded machine: minutes, not seconds.
        wait_until_live(base_url, process, timeout=180)
        deadline = time.monotonic() + 180
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, f"not every worker started:\n{log.read_text()}"
            time.sleep(0.1)
        yield base_url, directory
    finally:
        stop(process)


def test_one_scrape_reports_every_worker(two_workers: tuple[str, Path]) -> None:
    base, directory = two_workers
    requests = 40

    async def spread_requests() -> set[int]:
        # A new connection per request: the kernel hands them to either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:
            responses = await asyncio.gather(
                *(client.get("/users/999999") for _ in range(requests))
            )
        return {response.status_code for response in responses}

    before = [scrape(base) for _ in range(4)]
    assert asyncio.run(spread_requests()) == {404}
    after = [scrape(base) for _ in range(4)]  # whichever worker answers each, the same totals

    for scraped_before, scraped_after in zip(before, after, strict=True):
        moved = requests_of(scraped_after, "GET", "/users/{user_id}", 404) - requests_of(
            scraped_before, "GET", "/users/{user_id}", 404
        )
        assert moved == requests
    workers = {pid for pid in os.listdir(directory) if pid.startswith("counter_")}
    assert len(workers) == 2, sorted(os.listdir(directory))
    assert value(after[-1], "db_pool_size", engine="primary") == 2 * 15  # both pools, summed
    pids = {
        dict(labels)["pid"] for name, labels in after[-1] if name == "process_resident_memory_bytes"
    }
    assert len(pids) == 2
    assert queried_metrics() - {name for name, _ in after[-1]} == set()


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP receiver: keeps the spans POSTed to /v1/traces, decoded from protobuf."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.spans: list[tuple[Span, dict[str, Any]]] = []
        self.service_names: set[str] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            export = ExportTraceServiceRequest.FromString(body)
            for resource_spans in export.resource_spans:
                resource = attributes_of(resource_spans.resource.attributes)
                self.server.service_names.add(str(resource.get("service.name")))
                for scope_spans in resource_spans.scope_spans:
                    self.server.spans += [
                        (span, attributes_of(span.attributes)) for span in scope_spans.spans
                    ]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *arguments: Any) -> None:
        pass  # the test reports what it needs


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {pair.key: getattr(pair.value, pair.value.WhichOneof("value")) for pair in pairs}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(params=DRIVERS)
def traced_stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stage]:
    driver: str = request.param
    project = prepare(
        tmp_path_factory.mktemp(f"otel-{driver}"), db_driver=driver, opentelemetry=True
    )
    with (
        server_workdir("traced-") as workdir,
        stage_for(driver, workdir / "stage", project) as prepared,
    ):
        yield prepared


SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"


def test_traces_reach_an_otlp_receiver_with_a_span_per_statement(
    traced_stage: Stage, receiver: Receiver
) -> None:
    settings = {
        "otel_exporter_otlp_endpoint": receiver.endpoint,
        "otel_service_name": "orders",
        # No batch leaves on its own during the test: what arrives was flushed at shutdown.
        "otel_bsp_schedule_delay": "600000",
        "log_format": "json",
        "log_level": "INFO",
    }
    secret_email = "traced-secret@example.com"
    with (
        traced_stage.serve("traced", **settings) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        created = client.post("/users", json={"email": secret_email, "name": "Traced"})
        assert created.status_code == 201
        path = f"/users/{created.json()['id']}"
        # The third read of one statement runs on the driver directly (app/db/reads.py).
        for _ in range(3):
            assert client.get(path).status_code == 200
        headers = {
            "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01",
            "X-Request-ID": "traced-request-1",
        }
        assert client.get(path, headers=headers).status_code == 200
        assert client.get("/health/live").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert receiver.spans == []
    log = running.log.read_text()
    spans = receiver.spans
    assert receiver.service_names == {"orders"}
    servers = [
        (span, attributes) for span, attributes in spans if span.kind == Span.SPAN_KIND_SERVER
    ]
    names = [span.name for span, _ in servers]
    assert names == ["POST /users"] + ["GET /users/{user_id}"] * 4, names  # no probe, no scrape

    continued, attributes = servers[-1]
    assert continued.trace_id.hex() == INCOMING_TRACE
    assert continued.parent_span_id.hex() == INCOMING_SPAN
    assert attributes["request.id"] == "traced-request-1"

    statements = [(span, attributes) for span, attributes in spans if span.kind == CLIENT]
    for server, _ in servers:
        children = [
            attributes
            for span, attributes in statements
            if span.parent_span_id == server.span_id and span.trace_id == server.trace_id
        ]
        assert children, f"no statement span under {server.name}"
        for child in children:
            assert child["db.system.name"] == child["db.system"] == "postgresql"
            assert "users" in child["db.query.text"]
            assert secret_email not in child["db.query.text"]
    assert not any(secret_email in repr(attributes) for _, attributes in spans)

    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    request_line = next(line for line in lines if line.get("request_id") == "traced-request-1")
    assert request_line["trace_id"] == INCOMING_TRACE
    assert request_line["span_id"] == continued.span_id.hex()
