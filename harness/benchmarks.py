"""Benchmarks of the template and what it generates; prints one table.

    python3 -m uv run python -m harness.benchmarks [--seconds 10] [--only NAME ...]

Each figure is measured in this run, next to the baseline it is compared with:
  throughput   the default service (asyncpg, psycopg) under uvicorn on an embedded PostgreSQL,
               loaded by wrk at 32 connections, against Starlette + a raw asyncpg pool
  isolation    per-test cost of each test_db_strategy over 500 database tests, against 500 empty
               tests; nullpool again with 50 more tables, to show the cost does not grow
  parallel     the generated suite under pytest -n auto against -n 0
  template     in-process render time per combination; wall time of the 16-combination matrix
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from harness.service import Postgres, migrate, prepare, run_wrk, serve
from tests.helpers import (
    ROOT,
    combinations,
    copy_working_tree,
    project_environment,
    render,
    run,
)

CONCURRENCY = 32
SEED_USERS = 1000
ISOLATION_TESTS = 500
EXTRA_TABLES = 50


@dataclass
class Row:
    benchmark: str
    case: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""


def wrk(url: str, seconds: int) -> tuple[float, float, float]:
    """Requests per second, p50 and p99 latency in milliseconds; every request must succeed."""
    load = run_wrk(url, seconds=seconds, connections=CONCURRENCY)
    if load.failures:
        raise RuntimeError(f"wrk saw {load.failures} failed requests on {url}")
    return load.rate, load.p50_ms, load.p99_ms


def throughput(workdir: Path, seconds: int) -> list[Row]:
    postgres = Postgres(workdir)
    try:
        return measure_throughput(workdir, postgres, seconds)
    finally:
        postgres.close()


def measure_throughput(workdir: Path, postgres: Postgres, seconds: int) -> list[Row]:
    postgres.create_database("bench")
    projects = {driver: prepare(workdir, db_driver=driver) for driver in ("asyncpg", "psycopg")}
    project, python = projects["asyncpg"]
    migrate(project, python, postgres.url("bench", "asyncpg"))
    postgres.sql(
        "INSERT INTO users (email, name) SELECT 'user' || n || '@example.com', 'User ' || n "
        f"FROM generate_series(1, {SEED_USERS}) AS n;",
        database="bench",
    )
    paths = {"get": "/users/17", "list": "/users?limit=20"}
    results: dict[tuple[str, str], tuple[float, float, float]] = {}

    def load(name: str, base_url: str) -> None:
        for endpoint, path in paths.items():
            wrk(base_url + path, 2)  # warm up: connections, prepared statements, caches
            results[name, endpoint] = wrk(base_url + path, seconds)

    with serve(
        ROOT,
        python,
        workdir / "baseline.log",
        app="harness.baseline_app:create_app",
        baseline_dsn=postgres.url("bench"),
    ) as baseline:
        load("baseline", baseline.base_url)
    variants = {
        "asyncpg": ("asyncpg", {}),
        "asyncpg, no pre-ping": ("asyncpg", {"db_pool_pre_ping": "false"}),
        "psycopg": ("psycopg", {}),
    }
    for name, (driver, settings) in variants.items():
        project, python = projects[driver]
        database_url = postgres.url("bench", driver)
        with serve(
            project, python, workdir / f"{name}.log", database_url=database_url, **settings
        ) as service:
            load(name, service.base_url)

    targets = {"asyncpg": 0.30, "psycopg": 0.25}
    rows = []
    for (name, endpoint), (rate, p50, p99) in results.items():
        base_rate = results["baseline", endpoint][0]
        target = f"ratio >= {targets[name]:.2f}, p99 <= 5 x p50" if name in targets else ""
        rows.append(
            Row(
                "throughput",
                f"{name} GET {paths[endpoint]}",
                f"{rate:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms (p99/p50 {p99 / p50:.1f})",
                f"{base_rate:,.0f} req/s" if name != "baseline" else "",
                f"{rate / base_rate:.2f}" if name != "baseline" else "",
                target,
            )
        )
    return rows


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
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
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
