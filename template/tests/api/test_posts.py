import json

import pytest
from httpx import AsyncClient
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from tests.support import UserFactory


async def test_create_and_read_a_post_with_its_author(
    client: AsyncClient, user_factory: UserFactory
) -> None:
    author = await user_factory(name="Grace")

    created = await client.post(
        f"/users/{author.id}/posts", json={"title": "Hello", "body": "First post"}
    )
    assert created.status_code == 201

    fetched = await client.get(f"/posts/{created.json()['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["author"]["name"] == "Grace"


async def test_posting_for_an_unknown_user_answers_404(client: AsyncClient) -> None:
    response = await client.post("/users/999999/posts", json={"title": "t", "body": "b"})

    assert response.status_code == 404


async def test_unknown_post_answers_404(client: AsyncClient) -> None:
    response = await client.get("/posts/999999")

    assert response.status_code == 404


async def test_list_posts_of_an_author(client: AsyncClient, user_factory: UserFactory) -> None:
    author, other = await user_factory(), await user_factory()
    for title in ("one", "two"):
        await client.post(f"/users/{author.id}/posts", json={"title": title, "body": "b"})
    await client.post(f"/users/{other.id}/posts", json={"title": "other", "body": "b"})

    response = await client.get(f"/users/{author.id}/posts", params={"limit": 1})
    rest = await client.get(f"/users/{author.id}/posts", params={"offset": 1})

    titles = [post["title"] for post in response.json()["items"] + rest.json()["items"]]
    assert titles == ["one", "two"]
    assert response.json()["total"] == rest.json()["total"] == 2


async def test_an_unloaded_relationship_raises_instead_of_lazy_loading(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    created = await user_factory()
    session.expunge_all()
    user = await session.get(User, created.id)
    assert user is not None

    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = user.posts


@pytest.mark.parametrize("field", ["title", "body"])
@pytest.mark.parametrize(
    "value", ["\ud800", "text\udfff", "a\x00b"], ids=["lone-high", "lone-low", "nul"]
)
async def test_a_string_postgresql_cannot_store_answers_422(
    client: AsyncClient, user_factory: UserFactory, field: str, value: str
) -> None:
    author = await user_factory()
    body = {"title": "Title", "body": "Body"} | {field: value}

    response = await client.post(
        f"/users/{author.id}/posts",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
