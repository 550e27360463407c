"""`python -m app check`: connects and reports what it finds."""

import os
from dataclasses import dataclass

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.cli.database import explain
from app.config import PROJECT_ROOT, Settings
from app.db.session import create_engine

# Exit statuses, for scripts that run the check before a deployment.
HEALTHY, UNREACHABLE, MIGRATIONS_PENDING, POOL_OVER_BUDGET = 0, 1, 2, 3
# What the server really has in force on this connection, not what the settings asked for:
# behind PgBouncer the statement timeout is the role's, whatever DB_STATEMENT_TIMEOUT says.
# reserved_connections exists from PostgreSQL 16 on (missing_ok: NULL before).
SERVER_FACTS = text(
    "SELECT current_setting('server_version') AS version,"
    " current_setting('statement_timeout') AS statement_timeout,"
    " current_setting('max_connections')::int AS max_connections,"
    " current_setting('superuser_reserved_connections')::int"
    " + coalesce(current_setting('reserved_connections', true), '0')::int AS reserved"
)


@dataclass(frozen=True)
class ServerFacts:
    version: str
    statement_timeout: str
    max_connections: int
    reserved: int


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _server_facts(connection: AsyncConnection) -> ServerFacts:
    row = (await connection.execute(SERVER_FACTS)).one()
    return ServerFacts(row.version, row.statement_timeout, row.max_connections, row.reserved)


def processes() -> int:
    """Server processes sharing the database: WEB_CONCURRENCY, as uvicorn and gunicorn read it."""
    return max(1, int(os.environ.get("WEB_CONCURRENCY", "1")))


def pool_budget(settings: Settings, facts: ServerFacts) -> tuple[str, bool]:
    """A line on the connections all processes may open against what the server allows, and
    whether they fit."""
    per_process = settings.db_pool_size + settings.db_max_overflow
    needed = processes() * per_process
    allowed = facts.max_connections - facts.reserved
    line = (
        f"{processes()} process(es) (WEB_CONCURRENCY) x ({settings.db_pool_size} pool + "
        f"{settings.db_max_overflow} overflow) = {needed} connections; the server allows "
        f"{allowed} (max_connections {facts.max_connections} - {facts.reserved} reserved)"
    )
    if settings.db_pgbouncer:
        # PgBouncer's own pool size bounds the server connections, not this budget.
        return f"{line}, behind PgBouncer: its default_pool_size is what must fit", True
    return line, needed <= allowed


async def check(settings: Settings) -> int:
    """Print the server version, what is in force, the pool budget and the migration state;
    0 when all is well."""
    head = ScriptDirectory.from_config(Config(PROJECT_ROOT / "alembic.ini")).get_current_head()
    print(f"database:   {settings.url!r}")
    print(
        f"pool:       size={settings.db_pool_size} max_overflow={settings.db_max_overflow} "
        f"timeout={settings.db_pool_timeout}s recycle_after={settings.db_pool_recycle_after}s "
        f"pre_ping={settings.db_pool_pre_ping} ping_after={settings.db_pool_ping_after}s"
    )
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            facts = await _server_facts(connection)
            current = await connection.run_sync(_current_revision)
    except Exception as error:  # report any failure to connect, then exit non-zero
        print(f"server:     unreachable: {explain(error, settings)}")
        return UNREACHABLE
    finally:
        await engine.dispose()
    print(f"server:     PostgreSQL {facts.version}")
    print(f"in force:   statement_timeout={facts.statement_timeout} (SHOW on this connection)")
    budget, fits = pool_budget(settings, facts)
    print(f"budget:     {budget}")
    if not fits:
        print(
            "WARNING:    the pools can ask for more connections than the server allows: lower "
            "DB_POOL_SIZE/DB_MAX_OVERFLOW or WEB_CONCURRENCY, raise max_connections, or put "
            "PgBouncer in front"
        )
    print(f"migrations: at {current or 'nothing (empty database)'}, head is {head}")
    if current != head:
        return MIGRATIONS_PENDING
    return HEALTHY if fits else POOL_OVER_BUDGET
