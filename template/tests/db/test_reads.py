"""The Reader: a SELECT built once runs straight on the driver from its second run, with the
values and the errors SQLAlchemy gives; anything else runs through SQLAlchemy."""

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import (
    URL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Executable,
    Float,
    Integer,
    Interval,
    Numeric,
    Select,
    String,
    TextClause,
    Time,
    Uuid,
    bindparam,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.reads import Reader, driver_connection


class Color(enum.Enum):
    RED = "red"


PLAIN = select(
    literal(17, Integer).label("integer"),
    literal(2**40, BigInteger).label("big"),
    literal("Ada", String).label("text"),
    literal(True, Boolean).label("flag"),
    literal(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), DateTime(timezone=True)).label("at"),
    literal(date(2026, 1, 2), Date).label("day"),
    literal(time(3, 4, 5), Time).label("time"),
    literal(uuid.UUID(int=7), Uuid).label("uuid"),
    literal(None, Integer).label("nothing"),
)
# Types SQLAlchemy converts: these run through SQLAlchemy, every time.
CONVERTED = select(
    literal(Decimal("1.50"), Numeric(10, 2)).label("decimal"),
    literal(1.5, Float).label("float"),
    literal(Color.RED, Enum(Color, native_enum=False)).label("color"),
    literal({"a": [1]}, JSONB).label("json"),
    literal([1, 2], ARRAY(Integer)).label("array"),
    literal(timedelta(seconds=90), Interval).label("interval"),
)
BY_ID = select(literal(1, Integer).label("one")).where(literal(2, Integer) == bindparam("id"))
IN_LIST = select(literal(1, Integer).label("one")).where(
    literal(2, Integer).in_(bindparam("ids", expanding=True))
)
DIVIDED = select((bindparam("n", type_=Integer) // bindparam("d", type_=Integer)).label("q"))
SLEEPING = select(literal(1, Integer).label("one")).select_from(
    func.pg_sleep(bindparam("seconds", type_=Float))
)


@pytest.fixture
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def reader(engine: AsyncEngine) -> Reader:
    return Reader(engine, engine.connect, partial(driver_connection, engine))


def count_sqlalchemy_executions(engine: AsyncEngine) -> list[object]:
    executions: list[object] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(*_: object) -> None:
        executions.append(None)

    return executions


async def through_sqlalchemy(engine: AsyncEngine, statement: Executable) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [row._asdict() for row in await connection.execute(statement)]


@pytest.mark.parametrize("statement", [PLAIN, CONVERTED], ids=["plain", "converted"])
async def test_each_run_gives_the_values_sqlalchemy_gives(
    reader: Reader, engine: AsyncEngine, statement: Executable
) -> None:
    expected = await through_sqlalchemy(engine, statement)
    runs = [await reader.all(statement) for _ in range(3)]

    assert all(run == expected for run in runs)
    assert all(
        {key: type(value) for key, value in run[0].items()}
        == {key: type(value) for key, value in expected[0].items()}
        for run in runs
    )


@pytest.mark.parametrize(
    ("statement", "parameters", "through_sqlalchemy"),
    [
        (PLAIN, {}, 1),
        (BY_ID, {"id": 2}, 1),
        (CONVERTED, {}, 3),
        (IN_LIST, {"ids": [1, 2]}, 3),
        (text("SELECT 1 AS one"), {}, 3),
    ],
    ids=["plain", "bound", "converted", "in-list", "text"],
)
async def test_a_plain_select_runs_on_the_driver_from_its_second_run(
    reader: Reader,
    engine: AsyncEngine,
    statement: Select[*tuple[Any, ...]] | TextClause,
    parameters: dict[str, Any],
    through_sqlalchemy: int,
) -> None:
    statement = statement.params()  # a copy: a statement the Reader has not seen yet
    executions = count_sqlalchemy_executions(engine)
    rows = [await reader.all(statement, **parameters) for _ in range(3)]

    assert len(executions) == through_sqlalchemy
    assert all(len(each) == 1 for each in rows)


async def test_a_statement_built_per_run_always_runs_through_sqlalchemy(
    reader: Reader, engine: AsyncEngine
) -> None:
    executions = count_sqlalchemy_executions(engine)
    for _ in range(3):
        assert await reader.first(select(literal(1, Integer).label("one"))) == {"one": 1}

    assert len(executions) == 3  # never compiled apart from SQLAlchemy's own cache


async def test_an_error_on_the_driver_is_the_error_sqlalchemy_raises(reader: Reader) -> None:
    errors = []
    for _ in range(2):  # through SQLAlchemy, then on the driver
        with pytest.raises(DBAPIError) as raised:
            await reader.all(DIVIDED, n=1, d=0)
        errors.append(raised.value)

    first, second = errors
    assert (type(second), type(second.orig)) == (type(first), type(first.orig))
    assert getattr(second.orig, "sqlstate", None) == "22012"  # division_by_zero
    assert second.statement == first.statement
    assert not second.connection_invalidated
    assert await reader.first(DIVIDED, n=6, d=3) == {"q": 2}


async def test_a_connection_lost_during_a_read_is_invalidated_and_the_next_read_succeeds(
    reader: Reader, engine: AsyncEngine
) -> None:
    await reader.all(SLEEPING, seconds=0)  # its first run, through SQLAlchemy
    async with engine.connect() as other:
        read = asyncio.create_task(reader.all(SLEEPING, seconds=30))
        for _ in range(100):
            await asyncio.sleep(0.05)
            terminated = await other.scalar(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
                )
            )
            if terminated:
                break

    with pytest.raises(DBAPIError) as raised:
        await read

    assert terminated is True
    assert raised.value.connection_invalidated
    assert await reader.all(SLEEPING, seconds=0) == [{"one": 1}]
