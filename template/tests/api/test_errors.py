"""Failures become clear status codes: never a 500 for bad input or a database that cannot serve."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.deps import SessionDep
from app.config import Settings
from app.main import create_app


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
    assert after.status_code == 200


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
