from sqlalchemy import bindparam, insert, select
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
# Written on the table, as app.services.users writes users: the stored row, as the client sees it.
POSTS = Post.metadata.tables[Post.__tablename__]
POST_INSERT = (
    insert(POSTS)
    .values(author_id=bindparam("author_id"), title=bindparam("title"), body=bindparam("body"))
    .returning(*POSTS.c)
)


async def create_post(*, session: AsyncSession, author: User, data: PostCreate) -> PostRead:
    parameters = {"author_id": author.id, "title": data.title, "body": data.body}
    result = await session.execute(POST_INSERT, parameters)
    return PostRead.model_validate(result.one())


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
