from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient

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
