import json

import pytest
from httpx import AsyncClient

JSON_BODY = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada@example.com", "name": "é" * 100_000},
        {"email": "x" * 500_000, "name": "Ada"},
        {"email": "ada@example.com", "name": ["é" * 100] * 400},
        {"name": "é" * 100_000},
    ],
    ids=["long-name", "long-email", "list-instead-of-text", "missing-field"],
)
async def test_a_422_carries_only_a_short_prefix_of_the_input(
    client: AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/users", content=json.dumps(body), headers=JSON_BODY)

    assert response.status_code == 422
    assert len(response.content) < 2_000
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_a_422_shows_the_start_of_the_value_and_its_length(client: AsyncClient) -> None:
    body = {"email": "ada@example.com", "name": "x" * 101}

    response = await client.post("/users", json=body)

    [error] = response.json()["detail"]
    assert error["input"] == "x" * 40 + "... (101 characters)"
    assert error["loc"] == ["body", "name"]


async def test_a_422_about_a_lone_surrogate_encodes(client: AsyncClient) -> None:
    response = await client.post(
        "/users", content=b'{"email": "ada@example.com", "name": "\\ud800"}', headers=JSON_BODY
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == "\ud800"
