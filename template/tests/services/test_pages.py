from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from app.db.reads import Reader
from app.models import User
from app.services.pages import PageQuery
from tests.support import UserFactory


class Labelled(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    total: str


async def test_a_column_of_the_query_named_total_keeps_its_value(
    reader: Reader, user_factory: UserFactory
) -> None:
    user = await user_factory(name="Ada")
    labelled = PageQuery(select(User.id, User.name.label("total")).where(User.id == user.id))

    page = await labelled.fetch(reader, Labelled, limit=10, offset=0)
    past_the_end = await labelled.fetch(reader, Labelled, limit=10, offset=5)

    assert (page.total, [item.total for item in page.items]) == (1, ["Ada"])
    assert (past_the_end.total, past_the_end.items) == (1, [])
