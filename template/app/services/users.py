from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.errors import violated_constraint
from app.db.reads import Reader, Writer
from app.models import User
from app.schemas.page import Page
from app.schemas.user import UserCreate, UserRead
from app.services.pages import PageQuery

# Named by the naming convention of app.db.base (uq_<table>_<column>).
EMAIL_CONSTRAINT = "uq_users_email"

# Reads: statements built once (see app.services.pages.PageQuery), rows validated into schemas.
USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
USER_PAGES = PageQuery(select(User).order_by(User.id))
# Writes built once too, on the table rather than the mapped class, each one statement that the
# Writer runs as it is (on the driver itself, as reads run) and whose row is validated into the
# response schema. A session would add BEGIN and COMMIT round trips, and an ORM flush, or
# RETURNING the mapped class, the unit of work's bookkeeping (identity map, objects, their
# state), for objects the response never needs.
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


async def create_user(*, writer: Writer, data: UserCreate) -> UserRead:
    """The user stored, as the client sees it."""
    with email_must_be_free(data.email):
        row = await writer.first(USER_INSERT, email=data.email, name=data.name)
    return UserRead.model_validate(row)


async def update_user(*, writer: Writer, user_id: int, data: UserCreate) -> UserRead | None:
    """The user with its new email and name; None when there is no such user."""
    with email_must_be_free(data.email):
        row = await writer.first(USER_UPDATE, user_id=user_id, email=data.email, name=data.name)
    return None if row is None else UserRead.model_validate(row)


@contextmanager
def email_must_be_free(email: str) -> Iterator[None]:
    """A violation of the email's constraint means the email is taken; any other error keeps
    its own meaning (app.api.errors answers it: 409 for other conflicts, a logged 500 for
    bugs)."""
    try:
        yield
    except Exception as error:
        if violated_constraint(error) == EMAIL_CONSTRAINT:
            raise EmailAlreadyRegisteredError(email) from error
        raise


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    """The user as an object of the unit of work, to change or to refer to."""
    return await session.get(User, user_id)


async def read_user(*, reader: Reader, user_id: int) -> UserRead | None:
    row = await reader.first(USER_BY_ID, user_id=user_id)
    return None if row is None else UserRead.model_validate(row)


async def list_users(*, reader: Reader, limit: int, offset: int) -> Page[UserRead]:
    """A page of users in id order, and how many users there are."""
    return await USER_PAGES.fetch(reader, UserRead, limit=limit, offset=offset)
