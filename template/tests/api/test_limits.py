"""The body size limit, at its default of 1 MiB (MAX_REQUEST_BODY_BYTES)."""

import json
from collections.abc import AsyncIterator

from httpx import AsyncClient

from app.config import Settings

CHUNK = b" " * 65_536


def test_the_limit_is_1_mib_by_default(settings: Settings) -> None:
    assert settings.max_request_body_bytes == 1_048_576


async def test_a_body_declared_too_large_answers_413_unread(client: AsyncClient) -> None:
    body = json.dumps({"email": "ada@example.com", "name": "x" * 2_000_000})
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert "1048576 bytes" in response.json()["detail"]


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(client: AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        nonlocal sent
        for _ in range(100):  # 6.5 MB in all
            sent += 1
            yield CHUNK

    response = await client.post(
        "/users", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert sent <= 1_048_576 // len(CHUNK) + 2  # read no further than the limit


async def test_a_body_within_the_limit_is_served(client: AsyncClient) -> None:
    response = await client.post("/users", json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 201
