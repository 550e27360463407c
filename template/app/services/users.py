from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.errors import violated_constraint
from app.models import User
from app.schemas.user import UserCreate
from app.services.pages import fetch_page

# Named by the naming convention of app.db.base (uq_<table>_<column>).
EMAIL_CONSTRAINT = "uq_users_email"


class EmailAlreadyRegisteredError(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")


async def create_user(*, session: AsyncSession, data: UserCreate) -> User:
    user = User(email=data.email, name=data.name)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as error:
        # Only this constraint means the email is taken; any other violation keeps its own
        # meaning (app.api.errors answers it: 409 for other conflicts, a logged 500 for bugs).
        if violated_constraint(error) == EMAIL_CONSTRAINT:
            raise EmailAlreadyRegisteredError(data.email) from error
        raise
    return user


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def list_users(*, session: AsyncSession, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of users in id order, and how many users there are."""
    query = select(User).order_by(User.id)
    return await fetch_page(session=session, query=query, limit=limit, offset=offset)
