import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.config import Settings
from app.db.session import ConnectionQueue
from app.main import create_app
from tests.support import pooled


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def pooled_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(pooled(settings))
    async with app.router.lifespan_context(app):
        yield app


async def test_the_pool_reports_its_size_connections_opened_and_in_use(
    pooled_app: FastAPI, settings: Settings
) -> None:
    opened = sample("db_pool_connections_opened_total", engine="primary")
    in_use = sample("db_pool_connections_in_use", engine="primary")
    transport = ASGITransport(app=pooled_app)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/users?limit=1")
        await client.get("/users?limit=1")

    assert (
        sample("db_pool_size", engine="primary") == settings.db_pool_size + settings.db_max_overflow
    )
    # One connection serves both requests in turn, and it is back in the pool afterwards.
    assert sample("db_pool_connections_opened_total", engine="primary") == opened + 1
    assert sample("db_pool_connections_in_use", engine="primary") == in_use


async def test_a_request_that_waits_for_a_connection_is_counted_and_timed(
    settings: Settings,
) -> None:
    queue = ConnectionQueue(
        settings.model_copy(
            update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.2}
        )
    )
    waits = sample("db_connection_queue_wait_seconds_count", engine="primary")
    slow = sample("db_connection_queue_wait_seconds_bucket", engine="primary", le="0.1")

    async with queue.turn():
        waiter = asyncio.create_task(queue.turn().__aenter__())
        await asyncio.sleep(0.05)
        assert sample("db_connection_queue_waiting", engine="primary") == 1
        with pytest.raises(PoolTimeoutError):
            await waiter

    assert sample("db_connection_queue_waiting", engine="primary") == 0
    assert sample("db_connection_queue_wait_seconds_count", engine="primary") == waits + 1
    # It waited the whole DB_POOL_TIMEOUT: longer than 0.1 s.
    assert sample("db_connection_queue_wait_seconds_bucket", engine="primary", le="0.1") == slow
