"""Failures become clear status codes: never a 500 for bad input or a database that cannot serve."""

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import URL, Integer, bindparam, cast, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.deps import ReaderDep, SessionDep
from app.config import DRIVER, Settings
from app.main import create_app
from tests.support import (
    UNREACHABLE_PASSWORD,
    WORKER_DATABASE,
    admin_connection,
    pooled,
    silent_server,
    unreachable,
    with_url,
)

ERRORS_LOGGER = "app.api.errors"
# A value for an `integer` (int4) column, as a hand-written table's id or count would take it.
AS_INT4 = select(cast(bindparam("value"), Integer).label("value"))


@pytest.fixture
async def strained_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An application with a one-connection pool, a short pool wait and a short statement
    timeout, plus a route whose query outlasts that timeout."""
    app = create_app(
        settings.model_copy(
            update={
                "environment": "development",  # a real pool, whatever the test strategy
                "db_pool_size": 1,
                "db_max_overflow": 0,
                "db_pool_timeout": 0.2,
                "db_statement_timeout": 0.2,
            }
        )
    )

    @app.get("/slow")
    async def slow(session: SessionDep) -> None:
        await session.execute(text("SELECT pg_sleep(2)"))

    async with app.router.lifespan_context(app):
        yield app


def client_of(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


async def test_a_runaway_query_answers_504_and_frees_its_connection(strained_app: FastAPI) -> None:
    async with client_of(strained_app) as client:
        slow = await client.get("/slow")
        after = await client.get("/users")

    assert slow.status_code == 504
    assert slow.json() == {"detail": "the database query took too long"}
    assert slow.headers["Retry-After"] == "1"
    assert after.status_code == 200


async def test_a_locked_table_answers_503_with_retry_after_within_the_lock_timeout(
    settings: Settings, fixture_engine: AsyncEngine
) -> None:
    # Without a lock timeout the request waits for the statement timeout (here 10 s).
    locking = pooled(settings, db_lock_timeout=0.2, db_statement_timeout=10)
    app = create_app(locking)
    async with app.router.lifespan_context(app), fixture_engine.connect() as holder:
        await holder.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
        try:
            async with client_of(app) as client, asyncio.timeout(5):
                read = await client.get("/users")
                write = await client.post("/users", json={"email": "l@example.com", "name": "L"})
        finally:
            await holder.rollback()

    for response in (read, write):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"


async def test_a_host_that_never_answers_gets_503_within_the_connect_timeout(
    settings: Settings,
) -> None:
    # psycopg (libpq) counts whole seconds, 2 at least; asyncpg's own default is 60 s.
    async with silent_server(pooled(settings, db_connect_timeout=1)) as silent:
        app = create_app(silent)
        async with app.router.lifespan_context(app), client_of(app) as client:
            started = time.monotonic()
            async with asyncio.timeout(10):
                response = await client.get("/users")
            waited = time.monotonic() - started

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert waited < 3


async def test_an_exhausted_pool_answers_503_with_retry_after(strained_app: FastAPI) -> None:
    engine: AsyncEngine = strained_app.state.engine
    async with engine.connect(), client_of(strained_app) as client:  # holds the only connection
        response = await client.get("/users")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "body",
    [
        b'{"email": "a@example.com", "name": "\\ud800"}',
        b'{"email": "a@example.com", "name": "Ada"',
        b'{"email": "' + "İ".encode() * 300 + b'@example.com", "name": "Ada"}',
        b"[]",
    ],
    ids=["lone-surrogate", "truncated-json", "email-longer-once-lowercased", "not-an-object"],
)
async def test_malformed_bodies_answer_422(client: AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422


async def test_an_unexpected_error_answers_500_without_reaching_the_server(
    settings: Settings,
) -> None:
    app = create_app(settings)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    # ASGITransport re-raises what the app lets escape: this passes only if nothing does.
    async with client_of(app) as client:
        response = await client.get("/broken")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == ERRORS_LOGGER and record.levelno == logging.WARNING
    ]


def unexpected_errors(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    """The exceptions logged as unhandled (with their traceback), in order."""
    return [
        record.exc_info[1]
        for record in caplog.records
        if record.levelno == logging.ERROR and record.exc_info and record.exc_info[1]
    ]


@pytest.fixture
async def app_with_bugs(settings: Settings) -> AsyncIterator[FastAPI]:
    """An application with routes that fail in ways that are not the database's."""
    app = create_app(settings)

    @app.get("/missing-file")
    def missing_file() -> str:
        return Path("/nonexistent/configuration.toml").read_text()

    @app.get("/expired-timeout")
    async def expired_timeout() -> None:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)

    @app.get("/division-by-zero")
    async def division_by_zero(session: SessionDep) -> None:
        await session.execute(text("SELECT 1 / 0"))

    @app.get("/as-integer")
    async def as_integer(value: str, session: SessionDep) -> None:
        await session.execute(
            text("SELECT CAST(CAST(:value AS text) AS integer)"), {"value": value}
        )

    @app.get("/as-int4/{value}")
    async def as_int4(value: int, reader: ReaderDep) -> None:
        await reader.first(AS_INT4, value=value)

    async with app.router.lifespan_context(app):
        yield app


@pytest.mark.parametrize(
    ("path", "raised"),
    [
        ("/missing-file", FileNotFoundError),
        ("/expired-timeout", TimeoutError),
        ("/division-by-zero", Exception),
    ],
    ids=["missing-file", "expired-asyncio-timeout", "division-by-zero"],
)
async def test_a_bug_answers_a_logged_500_not_a_database_outage(
    app_with_bugs: FastAPI,
    caplog: pytest.LogCaptureFixture,
    path: str,
    raised: type[BaseException],
) -> None:
    async with client_of(app_with_bugs) as client:
        response = await client.get(path)

    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    [logged] = unexpected_errors(caplog)
    assert isinstance(logged, raised)


@pytest.mark.parametrize("value", ["twelve", "1\x00"], ids=["not-a-number", "nul-byte"])
async def test_a_value_the_client_sent_that_the_database_refuses_answers_422(
    app_with_bugs: FastAPI, value: str
) -> None:
    async with client_of(app_with_bugs) as client:
        response = await client.get("/as-integer", params={"value": value})

    assert response.status_code == 422


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1], ids=["above-int4", "below-int4"])
async def test_a_number_too_big_for_its_column_answers_422(
    app_with_bugs: FastAPI, value: int
) -> None:
    async with client_of(app_with_bugs) as client:
        through_sqlalchemy = await client.get(f"/as-int4/{value}")
        for _ in range(2):  # planned: its next run is on the driver itself
            await client.get("/as-int4/1")
        on_the_driver = await client.get(f"/as-int4/{value}")

    assert (through_sqlalchemy.status_code, on_the_driver.status_code) == (422, 422)


async def test_an_unreachable_database_answers_503_and_logs_a_few_lines_without_secrets(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(unreachable(settings))
    async with app.router.lifespan_context(app), client_of(app) as client:
        responses = [await client.get("/users") for _ in range(100)]

    assert {response.status_code for response in responses} == {503}
    assert {response.headers["Retry-After"] for response in responses} == {"1"}
    logged = warnings_of(caplog)
    assert 1 <= len(logged) <= 3, logged
    for line in logged:
        assert re.search(r"SQLSTATE \w{5}|\w+Error", line), line
        assert UNREACHABLE_PASSWORD not in line
        assert "127.0.0.1" not in line


@pytest.fixture
async def refused_role_settings(settings: Settings, server_url: URL) -> AsyncIterator[Settings]:
    """Settings for a role the server turns away: its connection limit is 0 (SQLSTATE 53300,
    as when every connection slot is taken)."""
    role = f"{WORKER_DATABASE}_refused"
    async with admin_connection(server_url) as admin:
        await admin.execute(
            text(
                f"CREATE ROLE \"{role}\" LOGIN CONNECTION LIMIT 0 PASSWORD '{UNREACHABLE_PASSWORD}'"
            )
        )
    yield with_url(settings, settings.url.set(username=role, password=UNREACHABLE_PASSWORD))
    async with admin_connection(server_url) as admin:
        await admin.execute(text(f'DROP ROLE "{role}"'))


async def test_a_server_refusing_connections_answers_503_and_logs_its_sqlstate(
    refused_role_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(refused_role_settings)
    async with app.router.lifespan_context(app), client_of(app) as client:
        responses = [await client.get("/users") for _ in range(20)]

    assert {response.status_code for response in responses} == {503}
    assert responses[0].headers["Retry-After"] == "1"
    [logged] = warnings_of(caplog)
    # libpq keeps the SQLSTATE of a refused startup to itself: psycopg reports only the class.
    assert {"asyncpg": "SQLSTATE 53300", "psycopg": "OperationalError"}[DRIVER] in logged
    assert UNREACHABLE_PASSWORD not in logged
