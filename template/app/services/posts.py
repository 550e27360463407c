from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.models import Post, User
from app.schemas.post import PostCreate
from app.services.pages import fetch_page


async def create_post(*, session: AsyncSession, author: User, data: PostCreate) -> Post:
    post = Post(author_id=author.id, title=data.title, body=data.body)
    session.add(post)
    await session.flush()
    return post


async def get_post_with_author(*, session: AsyncSession, post_id: int) -> Post | None:
    return await session.scalar(
        select(Post).where(Post.id == post_id).options(selectinload(Post.author))
    )


async def list_posts_by(
    *, session: AsyncSession, author: User, limit: int, offset: int
) -> tuple[list[Post], int]:
    """A page of the author's posts in id order, and how many posts the author has."""
    query = select(Post).where(Post.author_id == author.id).order_by(Post.id)
    return await fetch_page(session=session, query=query, limit=limit, offset=offset)
