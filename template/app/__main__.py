"""Operational commands: `python -m app check` connects and reports what it finds;
`python -m app new resource ...` adds a resource (see scaffold/)."""

import argparse
import asyncio
import sys

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from app.config import PROJECT_ROOT, Settings, get_settings
from app.db.session import create_engine


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def check(settings: Settings) -> int:
    """Print the server version, pool settings and migration state; 0 when all is well."""
    head = ScriptDirectory.from_config(Config(PROJECT_ROOT / "alembic.ini")).get_current_head()
    print(f"database:   {settings.url!r}")
    print(
        f"pool:       size={settings.db_pool_size} max_overflow={settings.db_max_overflow} "
        f"timeout={settings.db_pool_timeout}s recycle={settings.db_pool_recycle}s "
        f"pre_ping={settings.db_pool_pre_ping} statement_timeout={settings.db_statement_timeout}s"
    )
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SHOW server_version"))
            current = await connection.run_sync(_current_revision)
    except Exception as error:  # report any failure to connect, then exit non-zero
        message = str(error)
        if settings.url.password:
            message = message.replace(settings.url.password, "***")
        print(f"server:     unreachable: {type(error).__name__}: {message}")
        return 1
    finally:
        await engine.dispose()
    print(f"server:     PostgreSQL {version}")
    print(f"migrations: at {current or 'nothing (empty database)'}, head is {head}")
    return 0 if current == head else 2


def new(arguments: list[str]) -> int:
    """`new resource ...`: the resource generator, a development tool the image leaves out."""
    try:
        from scaffold.cli import main as generate
    except ModuleNotFoundError as error:
        if error.name != "scaffold":
            raise
        print(
            "the resource generator (scaffold/) is not here: run it from a checkout of the "
            "project's source, not from the image",
            file=sys.stderr,
        )
        return 2
    return generate(arguments)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m app")
    parser.add_argument(
        "command",
        choices=["check", "new"],
        help="check: connect and report; new: add a resource (`new resource --help`)",
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.command == "new":
        return new(options.arguments)
    if options.arguments:
        parser.error(f"check takes no arguments (got {' '.join(options.arguments)})")
    return asyncio.run(check(get_settings()))


if __name__ == "__main__":
    sys.exit(main())
