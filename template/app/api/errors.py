"""Failures answered as clear responses: 409/422 for what the client sent, 503/504 when the
database cannot serve, and a 500 only for a real bug."""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# SQLSTATEs, reported the same way by both drivers (`error.orig.sqlstate`).
QUERY_CANCELED = "57014"  # statement_timeout
CONFLICTS = {"23505", "23503"}  # unique violation, foreign key violation
DATA_EXCEPTION_CLASS = "22"  # a value PostgreSQL cannot store (too long, out of range, ...)
# Connection exceptions, and the server shutting down, starting up or ending the session.
UNAVAILABLE_CLASSES = ("08", "57P")
RETRY_AFTER_SECONDS = "1"

logger = logging.getLogger(__name__)


class AsciiJSONResponse(JSONResponse):
    """Escapes non-ASCII, so that input echoed back (even a lone surrogate) always encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class UnexpectedErrorMiddleware:
    """Answers an unhandled exception with a 500 itself. Left to the server, the exception makes
    it close the keep-alive connection, and a client's next request on it fails unanswered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send)


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def register_error_handlers(app: FastAPI) -> None:
    app.add_middleware(UnexpectedErrorMiddleware)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return AsciiJSONResponse(
            {"detail": jsonable_encoder(error.errors())},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(PoolTimeoutError)
    async def pool_timeout(request: Request, error: PoolTimeoutError) -> JSONResponse:
        return _unavailable("no database connection is free, try again")

    # asyncpg reports a failed connect as the builtin OSError it got (refused, timed out, no
    # socket file); the service does no other I/O that could raise one.
    @app.exception_handler(OSError)
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
        if (
            sqlstate.startswith(UNAVAILABLE_CLASSES)
            or error.connection_invalidated
            or isinstance(error, OperationalError | InterfaceError)
        ):
            return _unavailable("the database is unavailable, try again")
        raise error
