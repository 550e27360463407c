"""Database failures the service recovers from by itself."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from tests.support import pooled

CONNECTIONS = 4
# A column's type changed and changed back, as a migration and its rollback would do live.
ROLLING_MIGRATION = [
    "ALTER TABLE users ALTER COLUMN name TYPE text",
    "ALTER TABLE users ALTER COLUMN name TYPE varchar(100)",
]


@pytest.fixture
async def loaded_app(
    settings: Settings, empty_tables: Callable[[], Awaitable[None]]
) -> AsyncIterator[FastAPI]:
    app = create_app(pooled(settings, db_pool_size=CONNECTIONS, db_max_overflow=0))
    async with app.router.lifespan_context(app):
        yield app
    await empty_tables()


async def load(client: AsyncClient, user_id: int, seconds: float) -> list[Response]:
    """Reads by id (each statement on its own) and writes checking the user (in a transaction),
    from more clients than there are connections, for `seconds`."""
    responses: list[Response] = []

    async def one_client(number: int) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if number % 2:
                responses.append(await client.get(f"/users/{user_id}"))
            else:
                post = {"title": "T", "body": "B"}
                responses.append(await client.post(f"/users/{user_id}/posts", json=post))

    await asyncio.gather(*(one_client(number) for number in range(2 * CONNECTIONS)))
    return responses


async def test_a_column_type_changed_under_load_costs_at_most_a_503_per_connection(
    loaded_app: FastAPI, fixture_engine: AsyncEngine
) -> None:
    async with AsyncClient(transport=ASGITransport(app=loaded_app), base_url="http://t") as client:
        created = await client.post("/users", json={"email": "a@example.com", "name": "Ada"})
        user_id = created.json()["id"]
        await load(client, user_id, seconds=1)  # every statement prepared on every connection
        failed: list[Response] = []
        for migration in ROLLING_MIGRATION:
            async with fixture_engine.begin() as connection:
                await connection.execute(text(migration))
            during = await load(client, user_id, seconds=1)
            failed += [response for response in during if response.status_code not in (200, 201)]

    statuses = Counter(response.status_code for response in failed)
    assert statuses.keys() <= {503}, statuses
    assert len(failed) <= CONNECTIONS * len(ROLLING_MIGRATION), statuses
    assert all(response.headers["Retry-After"] == "1" for response in failed)
