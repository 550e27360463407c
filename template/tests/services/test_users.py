import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.errors import sqlstate_of, violated_constraint
from app.schemas.user import UserCreate
from app.services import users
from tests.support import UserFactory


async def test_a_taken_email_is_reported_as_such(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    await user_factory(email="taken@example.com")

    with pytest.raises(users.EmailAlreadyRegisteredError) as raised:
        await users.create_user(
            session=session, data=UserCreate(email="taken@example.com", name="Bo")
        )

    assert isinstance(raised.value.__cause__, IntegrityError)
    assert violated_constraint(raised.value.__cause__) == "uq_users_email"


async def test_another_integrity_error_is_not_a_taken_email(session: AsyncSession) -> None:
    # A NOT NULL violation, which no valid input causes: model_copy does not validate.
    data = UserCreate(email="ada@example.com", name="Ada").model_copy(update={"name": None})

    with pytest.raises(IntegrityError) as raised:
        await users.create_user(session=session, data=data)

    assert sqlstate_of(raised.value) == "23502"  # not_null_violation


async def test_a_new_user_is_returned_as_read_and_not_kept_by_the_session(
    session: AsyncSession,
) -> None:
    created = await users.create_user(
        session=session, data=UserCreate(email="Ada@Example.com", name="Ada")
    )

    assert (created.email, created.name) == ("ada@example.com", "Ada")
    # One statement on the table: no object for the unit of work to flush, track or expire.
    assert list(session.identity_map.values()) == []
