from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.errors import violated_constraint
from app.db.reads import Reader
from app.models import User
from app.schemas.page import Page
from app.schemas.user import UserCreate, UserRead
from app.services.pages import PageQuery

# Named by the naming convention of app.db.base (uq_<table>_<column>).
EMAIL_CONSTRAINT = "uq_users_email"

# Reads: statements built once (see app.services.pages.PageQuery), rows validated into schemas.
USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
USER_PAGES = PageQuery(select(User).order_by(User.id))
# Writes built once too, on the table rather than the mapped class: the session runs each in
# its transaction as it is, and its row is validated into the response schema, as reads are. An
# ORM flush, or RETURNING the mapped class, would add the unit of work's bookkeeping (identity
# map, objects, their state) to every write, for objects the response never needs.
USERS = User.metadata.tables[User.__tablename__]
USER_INSERT = (
    insert(USERS).values(email=bindparam("email"), name=bindparam("name")).returning(*USERS.c)
)
USER_UPDATE = (
    update(USERS)
    .where(USERS.c.id == bindparam("user_id"))
    .values(email=bindparam("email"), name=bindparam("name"))
    .returning(*USERS.c)
)


class EmailAlreadyRegisteredError(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")


async def create_user(*, session: AsyncSession, data: UserCreate) -> UserRead:
    """The user stored, as the client sees it; committed with the session's unit of work."""
    try:
        result = await session.execute(USER_INSERT, {"email": data.email, "name": data.name})
    except IntegrityError as error:
        raise taken_email_or(error, data.email) from error
    return UserRead.model_validate(result.one())


async def update_user(*, session: AsyncSession, user_id: int, data: UserCreate) -> UserRead | None:
    """The user with its new email and name; None when there is no such user."""
    parameters = {"user_id": user_id, "email": data.email, "name": data.name}
    try:
        result = await session.execute(USER_UPDATE, parameters)
    except IntegrityError as error:
        raise taken_email_or(error, data.email) from error
    row = result.one_or_none()
    return None if row is None else UserRead.model_validate(row)


def taken_email_or(error: IntegrityError, email: str) -> Exception:
    """Only this constraint means the email is taken; any other violation keeps its own meaning
    (app.api.errors answers it: 409 for other conflicts, a logged 500 for bugs)."""
    if violated_constraint(error) == EMAIL_CONSTRAINT:
        return EmailAlreadyRegisteredError(email)
    return error


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    """The user as an object of the unit of work, to change or to refer to."""
    return await session.get(User, user_id)


async def read_user(*, reader: Reader, user_id: int) -> UserRead | None:
    row = await reader.first(USER_BY_ID, user_id=user_id)
    return None if row is None else UserRead.model_validate(row)


async def list_users(*, reader: Reader, limit: int, offset: int) -> Page[UserRead]:
    """A page of users in id order, and how many users there are."""
    return await USER_PAGES.fetch(reader, UserRead, limit=limit, offset=offset)
