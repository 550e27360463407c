import json

import pytest
from httpx import AsyncClient

from tests.support import UserFactory

JSON_BODY = {"content-type": "application/json"}


def fullwidth(text: str) -> str:
    """`text` in the fullwidth forms of its ASCII characters (A becomes U+FF21)."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


async def test_create_user_returns_201_and_the_stored_user(client: AsyncClient) -> None:
    response = await client.post("/users", json={"email": "Ada@Example.com", "name": "Ada"})

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada"
    fetched = await client.get(f"/users/{body['id']}")
    assert fetched.json() == body


async def test_duplicate_email_answers_409(client: AsyncClient, user_factory: UserFactory) -> None:
    await user_factory(email="taken@example.com")

    response = await client.post("/users", json={"email": "taken@example.com", "name": "Bo"})

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


async def test_the_session_is_usable_after_a_conflict(
    client: AsyncClient, user_factory: UserFactory
) -> None:
    await user_factory(email="taken@example.com")
    await client.post("/users", json={"email": "taken@example.com", "name": "Bo"})

    response = await client.post("/users", json={"email": "free@example.com", "name": "Bo"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "name": "Ada"},
        {"email": "ada@example.com", "name": ""},
        {"email": "ada@example.com", "name": "x" * 101},
        {"email": "ada@example.com", "name": "nul\x00byte"},
        {"email": "ada@example.com"},
    ],
    ids=["bad-email", "empty-name", "long-name", "nul-byte", "missing-name"],
)
async def test_invalid_user_answers_422(client: AsyncClient, payload: dict[str, str]) -> None:
    response = await client.post("/users", json=payload)

    assert response.status_code == 422


# Ids are bigints: 2**63 - 1 is a valid id (404), 2**63 is not (422).
@pytest.mark.parametrize(
    "user_id", ["999999", "9223372036854775807", "0", "9223372036854775808", "abc"]
)
async def test_unknown_or_invalid_user_id_answers_4xx(client: AsyncClient, user_id: str) -> None:
    response = await client.get(f"/users/{user_id}")

    assert response.status_code == (404 if user_id in ("999999", "9223372036854775807") else 422)


async def test_list_users_pages_in_id_order(client: AsyncClient, user_factory: UserFactory) -> None:
    created = [await user_factory() for _ in range(3)]

    first_page = await client.get("/users", params={"limit": 2})
    second_page = await client.get("/users", params={"limit": 2, "offset": 2})

    ids = [user["id"] for user in first_page.json()["items"] + second_page.json()["items"]]
    assert ids == [user.id for user in created]
    assert first_page.json()["total"] == second_page.json()["total"] == 3
    assert (second_page.json()["limit"], second_page.json()["offset"]) == (2, 2)


async def test_list_users_counts_them_on_an_empty_page(
    client: AsyncClient, user_factory: UserFactory
) -> None:
    for _ in range(2):
        await user_factory()

    past_the_end = await client.get("/users", params={"offset": 5})

    assert past_the_end.json() == {"items": [], "total": 2, "limit": 50, "offset": 5}


async def test_list_users_of_an_empty_table(client: AsyncClient) -> None:
    response = await client.get("/users")

    assert response.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
async def test_list_users_keeps_its_bounds(client: AsyncClient, query: dict[str, int]) -> None:
    response = await client.get("/users", params=query)

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("spelling", "stored"),
    [
        (fullwidth("ADA@example.com"), "ada@example.com"),
        ("jose\u0301@example.com", "jos\u00e9@example.com"),
    ],
    ids=["fullwidth", "decomposed-accent"],
)
async def test_an_email_is_stored_in_one_spelling(
    client: AsyncClient, spelling: str, stored: str
) -> None:
    response = await client.post("/users", json={"email": spelling, "name": "Ada"})

    assert response.status_code == 201
    assert response.json()["email"] == stored


async def test_look_alike_spellings_of_one_email_are_one_account(client: AsyncClient) -> None:
    first = await client.post("/users", json={"email": "jos\u00e9@example.com", "name": "A"})
    look_alikes = [
        "jose\u0301@example.com",
        fullwidth("JOS") + "\u00c9@example.com",
        "jos\u00e9@EXAMPLE.COM",
    ]

    responses = [
        await client.post("/users", json={"email": email, "name": "B"}) for email in look_alikes
    ]

    assert first.status_code == 201
    assert [response.status_code for response in responses] == [409, 409, 409]


@pytest.mark.parametrize(
    "email",
    [
        "ada\u200b@example.com",
        "ada\x7f@example.com",
        "ada\u00ad@example.com",
        "ada@exam\u2060ple.com",
        "\u3164ada@example.com",
        "ada\u202e@example.com",
    ],
    ids=["zero-width-space", "del", "soft-hyphen", "word-joiner", "hangul-filler", "bidi-override"],
)
async def test_an_email_with_a_control_or_invisible_character_answers_422(
    client: AsyncClient, email: str
) -> None:
    response = await client.post("/users", json={"email": email, "name": "Ada"})

    assert response.status_code == 422


@pytest.mark.parametrize("field", ["email", "name"])
@pytest.mark.parametrize("value", ["\ud800", "low\udfff", "a\x00b"], ids=["high", "low", "nul"])
async def test_a_string_postgresql_cannot_store_answers_422(
    client: AsyncClient, field: str, value: str
) -> None:
    body = {"email": "ada@example.com", "name": "Ada"} | {field: value}

    response = await client.post("/users", content=json.dumps(body), headers=JSON_BODY)

    assert response.status_code == 422


async def test_replace_user_stores_and_returns_the_new_email_and_name(
    client: AsyncClient, user_factory: UserFactory
) -> None:
    user = await user_factory(email="old@example.com", name="Old")

    response = await client.put(
        f"/users/{user.id}", json={"email": "New@Example.com", "name": "New"}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["email"], body["name"]) == (user.id, "new@example.com", "New")
    assert (await client.get(f"/users/{user.id}")).json() == body


async def test_replace_unknown_user_answers_404(client: AsyncClient) -> None:
    response = await client.put("/users/999999", json={"email": "a@example.com", "name": "A"})

    assert response.status_code == 404


async def test_replace_user_with_a_taken_email_answers_409(
    client: AsyncClient, user_factory: UserFactory
) -> None:
    await user_factory(email="taken@example.com")
    user = await user_factory()

    response = await client.put(
        f"/users/{user.id}", json={"email": "taken@example.com", "name": "B"}
    )

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


async def test_replace_user_with_an_invalid_body_answers_422(
    client: AsyncClient, user_factory: UserFactory
) -> None:
    user = await user_factory()

    response = await client.put(f"/users/{user.id}", json={"email": "not-an-email", "name": "A"})

    assert response.status_code == 422
