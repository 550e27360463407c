"""The Reader: a SELECT built once runs on the driver itself from its second run, with the rows
and the errors SQLAlchemy gives; anything else runs through SQLAlchemy."""

import asyncio
import enum
import gc
import logging
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
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
    Row,
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
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.db.reads import Reader, Reads
from app.db.session import ConnectionQueue, create_engine
from tests.support import pooled


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
async def own_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


def reader_of(engine: AsyncEngine, settings: Settings) -> Reader:
    """The Reader the application's handlers get, on `engine`."""
    return Reads(settings, engine, ConnectionQueue(settings)).reader


@pytest.fixture
def own_reader(own_engine: AsyncEngine, settings: Settings) -> Reader:
    return reader_of(own_engine, settings)


def count_sqlalchemy_executions(engine: AsyncEngine) -> list[object]:
    executions: list[object] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(*_: object) -> None:
        executions.append(None)

    return executions


def types_of(row: Row[Any]) -> dict[str, type]:
    return {key: type(value) for key, value in row._mapping.items()}


@pytest.mark.parametrize("statement", [PLAIN, CONVERTED], ids=["plain", "converted"])
async def test_each_run_gives_the_rows_sqlalchemy_gives(
    own_reader: Reader, own_engine: AsyncEngine, statement: Executable
) -> None:
    async with own_engine.connect() as connection:
        expected = (await connection.execute(statement)).all()
    runs = [await own_reader.all(statement) for _ in range(3)]

    assert all(run == expected for run in runs)
    assert all(isinstance(run[0], Row) for run in runs)
    assert all(run[0]._fields == expected[0]._fields for run in runs)
    assert all(types_of(run[0]) == types_of(expected[0]) for run in runs)


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
    own_reader: Reader,
    own_engine: AsyncEngine,
    statement: Select[*tuple[Any, ...]] | TextClause,
    parameters: dict[str, Any],
    through_sqlalchemy: int,
) -> None:
    statement = statement.params()  # a copy: a statement the Reader has not seen yet
    executions = count_sqlalchemy_executions(own_engine)
    rows = [await own_reader.all(statement, **parameters) for _ in range(3)]

    assert len(executions) == through_sqlalchemy
    assert all(len(each) == 1 for each in rows)


async def test_a_statement_built_per_run_always_runs_through_sqlalchemy(
    own_reader: Reader, own_engine: AsyncEngine
) -> None:
    executions = count_sqlalchemy_executions(own_engine)
    rows = [await own_reader.first(select(literal(1, Integer).label("one"))) for _ in range(3)]

    assert rows == [(1,)] * 3
    assert len(executions) == 3  # never compiled apart from SQLAlchemy's own cache


async def test_behind_pgbouncer_every_read_runs_through_sqlalchemy(
    own_engine: AsyncEngine, settings: Settings
) -> None:
    reader = reader_of(own_engine, settings.model_copy(update={"db_pgbouncer": True}))
    statement = BY_ID.params()
    executions = count_sqlalchemy_executions(own_engine)
    for _ in range(3):
        await reader.all(statement, id=2)

    assert len(executions) == 3


async def test_a_statement_built_per_request_and_run_twice_is_not_kept_alive(
    settings: Settings,
) -> None:
    engine = create_async_engine(settings.url, query_cache_size=0)  # SQLAlchemy's keeps them
    reader = reader_of(engine, settings)
    statement = BY_ID.params()  # a copy, as a statement built per request is
    try:
        runs = [await reader.all(statement, id=2) for _ in range(3)]  # planned at its second run
    finally:
        await engine.dispose()
    gone = weakref.ref(statement)
    del statement
    gc.collect()

    assert runs == [[(1,)]] * 3
    assert gone() is None


async def test_a_missing_parameter_is_refused_as_sqlalchemy_refuses_it(own_reader: Reader) -> None:
    await own_reader.all(BY_ID, id=2)  # planned from here on
    with pytest.raises(InvalidRequestError, match="A value is required for bind parameter 'id'"):
        await own_reader.all(BY_ID)


async def test_an_error_on_the_driver_is_the_error_sqlalchemy_raises(own_reader: Reader) -> None:
    errors = []
    for _ in range(2):  # through SQLAlchemy, then on the driver
        with pytest.raises(DBAPIError) as raised:
            await own_reader.all(DIVIDED, n=1, d=0)
        errors.append(raised.value)

    first, second = errors
    assert (type(second), type(second.orig)) == (type(first), type(first.orig))
    assert getattr(second.orig, "sqlstate", None) == "22012"  # division_by_zero
    assert second.statement == first.statement
    assert not second.connection_invalidated
    assert await own_reader.first(DIVIDED, n=6, d=3) == (2,)


async def test_a_connection_lost_during_a_read_is_invalidated_and_the_next_read_succeeds(
    own_reader: Reader, own_engine: AsyncEngine
) -> None:
    await own_reader.all(SLEEPING, seconds=0)  # its first run, through SQLAlchemy
    async with own_engine.connect() as other:
        read = asyncio.create_task(own_reader.all(SLEEPING, seconds=30))
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
    assert await own_reader.all(SLEEPING, seconds=0) == [(1,)]


async def test_a_read_cancelled_mid_statement_leaves_no_connection_behind_in_its_state(
    settings: Settings,
) -> None:
    one_slot = pooled(settings, db_pool_size=1, db_max_overflow=0)  # the same slot, reused
    engine = create_engine(one_slot)
    reader = reader_of(engine, one_slot)
    try:
        await reader.all(SLEEPING, seconds=0)  # its first run, through SQLAlchemy
        read = asyncio.create_task(reader.all(SLEEPING, seconds=30))
        await asyncio.sleep(0.5)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        async with engine.begin() as unit_of_work:  # a transaction, as the unit of work has
            first, second = [await unit_of_work.scalar(text("SELECT txid_current()")) for _ in "ab"]
        after = await reader.all(SLEEPING, seconds=0)
        checked_out = engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    finally:
        await engine.dispose()

    assert first == second  # both statements in one transaction: no autocommit left over
    assert after == [(1,)]
    assert checked_out == 0


async def test_a_pool_that_closes_connections_on_return_closes_the_readers_cleanly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_async_engine(settings.url, poolclass=NullPool)  # closes each on return
    reader = reader_of(engine, settings)
    try:
        runs = [await reader.all(PLAIN) for _ in range(2)]  # the second on the driver
    finally:
        await engine.dispose()

    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert runs[0] == runs[1]
    assert errors == []  # e.g. "Exception closing connection": a socket left open
