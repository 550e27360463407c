import io
import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from app.api.deps import SessionDep
from app.config import DRIVER, Settings
from app.logs import configure_logging
from app.main import create_app

SECRET = "secret-4242"


@pytest.fixture
async def production_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, io.StringIO]]:
    """An application configured as in production (JSON logs into a buffer), with routes whose
    statements fail on a value given to them: what a bug letting a value through would do."""
    production = settings.model_copy(update={"environment": "production", "log_format": "json"})
    app = create_app(production)
    output = io.StringIO()
    configure_logging(production, stream=output)

    @app.get("/unencodable")
    async def unencodable(session: SessionDep) -> None:
        await session.execute(text("SELECT CAST(:value AS text)"), {"value": f"{SECRET}\ud800"})

    @app.get("/quoted-by-the-server")
    async def quoted_by_the_server(session: SessionDep) -> None:
        await session.execute(text("SELECT CAST(:value AS regclass)"), {"value": SECRET})

    async with app.router.lifespan_context(app):
        yield app, output
    configure_logging(settings)


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        # asyncpg refuses the value before sending it (a 422, app.api.errors); psycopg's
        # encoder raises a UnicodeEncodeError, a fault.
        ("/unencodable", 422 if DRIVER == "asyncpg" else 500),
        ("/quoted-by-the-server", 500),
    ],
    ids=["unencodable", "quoted-by-the-server"],
)
async def test_production_logs_never_carry_a_statement_s_values(
    production_app: tuple[FastAPI, io.StringIO], path: str, answer: int
) -> None:
    app, output = production_app
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get(path)

    assert response.status_code == answer
    assert SECRET not in output.getvalue() + response.text
    if answer != 500:
        return
    [logged] = [json.loads(line) for line in output.getvalue().splitlines() if "exception" in line]
    assert "message hidden" in logged["exception"]
    if path == "/quoted-by-the-server":  # the statement stays, its values go
        assert "statement: SELECT CAST(" in logged["exception"]
