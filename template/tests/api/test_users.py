import pytest
from httpx import AsyncClient

from tests.support import UserFactory


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


@pytest.mark.parametrize("user_id", ["999999", "0", "2147483648", "abc"])
async def test_unknown_or_invalid_user_id_answers_4xx(client: AsyncClient, user_id: str) -> None:
    response = await client.get(f"/users/{user_id}")

    assert response.status_code == (404 if user_id == "999999" else 422)


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
