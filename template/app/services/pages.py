"""Pages of a list query's rows with the number of rows in all, in one round trip."""

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, bindparam, func, select

from app.db.reads import Reader
from app.schemas.page import Page

ItemT = TypeVar("ItemT", bound=BaseModel)


class PageQuery:
    """A list query, built once at import like every read statement of the services: a
    statement built per request costs more CPU than its round trip (SQLAlchemy builds and
    hashes it again to find its compiled SQL); one built once keeps its cache key.

    A page carries its total as `count(*) OVER ()` in the same statement (windows are computed
    before LIMIT), so it costs no second query; only a page past the end, which has no row to
    carry it, counts apart. PostgreSQL still reads every matching row to count them: keep list
    filters selective."""

    def __init__(self, query: Select[*tuple[Any, ...]]) -> None:
        # An unusual label, read by position: a column of the query named `total` stays itself.
        total = func.count().over().label("page_total_")
        self._page = query.add_columns(total).limit(bindparam("limit")).offset(bindparam("offset"))
        self._count = select(func.count()).select_from(query.order_by(None).subquery())

    async def fetch(
        self,
        reader: Reader,
        item: type[ItemT],
        /,
        *,
        limit: int,
        offset: int,
        **parameters: Any,
    ) -> Page[ItemT]:
        """Rows `offset` to `offset + limit`, each validated into `item`, and the total; the
        query's own bind parameters come as keywords."""
        rows = await reader.all(self._page, limit=limit, offset=offset, **parameters)
        if rows:
            total = int(rows[0][-1])
        elif offset == 0:
            total = 0
        else:
            counted = await reader.first(self._count, **parameters)
            total = int(counted[0]) if counted else 0
        items = [item.model_validate(row) for row in rows]
        return Page(items=items, total=total, limit=limit, offset=offset)
