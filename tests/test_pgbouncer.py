"""The default project behind PgBouncer 1.18 (Debian's package) in transaction mode, per driver:
a mixed load, prepared statements left on PgBouncer's server connections, Alembic, the statement
timeout, and what a user sees who forgot DB_PGBOUNCER=true. The 60 s figures come from
`python -m harness.pgbouncer`; here the load is a few seconds."""

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.answers import DRIVERS
from harness.commands import run
from harness.environments import project_environment
from harness.faults import DATABASE, Stage, stage_for, table
from harness.pgbouncer import PgBouncer, mixed_load, pgbouncer_in_front
from harness.service import server_workdir

# Prepared statements a server connection may hold after the load. SQLAlchemy's asyncpg dialect
# named each statement uniquely and never closed them: about one per query (104-148 per
# connection after 10 s of load here). Unnamed statements leave none; psycopg prepares none.
PREPARED_STATEMENTS_BOUND = 0


@pytest.fixture(scope="module", params=DRIVERS)
def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stage]:
    driver: str = request.param
    with server_workdir(f"pgbouncer-{driver}-") as workdir, stage_for(driver, workdir) as stage:
        yield stage


@pytest.fixture(scope="module")
def bouncer(stage: Stage) -> Iterator[PgBouncer]:
    with pgbouncer_in_front(stage, pool_size=10) as bouncer:
        yield bouncer


def test_mixed_load_is_correct_and_leaves_no_prepared_statements(
    stage: Stage, bouncer: PgBouncer
) -> None:
    result = asyncio.run(mixed_load(stage, bouncer, seconds=5, clients=16, limit=3000))
    held = bouncer.prepared_statements(DATABASE)

    print(table([result]))
    print(f"prepared statements per PgBouncer server connection ({stage.driver}): {held}")
    assert result.passed, table([result])
    assert result.acknowledged
    assert held, "no server connection of PgBouncer to ask"
    assert max(held) <= PREPARED_STATEMENTS_BOUND


def alembic(stage: Stage, bouncer: PgBouncer, database: str, *arguments: str) -> str:
    env = project_environment(
        stage.python, database_url=bouncer.url(database, stage.driver), db_pgbouncer="true"
    )
    completed = run(stage.python, "-m", "alembic", *arguments, cwd=stage.project, env=env)
    return completed.stdout + completed.stderr


def test_alembic_works_through_pgbouncer_any_number_of_times(
    stage: Stage, bouncer: PgBouncer
) -> None:
    database = "migrated_through_pgbouncer"
    stage.postgres.create_database(database)
    heads = alembic(stage, bouncer, database, "heads").split()[0]

    alembic(stage, bouncer, database, "upgrade", "head")
    assert heads in alembic(stage, bouncer, database, "current")
    alembic(stage, bouncer, database, "downgrade", "base")
    assert heads not in alembic(stage, bouncer, database, "current")
    alembic(stage, bouncer, database, "upgrade", "head")
    assert "No new upgrade operations detected" in alembic(stage, bouncer, database, "check")
    assert heads in alembic(stage, bouncer, database, "current")


def test_statement_timeout_is_in_force_through_pgbouncer(stage: Stage, bouncer: PgBouncer) -> None:
    settings = {
        "database_url": bouncer.url(DATABASE, stage.driver),
        "db_pgbouncer": "true",
        "db_statement_timeout": "1",
    }
    with (
        stage.serve("pgbouncer-timeout", **settings) as running,
        httpx.Client(base_url=running.base_url, timeout=15) as client,
    ):
        assert client.get("/users?limit=1").status_code == 200
        with stage.postgres.table_locked("users", DATABASE, seconds=3):
            blocked = client.get("/users?limit=1")
        after = client.get("/users?limit=1")

    assert blocked.status_code == 504, blocked.text
    assert after.status_code == 200
    # SET LOCAL ended with each transaction: no other client of PgBouncer inherits the timeout.
    for _ in range(5):
        shown = run(*bouncer.psql(DATABASE), "-c", "SHOW statement_timeout", cwd=Path.cwd())
        assert shown.stdout.strip() == "0"


def test_forgetting_db_pgbouncer_is_logged_with_the_fix(stage: Stage, bouncer: PgBouncer) -> None:
    settings = {"database_url": bouncer.url(DATABASE, stage.driver)}
    with (
        stage.serve("pgbouncer-forgotten", **settings) as running,
        httpx.Client(base_url=running.base_url, timeout=15) as client,
    ):
        statuses = [client.get("/users?limit=1").status_code for _ in range(3)]
        ready = client.get("/health/ready").status_code
    log = running.log.read_text()

    print(f"DB_PGBOUNCER unset behind PgBouncer ({stage.driver}): {statuses}, ready {ready}")
    print(log)
    assert set(statuses) == {503}
    assert ready == 503
    assert "unsupported startup parameter" in log
    assert "set DB_PGBOUNCER=true" in log
    assert log.count("set DB_PGBOUNCER=true") == 1  # once a minute, not once a request


def test_forgetting_db_pgbouncer_behind_a_lenient_pgbouncer_is_logged(stage: Stage) -> None:
    """PgBouncer told to ignore the startup parameters lets the connections through: then named
    prepared statements meet on its server connections."""
    lenient = {"ignore_startup_parameters": "statement_timeout,options", "pool_size": 2}
    with pgbouncer_in_front(stage, "lenient-pgbouncer", **lenient) as lenient_bouncer:
        settings = {"database_url": lenient_bouncer.url(DATABASE, stage.driver)}
        with stage.serve("pgbouncer-lenient", **settings) as running:
            statuses = asyncio.run(concurrent_reads(running.base_url, rounds=20, clients=8))
    log = running.log.read_text()

    print(f"DB_PGBOUNCER unset, startup parameters ignored ({stage.driver}): {statuses}")
    print(log)
    assert "set DB_PGBOUNCER=true" in log


async def concurrent_reads(base_url: str, *, rounds: int, clients: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        for _ in range(rounds):
            answers = await asyncio.gather(*(client.get("/users?limit=1") for _ in range(clients)))
            statuses.update(answer.status_code for answer in answers)
    return statuses
