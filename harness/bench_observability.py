"""What metrics and traces cost: app CPU per request of the rendered service (opentelemetry=true,
each driver) with metrics off, metrics on (the default), and tracing with the sampler off, with
every request sampled out (yet instrumented), at 0.1 and at 1.0 (spans sent to an OTLP/HTTP
receiver in this process), all serving at once on one embedded PostgreSQL, each with its own
PROMETHEUS_MULTIPROC_DIR as the image runs it (every counted value is then a write to a
shared-memory file), and a second process of the metrics-on service: how far from 1 two
identical services measure. wrk loads them in turn, `--rounds` rounds; in a round a driver's
seven variants are measured one after another, in an order drawn anew each round, so each
ratio is taken between two runs seconds apart and the machine's drift cancels out. Prints one
table (each ratio: the median of the rounds, and their range) and each compared row's ratios
round by round, with whether the median meets its target.

    python3 -m uv run python -m harness.bench_observability [--seconds 3] [--clients 32] \\
        [--rounds 6]
"""

import argparse
import contextlib
import os
import random
import re
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.answers import choices
from harness.benchmarks import (
    ROUNDS,
    Row,
    Sample,
    against,
    app_cpu_per_request,
    bench_database,
    measure,
    round_ratios,
    table,
)
from harness.paths import ROOT
from harness.service import Postgres, Running, prepare, run_wrk, serve

PATH = "/users/17"
# Each variant's settings, and what it is compared with and the target of that ratio.
METRICS_OFF = "metrics off"
METRICS_ON = "metrics on, tracing off"
# A second process of the same service with the same settings: the ratio of two identical
# services, so what the method cannot tell from 1.
AGAIN = "metrics on, tracing off, again"
VARIANTS: dict[str, dict[str, str]] = {
    METRICS_OFF: {"metrics_enabled": "false"},
    METRICS_ON: {},
    AGAIN: {},
    "tracing, sampler off": {"otel_traces_sampler": "always_off"},
    # Every request sampled out, yet instrumented: what the other nine tenths pay at 0.1.
    "tracing, all sampled out": {"otel_traces_sampler": "parentbased_always_off"},
    "tracing at 0.1": {"otel_traces_sampler": "traceidratio", "otel_traces_sampler_arg": "0.1"},
    "tracing at 1.0": {"otel_traces_sampler": "always_on"},
}
COMPARED = {
    AGAIN: (METRICS_ON, "1 but for the method's noise"),
    METRICS_ON: (METRICS_OFF, "app CPU <= 1.05x"),
    "tracing, sampler off": (METRICS_ON, "app CPU <= 1.02x"),
    "tracing, all sampled out": (METRICS_ON, "reported as it is"),
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


Samples = dict[tuple[str, str], list[Sample]]


def cost(workdir: Path, seconds: int, clients: int, rounds: int) -> Samples:
    postgres = Postgres(workdir)
    try:
        bench_database(workdir, postgres)  # the seeded database `bench`
        drivers = choices("db_driver")
        # Filled round by round; reported in the order of VARIANTS, whatever order rounds drew.
        samples: Samples = {(driver, variant): [] for driver in drivers for variant in VARIANTS}
        with contextlib.ExitStack() as services:
            endpoint = services.enter_context(otlp_sink())
            running = {}
            for driver in drivers:
                project, python = prepare(workdir / "traced", db_driver=driver, opentelemetry=True)
                for variant, settings in VARIANTS.items():
                    tracing = (
                        {"otel_exporter_otlp_endpoint": endpoint}
                        if "otel_traces_sampler" in settings
                        else {}
                    )
                    name = f"{driver}-{variant.replace(' ', '-').replace(',', '')}"
                    running[driver, variant] = started(
                        services,
                        project,
                        python,
                        workdir / f"{name}.log",
                        database_url=postgres.url("bench", driver),
                        log_level="WARNING",
                        prometheus_multiproc_dir=str(workdir / "metrics" / name),
                        # Fourteen services on one server (100 connections): 6 each at most,
                        # and a probe's.
                        db_pool_size="3",
                        db_max_overflow="3",
                        **tracing,
                        **settings,
                    )
            for service in running.values():  # warm: connections open, statements planned
                run_wrk(service.base_url + PATH, seconds=2, connections=clients)
            variants = list(VARIANTS)
            for turn in range(rounds):
                first = turn % len(drivers)
                for driver in drivers[first:] + drivers[:first]:
                    # A new order each round: a rotation kept which variant ran just before
                    # which, and two identical services then measured 3-4% apart.
                    for variant in random.Random(turn).sample(variants, len(variants)):
                        service = running[driver, variant]
                        sample = measure(
                            service.base_url + PATH,
                            service.process.pid,
                            postgres,
                            clients=clients,
                            seconds=seconds,
                        )
                        samples[driver, variant].append(sample)
    finally:
        postgres.close()
    return samples


def limit(target: str) -> float | None:
    """The ratio a target allows ("app CPU <= 1.05x": 1.05), None for one reported as it is."""
    found = re.search(r"<= ([0-9.]+)x", target)
    return float(found.group(1)) if found else None


def rows(samples: Samples, clients: int) -> list[Row]:
    table_rows = []
    for (driver, variant), runs in samples.items():
        case = f"{driver} GET {PATH}, {clients} clients, {variant}"
        result = Sample.combined(runs)
        if variant not in COMPARED:
            table_rows.append(Row("observability", case, result.summary()))
            continue
        baseline, target = COMPARED[variant]
        base = samples[driver, baseline]
        table_rows.append(
            Row("observability", case, result.summary(), baseline, against(runs, base), target)
        )
    return table_rows


def round_by_round(samples: Samples) -> str:
    """Each compared variant's app CPU ratios, round by round, and the median against its target."""
    lines = ["", "App CPU per request over the baseline's, round by round:", ""]
    for (driver, variant), runs in samples.items():
        if variant not in COMPARED:
            continue
        baseline, target = COMPARED[variant]
        ratios = round_ratios(runs, samples[driver, baseline], app_cpu_per_request)
        median = statistics.median(ratios)
        allowed = limit(target)
        verdict = "" if allowed is None else (" met" if median <= allowed else " NOT met")
        figures = " ".join(f"{ratio:.3f}" for ratio in ratios)
        lines.append(
            f"- {driver}, {variant} / {baseline}: {figures}; median {median:.3f} "
            f"(target {target}{verdict})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.bench_observability")
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per measurement")
    parser.add_argument("--clients", type=int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measurements of each")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as scratch:
        samples = cost(Path(scratch), arguments.seconds, arguments.clients, arguments.rounds)
    print(table(rows(samples, arguments.clients)), file=sys.stdout)
    print(round_by_round(samples), file=sys.stdout)


if __name__ == "__main__":
    os.environ.setdefault("COPIER_SETTINGS_PATH", str(ROOT / "tests" / "copier-settings.yml"))
    main()
