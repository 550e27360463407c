import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.config import Settings
from app.main import create_app

CHUNK = b" " * 65_536


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"max_request_body_bytes": 1_048_576}))
    async with app.router.lifespan_context(app):
        yield app


def client_of(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


async def test_a_body_declared_too_large_answers_413_unread(limited_app: FastAPI) -> None:
    body = json.dumps({"email": "ada@example.com", "name": "x" * 2_000_000})
    async with client_of(limited_app) as client:
        response = await client.post(
            "/users", content=body, headers={"content-type": "application/json"}
        )

    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert "1048576 bytes" in response.json()["detail"]


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(limited_app: FastAPI) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        nonlocal sent
        for _ in range(100):  # 6.5 MB in all
            sent += 1
            yield CHUNK

    async with client_of(limited_app) as client:
        response = await client.post(
            "/users", content=chunks(), headers={"content-type": "application/json"}
        )

    assert response.status_code == 413
    assert sent <= 1_048_576 // len(CHUNK) + 2  # read no further than the limit


async def test_a_body_within_the_limit_is_served(limited_app: FastAPI) -> None:
    async with client_of(limited_app) as client:
        response = await client.post("/users", json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 201
