"""With a replica: a client that has just written reads from the primary, for a while."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.api.read_your_writes import READ_YOUR_WRITES_COOKIE
from app.config import Settings
from app.main import create_app


@pytest.fixture
async def replicated_app(
    settings: Settings, empty_tables: Callable[[], Awaitable[None]]
) -> AsyncIterator[FastAPI]:
    """An application whose replica is its primary (what matters here is the cookie); its
    writes are committed, and deleted afterwards."""
    replica = settings.database_url
    app = create_app(settings.model_copy(update={"database_replica_url": replica}))
    async with app.router.lifespan_context(app):
        yield app
    await empty_tables()


async def test_a_committed_write_sets_the_cookie_and_a_read_does_not(
    replicated_app: FastAPI,
) -> None:
    transport = ASGITransport(app=replicated_app)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        created = await client.post("/users", json={"email": "a@example.com", "name": "A"})
        replaced = await client.put(
            f"/users/{created.json()['id']}", json={"email": "b@example.com", "name": "B"}
        )
        client.cookies.clear()
        read = await client.get(f"/users/{created.json()['id']}")
        failed = await client.put("/users/999999", json={"email": "c@example.com", "name": "C"})

    assert READ_YOUR_WRITES_COOKIE in created.headers["set-cookie"]
    assert READ_YOUR_WRITES_COOKIE in replaced.headers["set-cookie"]
    assert "set-cookie" not in read.headers
    assert (failed.status_code, "set-cookie" in failed.headers) == (404, False)
