"""Database failures answered as clear responses instead of bare 500s."""

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

QUERY_CANCELED = "57014"  # SQLSTATE of a statement_timeout, reported by both drivers
RETRY_AFTER_SECONDS = "1"


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _pool_timeout(request: Request, error: Exception) -> JSONResponse:
    return _unavailable("no database connection is free, try again")


async def _connection_error(request: Request, error: Exception) -> JSONResponse:
    # asyncpg reports a refused or timed-out connect as the builtin exception.
    return _unavailable("the database is unreachable, try again")


async def _integrity_error(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "the request conflicts with stored data"},
        status_code=status.HTTP_409_CONFLICT,
    )


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    if getattr(getattr(error, "orig", None), "sqlstate", None) == QUERY_CANCELED:
        return JSONResponse(
            {"detail": "the database query took too long"},
            status_code=status.HTTP_504_GATEWAY_TIMEOUT,
        )
    if isinstance(error, OperationalError | InterfaceError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        return _unavailable("the database is unavailable, try again")
    raise error


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PoolTimeoutError, _pool_timeout)
    app.add_exception_handler(ConnectionError, _connection_error)
    app.add_exception_handler(TimeoutError, _connection_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
