"""Failures answered as clear responses: 409/422 for what the client sent, 503/504 when the
database cannot serve, and a 500 only for a real bug. Only failures raised by the database
driver (or SQLAlchemy's pool) are mapped; anything else a handler raises is a logged 500."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import driver
from app.db.errors import (
    DatabaseUnavailableError,
    driver_error_of,
    failure_kind,
    is_stale_plan,
    sqlstate_of,
)
from app.metrics import count_failure, count_unavailable

# SQLSTATEs, reported the same way by both drivers (`error.orig.sqlstate`).
QUERY_CANCELED = "57014"  # statement_timeout
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout: a table or row held by another transaction
CONFLICTS = {"23505", "23503"}  # unique violation, foreign key violation
# The data exceptions (class 22) a client's input can cause when it reaches the database
# unvalidated. The rest of class 22 (division by zero, an invalid parameter passed to a
# function, ...) is a bug of the service: a logged 500.
CLIENT_DATA_EXCEPTIONS = {
    "22000",  # data_exception (asyncpg's refusal of a value, through SQLAlchemy)
    "22001",  # string_data_right_truncation: a string longer than its column
    "22003",  # numeric_value_out_of_range
    "22007",  # invalid_datetime_format
    "22008",  # datetime_field_overflow
    "22021",  # character_not_in_repertoire: a NUL byte in text
    "22P02",  # invalid_text_representation: text that is not a number, uuid, ...
    "22P05",  # untranslatable_character
}
# Connection exceptions, insufficient resources (53300 too many connections), and the server
# shutting down, starting up (57P03 cannot connect now) or ending the session.
UNAVAILABLE_CLASSES = ("08", "53", "57P")
RETRY_AFTER_SECONDS = "1"
# How long the shutdown waits for requests the server cancelled to roll back and answer.
CANCELLED_REQUESTS_SECONDS = 2.0
# A failure that repeats (every request while the database is down) is logged the first time,
# then at most once per interval with a count, so an outage does not flood the log.
FAILURE_LOG_INTERVAL_SECONDS = 60.0

logger = logging.getLogger(__name__)


class FailureLog:
    """Logs each kind of mapped database failure once, then a summary per interval."""

    def __init__(self, interval: float = FAILURE_LOG_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._last_logged: dict[str, float] = {}
        self._since_logged: dict[str, int] = {}

    def record(self, answer: int, kind: str) -> None:
        key = f"{answer} {kind}"
        now = time.monotonic()
        last = self._last_logged.get(key)
        if last is not None and now - last < self._interval:
            self._since_logged[key] = self._since_logged.get(key, 0) + 1
            return
        repeated = self._since_logged.pop(key, 0)
        self._last_logged[key] = now
        logger.warning(
            "database failure %s answered %d%s",
            kind,
            answer,
            f" ({repeated} more since the last report)" if repeated else "",
        )


class InFlight:
    """How many requests are being answered. At shutdown the lifespan waits a moment for the
    ones the server has just cancelled: they roll back and answer 503 before the process ends
    (uvicorn ends it right after the lifespan, cancelled requests unanswered)."""

    def __init__(self) -> None:
        self._count = 0
        self._none = asyncio.Event()
        self._none.set()

    def started(self) -> None:
        self._count += 1
        self._none.clear()

    def ended(self) -> None:
        self._count -= 1
        if not self._count:
            self._none.set()

    async def settled(self, *, within: float) -> None:
        with suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._none.wait()


def wait_for_requests_at_shutdown(app: FastAPI, in_flight: InFlight) -> None:
    """Wraps the app's lifespan: its shutdown (disposing the engines) starts once the requests
    still in flight have answered, or after CANCELLED_REQUESTS_SECONDS."""
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with serve(application) as state:
            yield state
            await in_flight.settled(within=CANCELLED_REQUESTS_SECONDS)

    app.router.lifespan_context = lifespan


class UnexpectedErrorMiddleware:
    """Answers an unhandled exception with a 500 itself. Left to the server, the exception makes
    it close the keep-alive connection, and a client's next request on it fails unanswered.
    A request the server cancels as it stops is answered 503 (see InFlight)."""

    def __init__(self, app: ASGIApp, in_flight: InFlight) -> None:
        self.app = app
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        self.in_flight.started()
        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
            await response(scope, receive, send)
        except asyncio.CancelledError:
            # The server cancels a request only when it stops (uvicorn once its graceful
            # shutdown times out): nothing was committed, so the client may retry elsewhere.
            # Answered here, the request ends; raised on, the server would log a traceback and
            # answer 500.
            if started:
                raise
            logger.warning(
                "%s %s cancelled: the server is stopping (answered 503)",
                scope["method"],
                scope["path"],
            )
            await STOPPING(scope, receive, send)
        finally:
            self.in_flight.ended()


# The answer to a request cut short by the server stopping; the connection closes with it.
STOPPING = JSONResponse(
    {"detail": "the server is stopping, try again"},
    status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    headers={"Retry-After": RETRY_AFTER_SECONDS, "Connection": "close"},
)


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def refused_by_the_driver(error: Exception) -> bool:
    """A value the driver would not send for its parameter's type, so the server never saw it."""
    return isinstance(driver_error_of(error), driver.REFUSED_VALUE) and not sqlstate_of(error)


def register_error_handlers(app: FastAPI) -> None:
    in_flight = InFlight()
    app.add_middleware(UnexpectedErrorMiddleware, in_flight=in_flight)
    wait_for_requests_at_shutdown(app, in_flight)
    failures = FailureLog()

    @app.exception_handler(PoolTimeoutError)
    async def pool_timeout(request: Request, error: PoolTimeoutError) -> JSONResponse:
        failures.record(503, "pool timeout")
        count_failure("pool_timeout")
        return _unavailable("no database connection is free, try again")

    @app.exception_handler(DatabaseUnavailableError)
    async def unavailable(request: Request, error: DatabaseUnavailableError) -> JSONResponse:
        failures.record(503, f"at connect: {error.kind}")
        count_unavailable(error.kind)
        return _unavailable("the database is unavailable, try again")

    async def database_error(request: Request, error: Exception) -> JSONResponse:
        sqlstate = sqlstate_of(error) or ""
        if sqlstate in CONFLICTS:
            return JSONResponse(
                {"detail": "the request conflicts with stored data"},
                status_code=status.HTTP_409_CONFLICT,
            )
        if sqlstate in CLIENT_DATA_EXCEPTIONS or refused_by_the_driver(error):
            return JSONResponse(
                {"detail": "a value is out of the range the database stores"},
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        if sqlstate == QUERY_CANCELED:
            failures.record(504, failure_kind(error))
            count_failure("statement_timeout")
            return JSONResponse(
                {"detail": "the database query took too long"},
                status_code=status.HTTP_504_GATEWAY_TIMEOUT,
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        if sqlstate == LOCK_NOT_AVAILABLE:
            failures.record(503, failure_kind(error))
            return _unavailable("the data is locked by another transaction, try again")
        if (
            sqlstate.startswith(UNAVAILABLE_CLASSES)
            or (isinstance(error, DBAPIError) and error.connection_invalidated)
            or is_stale_plan(error)  # a column's type changed: the next attempt re-prepares
            or isinstance(
                error, (OperationalError, InterfaceError, *driver.CONNECTION_LOST, *driver.UNUSABLE)
            )
        ):
            failures.record(503, failure_kind(error))
            count_unavailable(sqlstate)
            return _unavailable("the database is unavailable, try again")
        raise error

    # SQLAlchemy's errors, and the driver's own as reads on the driver raise them (app.db.reads).
    for raised in (DBAPIError, driver.ERROR, *driver.UNUSABLE):
        app.add_exception_handler(raised, database_error)
