"""The API's documentation: served while developing, not in production, unless API_DOCS says."""

from collections.abc import Iterator

import pytest
from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.logs import configure_logging
from app.main import create_app

DOCS = ["/docs", "/redoc", "/openapi.json"]


@pytest.fixture
def restore_logging(settings: Settings) -> Iterator[None]:
    yield
    configure_logging(settings)  # create_app configured it for the environment under test


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("environment", "api_docs", "status"),
    [
        ("production", None, 404),
        ("development", None, 200),
        ("test", None, 200),
        ("production", True, 200),
        ("development", False, 404),
    ],
)
async def test_docs_follow_the_environment_unless_api_docs_is_set(
    settings: Settings, environment: str, api_docs: bool | None, status: int
) -> None:
    # No lifespan needed: these routes do not touch the database.
    app = create_app(settings.model_copy(update={"environment": environment, "api_docs": api_docs}))

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        statuses = [(await client.get(path)).status_code for path in DOCS]

    assert statuses == [status] * len(DOCS)
