from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from app.schemas.user import UserCreate


class EmailAlreadyRegisteredError(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")


async def create_user(*, session: AsyncSession, data: UserCreate) -> User:
    user = User(email=data.email, name=data.name)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as error:
        raise EmailAlreadyRegisteredError(data.email) from error
    return user


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def list_users(*, session: AsyncSession, limit: int, offset: int) -> Sequence[User]:
    result = await session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return result.all()
