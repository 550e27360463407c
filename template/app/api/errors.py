"""Failures answered as clear responses: 409/422 for what the client sent, 503/504 when the
database cannot serve, and a 500 only for a real bug."""

import json
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATEs, reported the same way by both drivers (`error.orig.sqlstate`).
QUERY_CANCELED = "57014"  # statement_timeout
CONFLICTS = {"23505", "23503"}  # unique violation, foreign key violation
DATA_EXCEPTION_CLASS = "22"  # a value PostgreSQL cannot store (too long, out of range, ...)
RETRY_AFTER_SECONDS = "1"


class AsciiJSONResponse(JSONResponse):
    """Escapes non-ASCII, so that input echoed back (even a lone surrogate) always encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return AsciiJSONResponse(
            {"detail": jsonable_encoder(error.errors())},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(PoolTimeoutError)
    async def pool_timeout(request: Request, error: PoolTimeoutError) -> JSONResponse:
        return _unavailable("no database connection is free, try again")

    # asyncpg reports a refused or timed-out connect as the builtin exceptions.
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def unreachable(request: Request, error: OSError) -> JSONResponse:
        return _unavailable("the database is unreachable, try again")

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        sqlstate = str(getattr(error.orig, "sqlstate", ""))
        if sqlstate == QUERY_CANCELED:
            return JSONResponse(
                {"detail": "the database query took too long"},
                status_code=status.HTTP_504_GATEWAY_TIMEOUT,
            )
        if sqlstate in CONFLICTS:
            return JSONResponse(
                {"detail": "the request conflicts with stored data"},
                status_code=status.HTTP_409_CONFLICT,
            )
        if sqlstate.startswith(DATA_EXCEPTION_CLASS):
            return JSONResponse(
                {"detail": "a value is out of the range the database stores"},
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
            return _unavailable("the database is unavailable, try again")
        raise error
