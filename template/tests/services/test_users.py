import pytest
from sqlalchemy.exc import IntegrityError

from app.db import driver
from app.db.errors import sqlstate_of, violated_constraint
from app.db.reads import Writer
from app.schemas.user import UserCreate
from app.services import users
from tests.support import UserFactory

# What a failed write raises: SQLAlchemy's error for its first runs, the driver's own once it
# runs on the driver directly (app.db.reads.Plans); both carry the SQLSTATE and the constraint.
WRITE_ERRORS = (IntegrityError, driver.ERROR)


@pytest.mark.parametrize("run", range(3), ids=["first-run", "second-run", "third-run"])
async def test_a_taken_email_is_reported_as_such(
    writer: Writer, user_factory: UserFactory, run: int
) -> None:
    await user_factory(email="taken@example.com")

    with pytest.raises(users.EmailAlreadyRegisteredError) as raised:
        await users.create_user(
            writer=writer, data=UserCreate(email="taken@example.com", name="Bo")
        )

    assert isinstance(raised.value.__cause__, WRITE_ERRORS)
    assert violated_constraint(raised.value.__cause__) == "uq_users_email"


async def test_another_integrity_error_is_not_a_taken_email(writer: Writer) -> None:
    # A NOT NULL violation, which no valid input causes: model_copy does not validate.
    data = UserCreate(email="ada@example.com", name="Ada").model_copy(update={"name": None})

    with pytest.raises(WRITE_ERRORS) as raised:
        await users.create_user(writer=writer, data=data)

    assert sqlstate_of(raised.value) == "23502"  # not_null_violation


async def test_a_new_user_is_returned_as_read(writer: Writer) -> None:
    created = await users.create_user(
        writer=writer, data=UserCreate(email="Ada@Example.com", name="Ada")
    )

    assert (created.email, created.name) == ("ada@example.com", "Ada")
    assert created.id >= 1
