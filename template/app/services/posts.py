from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db.reads import Reader
from app.models import Post, User
from app.schemas.page import Page
from app.schemas.post import PostCreate, PostRead
from app.services.pages import PageQuery

POST_PAGES_BY_AUTHOR = PageQuery(
    select(Post).where(Post.author_id == bindparam("author_id")).order_by(Post.id)
)


async def create_post(*, session: AsyncSession, author: User, data: PostCreate) -> Post:
    post = Post(author_id=author.id, title=data.title, body=data.body)
    session.add(post)
    await session.flush()
    return post


async def get_post_with_author(*, session: AsyncSession, post_id: int) -> Post | None:
    """The post as an ORM object with its author loaded (a second query, by primary key)."""
    return await session.scalar(
        select(Post).where(Post.id == post_id).options(selectinload(Post.author))
    )


async def list_posts_by(
    *, reader: Reader, author_id: int, limit: int, offset: int
) -> Page[PostRead]:
    """A page of the author's posts in id order, and how many posts the author has."""
    return await POST_PAGES_BY_AUTHOR.fetch(
        reader, PostRead, limit=limit, offset=offset, author_id=author_id
    )
