"""Benchmarks of the template and what it generates; prints one table.

    python3 -m uv run python -m harness.benchmarks [--seconds 10] [--only NAME ...]

Each figure is measured in this run, next to the baseline it is compared with:
  throughput   reads by the default service (asyncpg, psycopg), uvicorn, an embedded PostgreSQL,
               loaded by wrk at 32 and 64 connections, against Starlette + a raw asyncpg pool
               (the targets' baseline) and, for psycopg, Starlette + raw psycopg connections too,
               all four serving at once and loaded in turn (ROUNDS rounds): req/s, p50/p99, CPU
               per request of the app process and of every PostgreSQL process (/proc), new
               connections per request (pg_stat_database.sessions); ratios to a baseline are
               the median of the rounds' (and their range)
  writes       the same for POST /users (a new row each) and PUT /users/{id} (a seeded row),
               against the baselines' INSERT / UPDATE ... RETURNING in autocommit; the
               statements PostgreSQL receives per write (log_statement = all); then "mixed":
               80% GET by id, 20% POST or PUT, 64 clients, 3 rounds
  replica      the same GET with DATABASE_REPLICA_URL set to a hot standby: CPU per read of the
               primary and of the standby
  isolation    per-test cost of each test_db_strategy over 500 database tests, against 500 empty
               tests; nullpool again with 50 more tables, to show the cost does not grow
  parallel     the generated suite under pytest -n auto against -n 0
  template     in-process render time per combination; wall time of the 16-combination matrix
"""

import argparse
import contextlib
import itertools
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness.answers import DRIVERS, combinations
from harness.commands import run
from harness.environments import project_environment
from harness.paths import ROOT
from harness.render import copy_working_tree, render
from harness.service import (
    Postgres,
    Running,
    Standby,
    children,
    migrate,
    postmaster_pid,
    prepare,
    run_wrk,
    serve,
    stat_fields,
)

CLIENTS = (32, 64)
ROUNDS = 6  # short runs in turn, each round in a new order: ratios are taken round by round
SEED_USERS = 1000
ISOLATION_TESTS = 500
EXTRA_TABLES = 50
THROUGHPUT_TARGETS = {"asyncpg": (0.30, 4.0), "psycopg": (0.25, 5.0)}  # ratio, app CPU x raw
POSTGRES_CPU_TARGET = 1.5  # x raw
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    benchmark: str
    case: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""


@dataclass
class Sample:
    """One wrk run with what it cost the app process and every PostgreSQL process."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    app_cpu: float  # seconds
    postgres_cpu: float  # seconds, all backends (those that exited during the run too)
    replica_cpu: float  # seconds, the standby's processes (0 without one)
    new_connections: int
    failures: int  # non-2xx responses and socket errors (wrk's timeout is 2 s)

    @staticmethod
    def combined(samples: list["Sample"]) -> "Sample":
        return Sample(
            requests=sum(s.requests for s in samples),
            rate=statistics.mean(s.rate for s in samples),
            p50_ms=statistics.median(s.p50_ms for s in samples),
            p99_ms=max(s.p99_ms for s in samples),
            app_cpu=sum(s.app_cpu for s in samples),
            postgres_cpu=sum(s.postgres_cpu for s in samples),
            replica_cpu=sum(s.replica_cpu for s in samples),
            new_connections=sum(s.new_connections for s in samples),
            failures=sum(s.failures for s in samples),
        )

    def per_request_us(self, seconds: float) -> float:
        return seconds / max(self.requests, 1) * 1e6

    def summary(self) -> str:
        return (
            f"{self.rate:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms "
            f"(p99/p50 {self.p99_ms / self.p50_ms:.1f}); CPU/request: app "
            f"{self.per_request_us(self.app_cpu):,.0f} us, PostgreSQL "
            f"{self.per_request_us(self.postgres_cpu):,.0f} us; new connections "
            f"{self.new_connections} ({self.new_connections / max(self.requests, 1):.2%}); "
            f"errors {self.failures}"
        )


def process_cpu(pid: int, *, with_children: bool = False) -> float:
    """CPU seconds of a process (from /proc); with its reaped children's when asked."""
    fields = stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: backends that exited
    return ticks / CLOCK_TICKS


def server_cpu(pgdata: Path) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its children alive, those reaped."""
    postmaster = postmaster_pid(pgdata)
    if postmaster is None:
        raise RuntimeError(f"no server runs on {pgdata}")
    total = process_cpu(postmaster, with_children=True)
    for backend in children(postmaster):
        try:
            total += process_cpu(backend)
        except (OSError, IndexError, ValueError):
            continue  # a backend that exited while we looked: its CPU is in cutime now
    return total


def sessions(postgres: Postgres, database: str) -> int:
    """Connections ever opened to `database` (asked from another database, not counted)."""
    query = f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'"
    return int(postgres.scalar(query, "postgres"))


def measure(
    url: str,
    app_pid: int,
    postgres: Postgres,
    *,
    clients: int,
    seconds: int,
    standby: Standby | None = None,
    script: Path | None = None,
) -> Sample:
    """One wrk run, with what it cost; failed requests are counted, not fatal."""
    opened = sessions(postgres, "bench")
    app, server = process_cpu(app_pid), server_cpu(postgres.server.pgdata)
    replica = server_cpu(standby.pgdata) if standby else 0.0
    load = run_wrk(url, seconds=seconds, connections=clients, script=script)
    app, server = process_cpu(app_pid) - app, server_cpu(postgres.server.pgdata) - server
    replica = server_cpu(standby.pgdata) - replica if standby else 0.0
    time.sleep(1.5)  # a backend reports its session within a second of going idle
    return Sample(
        requests=load.requests,
        rate=load.rate,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        app_cpu=app,
        postgres_cpu=server,
        replica_cpu=replica,
        new_connections=sessions(postgres, "bench") - opened,
        failures=load.failures,
    )


def throughput(workdir: Path, seconds: int) -> list[Row]:
    postgres = Postgres(workdir)
    try:
        projects = bench_database(workdir, postgres)
        with serving(workdir, postgres, projects) as running:
            samples = in_rounds(running, postgres, READS, CLIENTS, seconds, workdir)
        return compared("throughput", READS, samples)
    finally:
        postgres.close()


@dataclass(frozen=True)
class Load:
    """What wrk sends: GETs of `path`, or the requests a Lua script makes (`path` names them)."""

    path: str
    script: str = ""

    def script_file(self, workdir: Path, tag: str) -> Path | None:
        """The script with its tag (unique per run of wrk: new rows never collide)."""
        if not self.script:
            return None
        path = workdir / f"load-{tag}.lua"
        path.write_text(self.script.replace("@TAG@", tag).replace("@USERS@", str(SEED_USERS)))
        return path


# A new user per request: an email made of the run's tag, wrk's thread and a counter.
POST_USERS = """
local headers = {["Content-Type"] = "application/json"}
local threads, sent = 0, 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
function request()
  sent = sent + 1
  local body = string.format('{"email":"w-@TAG@-%d-%d@example.com","name":"Writer"}',
                             thread_number, sent)
  return wrk.format("POST", "/users", headers, body)
end
"""
# A seeded user renamed, its email kept (no conflict between clients).
PUT_USER = """
local headers = {["Content-Type"] = "application/json"}
local sent = 0
function request()
  sent = sent + 1
  local id = math.random(1, @USERS@)
  local body = string.format('{"email":"user%d@example.com","name":"Renamed %d"}', id, sent)
  return wrk.format("PUT", "/users/" .. id, headers, body)
end
"""
# 80% reads of a user by id, 10% new users, 10% renames.
MIXED = """
local headers = {["Content-Type"] = "application/json"}
local threads, sent = 0, 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
function request()
  sent = sent + 1
  local id = math.random(1, @USERS@)
  local kind = sent % 10
  if kind == 0 then
    local body = string.format('{"email":"m-@TAG@-%d-%d@example.com","name":"Mixed"}',
                               thread_number, sent)
    return wrk.format("POST", "/users", headers, body)
  elseif kind == 5 then
    local body = string.format('{"email":"user%d@example.com","name":"Mixed %d"}', id, sent)
    return wrk.format("PUT", "/users/" .. id, headers, body)
  end
  return wrk.format("GET", "/users/" .. id)
end
"""
READS = {"GET /users/17": Load("/users/17"), "GET /users?limit=20": Load("/users?limit=20")}
WRITES = {
    "POST /users": Load("/users", POST_USERS),
    "PUT /users/{id}": Load("/users", PUT_USER),
}
MIXED_LOAD = {"80% GET /users/{id}, 20% POST or PUT": Load("/users", MIXED)}
MIXED_CLIENTS = (64,)
MIXED_ROUNDS = 3
# The raw baselines (harness/baseline_app.py) and their drivers. The targets are against the
# first (asyncpg); the second shows what the psycopg service costs over its own driver.
RAW, RAW_PSYCOPG = "raw baseline", "raw psycopg baseline"
BASELINES = {RAW: "asyncpg", RAW_PSYCOPG: "psycopg"}
Samples = dict[tuple[str, str, int], list[Sample]]


def bench_database(workdir: Path, postgres: Postgres) -> dict[str, tuple[Path, Path]]:
    """The database `bench`, migrated and seeded; the default project of each driver."""
    postgres.create_database("bench")
    projects = {driver: prepare(workdir, db_driver=driver) for driver in DRIVERS}
    project, python = projects["asyncpg"]
    migrate(project, python, postgres.url("bench", "asyncpg"))
    postgres.sql(
        "INSERT INTO users (email, name) SELECT 'user' || n || '@example.com', 'User ' || n "
        f"FROM generate_series(1, {SEED_USERS}) AS n;",
        database="bench",
    )
    return projects


@contextlib.contextmanager
def serving(
    workdir: Path, postgres: Postgres, projects: dict[str, tuple[Path, Path]]
) -> Iterator[dict[str, Running]]:
    """The two raw baselines and both services, serving at once on the database `bench`."""
    with contextlib.ExitStack() as services:
        running = {
            baseline: services.enter_context(
                serve(
                    ROOT,
                    projects[driver][1],  # a Python with the driver installed
                    workdir / f"baseline-{driver}.log",
                    app="harness.baseline_app:create_app",
                    loop="auto",  # uvicorn's default, uvloop: the baseline at its fastest
                    baseline_driver=driver,
                    baseline_dsn=postgres.url("bench"),
                )
            )
            for baseline, driver in BASELINES.items()
        }
        for driver, (project, python) in projects.items():
            running[driver] = services.enter_context(
                serve(
                    project,
                    python,
                    workdir / f"{driver}.log",
                    database_url=postgres.url("bench", driver),
                )
            )
        yield running


def in_rounds(
    running: dict[str, Running],
    postgres: Postgres,
    loads: dict[str, Load],
    clients: tuple[int, ...],
    seconds: int,
    workdir: Path,
    rounds: int | None = None,
) -> Samples:
    """Each load on every server in turn, `rounds` times per number of clients, in an order
    that rotates from round to round (after a warm-up: every connection open, statements
    prepared)."""
    runs = itertools.count()

    def load(service: Running, name: str, connections: int) -> Sample:
        script = loads[name].script_file(workdir, f"r{next(runs)}")
        url = service.base_url + loads[name].path
        return measure(
            url, service.process.pid, postgres, clients=connections, seconds=seconds, script=script
        )

    for service in running.values():
        for each in loads.values():
            script = each.script_file(workdir, f"r{next(runs)}")
            run_wrk(service.base_url + each.path, seconds=2, connections=64, script=script)
    names = list(running)
    samples: Samples = {}
    for connections in clients:
        for turn in range(rounds or ROUNDS):
            for name in loads:
                for server in names[turn % len(names) :] + names[: turn % len(names)]:
                    sample = load(running[server], name, connections)
                    samples.setdefault((server, name, connections), []).append(sample)
    return samples


def compared(benchmark: str, loads: dict[str, Load], samples: Samples) -> list[Row]:
    """A row per server, load and number of clients; the services' with their ratios to the raw
    baseline (and, for psycopg, to the raw psycopg baseline)."""
    rows = []
    for (name, load, clients), runs in samples.items():
        result = Sample.combined(runs)
        case = f"{name} {load}, {clients} clients"
        if name in BASELINES:
            rows.append(Row(benchmark, case, result.summary()))
            continue
        raw_runs = samples[RAW, load, clients]
        raw = Sample.combined(raw_runs)
        ratio, app_target = THROUGHPUT_TARGETS[name]
        rows.append(
            Row(
                benchmark,
                case,
                result.summary(),
                f"{raw.rate:,.0f} req/s; app {raw.per_request_us(raw.app_cpu):,.0f} us, "
                f"PostgreSQL {raw.per_request_us(raw.postgres_cpu):,.0f} us",
                against(runs, raw_runs),
                f"ratio >= {ratio:.2f}, app CPU <= {app_target:g}x, PostgreSQL CPU <= "
                f"{POSTGRES_CPU_TARGET:g}x, p99 <= 5 x p50, new connections <= 0.1%, no errors",
            )
        )
        if name == "psycopg":  # what the service costs over its own driver, for reference
            own = samples[RAW_PSYCOPG, load, clients]
            rows.append(
                Row(
                    benchmark,
                    f"{case}, against raw psycopg",
                    "",
                    Sample.combined(own).summary(),
                    against(runs, own),
                )
            )
    return rows


def round_ratios(
    runs: list[Sample], baseline: list[Sample], figure: Callable[[Sample], float]
) -> list[float]:
    """`figure` of each round's run over its baseline's in the same round."""
    return [figure(run) / figure(base) for run, base in zip(runs, baseline, strict=True)]


def app_cpu_per_request(sample: Sample) -> float:
    return sample.per_request_us(sample.app_cpu)


def against(runs: list[Sample], baseline: list[Sample]) -> str:
    """Throughput and CPU per request of `runs` over `baseline`'s, round by round: the median of
    the rounds, and their range. Each pair is measured 5-15 s apart, so the machine's speed,
    which can drift by half within a minute here, cancels out."""

    def spread(figure: Callable[[Sample], float], digits: int) -> str:
        ratios = round_ratios(runs, baseline, figure)
        median, low, high = (
            f"{value:.{digits}f}" for value in (statistics.median(ratios), min(ratios), max(ratios))
        )
        return f"{median} ({low}-{high})"

    rate = spread(lambda sample: sample.rate, 2)
    app = spread(app_cpu_per_request, 1)
    postgres = spread(lambda sample: sample.per_request_us(sample.postgres_cpu), 1)
    return f"{rate}; app CPU x {app}, PostgreSQL CPU x {postgres}"


def writes(workdir: Path, seconds: int) -> list[Row]:
    """POST and PUT against the raw baselines' INSERT / UPDATE ... RETURNING, round by round as
    the reads; the statements each write sends; then the mixed load."""
    postgres = Postgres(workdir)
    try:
        projects = bench_database(workdir, postgres)
        with serving(workdir, postgres, projects) as running:
            samples = in_rounds(running, postgres, WRITES, CLIENTS, seconds, workdir)
            rows = compared("writes", WRITES, samples)
            # After the rounds: every connection is open, no connect-time statement is counted.
            rows += [statements_per_write(postgres, name, each) for name, each in running.items()]
            mixed = in_rounds(
                running, postgres, MIXED_LOAD, MIXED_CLIENTS, seconds, workdir, MIXED_ROUNDS
            )
        rows += [
            Row("mixed", f"{name} {load}, {clients} clients", Sample.combined(runs).summary(),
                "", "", "no errors, no new connections, p99 <= 5 x p50")
            for (name, load, clients), runs in mixed.items()
        ]  # fmt: skip
        return rows
    finally:
        postgres.close()


WRITES_COUNTED = 20
# What PostgreSQL logs of each statement with log_statement = all (simple and extended protocol).
LOGGED_STATEMENT = re.compile(r"LOG:\s+(?:statement|execute [^:]*): (.*)")


def statements_per_write(postgres: Postgres, name: str, service: Running) -> Row:
    """The statements PostgreSQL receives for a POST and a PUT, counted in its log with
    log_statement = all over WRITES_COUNTED of each, sent one at a time."""
    log = postgres.server.pgdata / "log"
    # The pool pings a connection idle longer than DB_POOL_PING_AFTER when it is next taken
    # (asyncpg's ping is BEGIN, an empty query, ROLLBACK): the service's connections sat idle
    # while the others were loaded. One write first takes that ping outside the count; the
    # writes counted, one at a time, then reuse that connection (the pool is last in, first out).
    warm = {"email": f"warm-{name.replace(' ', '-')}@example.com", "name": "Warm"}
    send(service.base_url + "/users", "POST", warm)
    postgres.sql("ALTER SYSTEM SET log_statement = 'all';\nSELECT pg_reload_conf();")
    time.sleep(0.5)
    start = log.stat().st_size
    for number in range(WRITES_COUNTED):
        email = f"count-{name.replace(' ', '-')}-{number}@example.com"
        send(service.base_url + "/users", "POST", {"email": email, "name": "Counted"})
        seeded = {"email": f"user{number + 1}@example.com", "name": "Counted"}
        send(service.base_url + f"/users/{number + 1}", "PUT", seeded)
    postgres.sql("ALTER SYSTEM RESET log_statement;\nSELECT pg_reload_conf();")
    with log.open("rb") as written:
        written.seek(start)
        text = written.read().decode(errors="replace")
    kinds = Counter(
        found.group(1).split(None, 1)[0].upper().rstrip(";")
        for found in LOGGED_STATEMENT.finditer(text)
        if "ALTER SYSTEM" not in found.group(1) and "pg_reload_conf" not in found.group(1)
    )
    writes = 2 * WRITES_COUNTED
    each = ", ".join(f"{kind} {count / writes:g}" for kind, count in kinds.most_common())
    return Row(
        "writes",
        f"{name}: statements per write (POST and PUT, log_statement = all)",
        f"{sum(kinds.values()) / writes:g} ({each})",
        "",
        "",
        "<= 3 (BEGIN, the DML with RETURNING, COMMIT)",
    )


def send(url: str, method: str, body: dict[str, str]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def replica(workdir: Path, seconds: int) -> list[Row]:
    """Reads with DATABASE_REPLICA_URL: they leave the primary (its CPU per read ~ 0)."""
    postgres = Postgres(workdir)
    try:
        projects = bench_database(workdir, postgres)
        standby = Standby(postgres, workdir / "standby")
        try:
            rows = []
            for driver, (project, python) in projects.items():
                with serve(
                    project,
                    python,
                    workdir / f"replica-{driver}.log",
                    database_url=postgres.url("bench", driver),
                    database_replica_url=standby.url("bench", driver),
                ) as service:
                    url = service.base_url + READS["GET /users/17"].path
                    run_wrk(url, seconds=2, connections=max(CLIENTS))
                    sample = measure(
                        url,
                        service.process.pid,
                        postgres,
                        clients=CLIENTS[0],
                        seconds=seconds,
                        standby=standby,
                    )
                rows.append(
                    Row(
                        "replica",
                        f"{driver} GET /users/17, {CLIENTS[0]} clients, DATABASE_REPLICA_URL set",
                        f"{sample.rate:,.0f} req/s; CPU/request: primary "
                        f"{sample.per_request_us(sample.postgres_cpu):,.0f} us, replica "
                        f"{sample.per_request_us(sample.replica_cpu):,.0f} us, app "
                        f"{sample.per_request_us(sample.app_cpu):,.0f} us; "
                        f"errors {sample.failures}",
                        "",
                        "",
                        "primary CPU/read ~ 0",
                    )
                )
            return rows
        finally:
            standby.close()
    finally:
        postgres.close()


ISOLATION_TESTS_MODULE = """\
import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User


@pytest.mark.parametrize("number", range({count}))
async def test_request_and_query(number: int, client: AsyncClient, session: AsyncSession) -> None:
    assert (await client.get("/users?limit=1")).status_code == 200
    assert await session.scalar(select(func.count()).select_from(User)) is not None


@pytest.mark.parametrize("number", range({count}))
async def test_empty(number: int) -> None:
    pass
"""

EXTRA_MODELS_MODULE = """\
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
{classes}"""

EXTRA_MODEL = """

class Extra{number}(Base):
    __tablename__ = "extra_{number}"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50))
"""


def pytest_seconds(project: Path, python: Path, *arguments: str) -> float:
    env = project_environment(python)
    started = time.perf_counter()
    run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments, cwd=project, env=env)
    return time.perf_counter() - started


def per_test_ms(project: Path, python: Path, kind: str) -> float:
    """Milliseconds one more test of `kind` adds: the slope between runs of 1 and of
    ISOLATION_TESTS tests, so the session's set-up (server, migrations, app) cancels out."""
    module = project / "tests" / "test_isolation_cost.py"

    def seconds(count: int) -> float:
        module.write_text(ISOLATION_TESTS_MODULE.format(count=count))
        return min(pytest_seconds(project, python, str(module), "-k", kind) for _ in range(3))

    return (seconds(ISOLATION_TESTS) - seconds(1)) / (ISOLATION_TESTS - 1) * 1000


def per_test_overhead_ms(project: Path, python: Path) -> float:
    """What isolation and one request plus one query add to a test, over an empty test."""
    return per_test_ms(project, python, "request_and_query") - per_test_ms(project, python, "empty")


def add_extra_tables(project: Path, python: Path, postgres: Postgres) -> None:
    classes = "".join(EXTRA_MODEL.format(number=number) for number in range(EXTRA_TABLES))
    (project / "app" / "models" / "extra.py").write_text(
        EXTRA_MODELS_MODULE.format(classes=classes)
    )
    with (project / "app" / "models" / "__init__.py").open("a") as models:
        models.write("\nimport app.models.extra  # noqa: E402, F401\n")
    postgres.create_database("extra_tables")
    url = postgres.url("extra_tables", "asyncpg")
    migrate(project, python, url)
    env = project_environment(python, database_url=url)
    run(python, "-m", "alembic", "revision", "--autogenerate", "-m", "extra", cwd=project, env=env)


def isolation(workdir: Path, seconds: int) -> list[Row]:
    targets = {"rollback": 2.0, "nullpool": 6.0}
    rows = []
    for strategy, target in targets.items():
        project, python = prepare(workdir, test_db_strategy=strategy)
        cost = per_test_overhead_ms(project, python)
        rows.append(
            Row(
                "isolation",
                f"{strategy}, 3 tables",
                f"{cost:.2f} ms/test",
                "500 empty tests",
                "",
                f"<= {target:g} ms/test",
            )
        )
    project, python = prepare(workdir / "extra", test_db_strategy="nullpool")
    postgres = Postgres(workdir / "extra")
    try:
        add_extra_tables(project, python, postgres)
    finally:
        postgres.close()
    cost = per_test_overhead_ms(project, python)
    rows.append(
        Row(
            "isolation",
            f"nullpool, {3 + EXTRA_TABLES} tables",
            f"{cost:.2f} ms/test",
            "500 empty tests",
            "",
            f"<= {targets['nullpool']:g} ms/test, flat",
        )
    )
    return rows


def parallel(workdir: Path, seconds: int) -> list[Row]:
    project, python = prepare(workdir)
    serial = min(pytest_seconds(project, python, "-n", "0") for _ in range(2))
    spread = min(pytest_seconds(project, python, "-n", "auto") for _ in range(2))
    return [
        Row(
            "parallel",
            f"generated suite, -n auto ({os.cpu_count()} cores)",
            f"{spread:.1f} s",
            f"{serial:.1f} s with -n 0",
            f"{serial / spread:.2f}x speed-up",
        )
    ]


def template(workdir: Path, seconds: int) -> list[Row]:
    source = copy_working_tree(workdir / "source")
    render(source, workdir / "warm-up")  # imports and Jinja environment, once
    times = []
    for combination in combinations():
        started = time.perf_counter()
        render(source, workdir / combination.id, **combination.answers)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    run(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_combinations.py",
        cwd=ROOT,
        timeout=3600,
    )
    matrix = time.perf_counter() - started
    return [
        Row(
            "template",
            "render, per combination",
            f"median {statistics.median(times):.2f} s, max {max(times):.2f} s",
            "",
            "",
            "<= 0.3 s",
        ),
        Row(
            "template",
            "16-combination matrix (render, ruff, mypy, suites)",
            f"{matrix / 60:.1f} min",
            "",
            "",
            "<= 5 min",
        ),
    ]


BENCHMARKS: dict[str, Callable[[Path, int], list[Row]]] = {
    "throughput": throughput,
    "writes": writes,
    "replica": replica,
    "isolation": isolation,
    "parallel": parallel,
    "template": template,
}


def table(rows: list[Row]) -> str:
    lines = [
        f"Measured {date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
        "| benchmark | case | figure | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        "| " + " | ".join([r.benchmark, r.case, r.figure, r.baseline, r.ratio, r.target]) + " |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.benchmarks")
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per measurement")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    arguments = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="benchmarks-") as scratch:
        for name in arguments.only:
            workdir = Path(scratch) / name
            workdir.mkdir()
            try:
                rows += BENCHMARKS[name](workdir, arguments.seconds)
            except Exception as error:  # one broken benchmark must not lose the others' rows
                rows.append(Row(name, "failed", f"{type(error).__name__}: {str(error)[:200]}"))
            print(table(rows), file=sys.stderr)
    print(table(rows))


if __name__ == "__main__":
    os.environ.setdefault("COPIER_SETTINGS_PATH", str(ROOT / "tests" / "copier-settings.yml"))
    main()
