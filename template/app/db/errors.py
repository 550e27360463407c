"""What a database failure means, the same way for either driver: the connect failures that
say the database is unavailable, and the constraint an integrity error violated."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import DBAPIError, EmulatedDBAPIException
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

# What PostgreSQL raises (SQLSTATE, and the function in its source) when a prepared statement's
# plan would now return other column types.
FEATURE_NOT_SUPPORTED = "0A000"
STALE_PLAN_FUNCTION = "RevalidateCachedQuery"


class DatabaseUnavailableError(Exception):
    """Connecting to the database failed: refused, timed out, or turned away by the server
    (too many connections, starting up, shutting down). `kind` names the failure, its SQLSTATE
    or the exception's class, and never carries the URL or the password."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"cannot connect to the database ({kind})")
        self.kind = kind


def driver_error_of(error: BaseException) -> BaseException:
    """The driver's own exception. SQLAlchemy wraps it; asyncpg's come wrapped twice, by
    SQLAlchemy's adapter too, which keeps it as `orig` or, for a few, only as the cause it
    raised its own from. A driver's own exception (a read's on the driver) is returned as it
    is, whatever it was raised from."""
    if isinstance(error, DBAPIError):
        error = error.orig or error
    if isinstance(error, EmulatedDBAPIException):  # the adapter's, never the driver's own
        inner = getattr(error, "orig", None) or error.__cause__
        if isinstance(inner, Exception):
            return inner
    return error


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE of a driver's or SQLAlchemy's error, when the server sent one."""
    sqlstate = getattr(driver_error_of(error), "sqlstate", None)
    return str(sqlstate) if sqlstate else None


def failure_kind(error: BaseException) -> str:
    """SQLSTATE and the driver's exception class: never the message, which may name the host."""
    sqlstate = sqlstate_of(error)
    name = type(driver_error_of(error)).__name__
    return f"SQLSTATE {sqlstate} ({name})" if sqlstate else name


def is_stale_plan(error: BaseException) -> bool:
    """A prepared statement whose result changed type under it (a column's type altered while
    the service runs): PostgreSQL refuses to run its cached plan. Told by the server function
    that raised it, which the server's language does not change."""
    driver_error = driver_error_of(error)
    # psycopg reports it in its diagnostic, asyncpg on the error itself.
    diagnostic = getattr(driver_error, "diag", None)
    function = getattr(diagnostic, "source_function", None) or getattr(
        driver_error, "server_source_function", None
    )
    return sqlstate_of(error) == FEATURE_NOT_SUPPORTED and function == STALE_PLAN_FUNCTION


def replace_connections_with_stale_plans(engine: AsyncEngine) -> None:
    """A statement that failed on a stale plan invalidates its connection, and SQLAlchemy then
    replaces every connection of the pool opened before it: their prepared statements are just
    as stale, and psycopg would run them, and fail, again and again. The failed request is
    answered 503 (app.api.errors); asyncpg's adapter clears its own statement cache as well."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def replace_when_stale(context: ExceptionContext) -> None:
        if is_stale_plan(context.original_exception):
            context.is_disconnect = True


def violated_constraint(error: BaseException) -> str | None:
    """The name of the constraint an integrity error violated, raised by SQLAlchemy or by the
    driver itself (app.db.reads' direct path); asyncpg and psycopg report it in different
    places. None for any other error."""
    driver_error = driver_error_of(error)
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
