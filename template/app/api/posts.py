from fastapi import APIRouter, HTTPException, status

from app.api.deps import (
    ReaderDep,
    ReadSessionDep,
    ReadUserDep,
    ResourceId,
    SessionDep,
    UserDep,
)
from app.schemas.fields import Limit, Offset
from app.schemas.page import Page
from app.schemas.post import PostCreate, PostRead, PostWithAuthor
from app.services import posts

router = APIRouter(tags=["posts"])


@router.post("/users/{user_id}/posts", status_code=status.HTTP_201_CREATED, responses={404: {}})
async def create_post(author: UserDep, data: PostCreate, session: SessionDep) -> PostRead:
    return await posts.create_post(session=session, author=author, data=data)


@router.get("/users/{user_id}/posts", responses={404: {}})
async def list_posts_by(
    author: ReadUserDep, reader: ReaderDep, limit: Limit = 50, offset: Offset = 0
) -> Page[PostRead]:
    return await posts.list_posts_by(reader=reader, author_id=author.id, limit=limit, offset=offset)


@router.get("/posts/{post_id}", responses={404: {}})
async def get_post(post_id: ResourceId, session: ReadSessionDep) -> PostWithAuthor:
    post = await posts.get_post_with_author(session=session, post_id=post_id)
    if post is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "post not found")
    return PostWithAuthor.model_validate(post)
