"""With a replica: a client that has just written reads from the primary, for a while."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families

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


def scraped(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a scrape's text."""
    for family in text_string_to_metric_families(text):
        for each in family.samples:
            if each.name == name and each.labels == labels:
                return each.value
    raise AssertionError(f"{name} {labels} is not in the scrape")


async def test_reads_the_cookie_sends_to_the_primary_are_counted_apart(
    replicated_app: FastAPI,
) -> None:
    transport = ASGITransport(app=replicated_app)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        before = (await client.get("/metrics")).text
        created = await client.post("/users", json={"email": "a@example.com", "name": "A"})
        path = f"/users/{created.json()['id']}"
        after_its_write = await client.get(path)  # with the cookie: on the primary
        client.cookies.clear()
        others = [await client.get(path) for _ in range(2)]  # without: on the replica
        after = (await client.get("/metrics")).text

    assert [each.status_code for each in (after_its_write, *others)] == [200, 200, 200]

    def moved(name: str, **labels: str) -> float:
        return scraped(after, name, **labels) - scraped(before, name, **labels)

    assert moved("db_reads_after_write_total") == 1
    assert moved("db_reads_total", engine="primary") == 1
    assert moved("db_reads_total", engine="replica") == 2
