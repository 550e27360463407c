from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.schemas.fields import Body, Title
from app.schemas.user import UserRead


class PostCreate(BaseModel):
    title: Title
    body: Body


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int
    title: str
    body: str
    created_at: datetime


class PostWithAuthor(PostRead):
    author: UserRead
