"""What metrics and traces cost: app CPU per request of the rendered service (opentelemetry=true,
each driver) with metrics off, metrics on (the default), and tracing on with the sampler off, at
0.1 and at 1.0 (spans sent to an OTLP/HTTP receiver in this process), all serving at once on one
embedded PostgreSQL and loaded in turn by wrk, ROUNDS rounds in a rotating order; each ratio is
the median of the rounds' (and their range). Prints one table.

    python3 -m uv run python -m harness.bench_observability [--seconds 3] [--clients 32]
"""

import argparse
import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.answers import choices
from harness.benchmarks import ROUNDS, Row, Sample, against, bench_database, measure, table
from harness.paths import ROOT
from harness.service import Postgres, Running, prepare, run_wrk, serve

PATH = "/users/17"
# Each variant's settings, and what it is compared with and the target of that ratio.
METRICS_OFF = "metrics off"
METRICS_ON = "metrics on, tracing off"
VARIANTS: dict[str, dict[str, str]] = {
    METRICS_OFF: {"metrics_enabled": "false"},
    METRICS_ON: {},
    "tracing, sampler off": {"otel_traces_sampler": "always_off"},
    "tracing at 0.1": {"otel_traces_sampler": "traceidratio", "otel_traces_sampler_arg": "0.1"},
    "tracing at 1.0": {"otel_traces_sampler": "always_on"},
}
COMPARED = {
    METRICS_ON: (METRICS_OFF, "app CPU <= 1.05x"),
    "tracing, sampler off": (METRICS_ON, "app CPU <= 1.02x"),
    "tracing at 0.1": (METRICS_ON, "app CPU <= 1.10x"),
    "tracing at 1.0": (METRICS_ON, "reported as it is"),
}


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *arguments: Any) -> None:
        pass


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that accepts every export and keeps nothing; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def started(
    services: contextlib.ExitStack, project: Path, python: Path, log: Path, **settings: str
) -> Running:
    """The service serving until `services` closes; on a loaded machine uvicorn may miss
    serve()'s 30 s to come up: two more tries."""
    for _ in range(2):
        with contextlib.suppress(RuntimeError):
            return services.enter_context(serve(project, python, log, **settings))
    return services.enter_context(serve(project, python, log, **settings))


def cost(workdir: Path, seconds: int, clients: int) -> list[Row]:
    postgres = Postgres(workdir)
    try:
        bench_database(workdir, postgres)  # the seeded database `bench`
        samples: dict[tuple[str, str], list[Sample]] = {}
        with contextlib.ExitStack() as services:
            endpoint = services.enter_context(otlp_sink())
            running = {}
            for driver in choices("db_driver"):
                project, python = prepare(workdir / "traced", db_driver=driver, opentelemetry=True)
                for variant, settings in VARIANTS.items():
                    tracing = (
                        {"otel_exporter_otlp_endpoint": endpoint}
                        if "otel_traces_sampler" in settings
                        else {}
                    )
                    running[driver, variant] = started(
                        services,
                        project,
                        python,
                        workdir / f"{driver}-{variant.replace(' ', '-')}.log",
                        database_url=postgres.url("bench", driver),
                        log_level="WARNING",
                        # Ten services on one server (100 connections): 8 each at most.
                        db_pool_size="4",
                        db_max_overflow="4",
                        **tracing,
                        **settings,
                    )
            for service in running.values():  # warm: connections open, statements planned
                run_wrk(service.base_url + PATH, seconds=2, connections=clients)
            names = list(running)
            for turn in range(ROUNDS):
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    service = running[name]
                    sample = measure(
                        service.base_url + PATH,
                        service.process.pid,
                        postgres,
                        clients=clients,
                        seconds=seconds,
                    )
                    samples.setdefault(name, []).append(sample)
    finally:
        postgres.close()
    rows = []
    for (driver, variant), runs in samples.items():
        case = f"{driver} GET {PATH}, {clients} clients, {variant}"
        result = Sample.combined(runs)
        if variant not in COMPARED:
            rows.append(Row("observability", case, result.summary()))
            continue
        baseline, target = COMPARED[variant]
        base = samples[driver, baseline]
        rows.append(
            Row("observability", case, result.summary(), baseline, against(runs, base), target)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.bench_observability")
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per measurement")
    parser.add_argument("--clients", type=int, default=32, help="wrk connections")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as scratch:
        rows = cost(Path(scratch), arguments.seconds, arguments.clients)
    print(table(rows), file=sys.stdout)


if __name__ == "__main__":
    os.environ.setdefault("COPIER_SETTINGS_PATH", str(ROOT / "tests" / "copier-settings.yml"))
    main()
