import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from tests.support import unreachable


@pytest.fixture
async def client_without_database(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client of an application whose database does not answer."""
    app = create_app(unreachable(settings))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


async def test_live_answers_without_the_database(client_without_database: AsyncClient) -> None:
    response = await client_without_database.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_answers_ok_when_the_database_answers(client: AsyncClient) -> None:
    response = await client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_answers_503_without_the_database(client_without_database: AsyncClient) -> None:
    response = await client_without_database.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def count_checkouts(engine: AsyncEngine) -> Callable[[], int]:
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(None))
    return lambda: len(checkouts)


@pytest.fixture
async def ready_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_flood_of_probes_shares_its_checks_and_every_probe_answers_200(
    ready_app: FastAPI,
) -> None:
    checks = count_checkouts(ready_app.state.probe_engine)
    started = time.monotonic()
    async with AsyncClient(transport=ASGITransport(app=ready_app), base_url="http://t") as client:
        responses = await asyncio.gather(*(client.get("/health/ready") for _ in range(1000)))
    seconds = time.monotonic() - started

    assert Counter(response.status_code for response in responses) == {200: 1000}
    assert checks() <= seconds + 1  # one check in flight, its answer shared for a second


async def test_a_probe_a_second_after_a_check_checks_again(ready_app: FastAPI) -> None:
    checks = count_checkouts(ready_app.state.probe_engine)
    async with AsyncClient(transport=ASGITransport(app=ready_app), base_url="http://t") as client:
        await client.get("/health/ready")
        await client.get("/health/ready")
        await asyncio.sleep(1.05)
        await client.get("/health/ready")

    assert checks() == 2
