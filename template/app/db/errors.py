"""What a database failure means, the same way for either driver: the connect failures that
say the database is unavailable, and the constraint an integrity error violated."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry


class DatabaseUnavailableError(Exception):
    """Connecting to the database failed: refused, timed out, or turned away by the server
    (too many connections, starting up, shutting down). `kind` names the failure, its SQLSTATE
    or the exception's class, and never carries the URL or the password."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"cannot connect to the database ({kind})")
        self.kind = kind


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of a driver's or SQLAlchemy's error, when the server sent one."""
    if isinstance(error, DBAPIError):
        error = error.orig or error
    sqlstate = getattr(error, "sqlstate", None)
    return str(sqlstate) if sqlstate else None


def failure_kind(error: BaseException) -> str:
    """SQLSTATE and the driver's exception class: never the message, which may name the host."""
    # asyncpg's errors come wrapped by SQLAlchemy (twice, once raised): name the driver's own.
    driver_error = error.driver_exception if isinstance(error, DBAPIError) else error
    driver_error = getattr(driver_error, "orig", None) or driver_error
    sqlstate = sqlstate_of(error)
    name = type(driver_error).__name__
    return f"SQLSTATE {sqlstate} ({name})" if sqlstate else name


def violated_constraint(error: DBAPIError) -> str | None:
    """The name of the constraint an integrity error violated: asyncpg and psycopg report it
    in different places."""
    driver_error = error.driver_exception
    name = getattr(driver_error, "constraint_name", None)  # asyncpg
    if name is None and (diagnostic := getattr(driver_error, "diag", None)) is not None:
        name = diagnostic.constraint_name  # psycopg
    return str(name) if name else None


def report_connect_failures_as_unavailable(
    engine: AsyncEngine, *, also: Callable[[BaseException], None] | None = None
) -> None:
    """Turn every failure to open a connection into DatabaseUnavailableError. asyncpg raises
    the OSError or TimeoutError it got, which says nothing about where it came from once it
    leaves here; only at connect time is it known to be the database's. `also` sees the
    driver's own error first (SQLAlchemy's handle_error never does: it is not a DBAPI error
    once translated)."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, dialect.loaded_dbapi.Error) as error:
            if also is not None:
                also(error)
            raise DatabaseUnavailableError(failure_kind(error)) from error
