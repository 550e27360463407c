"""Pages of a query's rows with the number of rows in all, in one round trip."""

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

RowT = TypeVar("RowT")


async def fetch_page(
    *, session: AsyncSession, query: Select[RowT], limit: int, offset: int
) -> tuple[list[RowT], int]:
    """Rows `offset` to `offset + limit` of `query` and the total it matches. The total is
    `count(*) OVER ()` in the same statement (windows are computed before LIMIT), so a page
    costs no second query; only a page past the end, which has no row to carry it, counts apart.
    PostgreSQL still reads every matching row to count them: keep list filters selective."""
    total_column = func.count().over().label("total")
    rows = (
        await session.execute(query.add_columns(total_column).limit(limit).offset(offset))
    ).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    if offset == 0:
        return [], 0
    matching: Select[Any] = select(func.count()).select_from(query.order_by(None).subquery())
    return [], int(await session.scalar(matching) or 0)
