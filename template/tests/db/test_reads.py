"""The Reader: a SELECT built once runs on the driver itself from its third run, with the rows
SQLAlchemy gives and the driver's own errors, answered as SQLAlchemy's are; anything else runs
through SQLAlchemy."""

import asyncio
import enum
import gc
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import (
    BigInteger,
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
    delete,
    event,
    func,
    insert,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.api.deps import ReaderDep
from app.config import Settings
from app.db import driver
from app.db.errors import sqlstate_of
from app.db.reads import Plans, Reader, Writer
from app.db.replicas import ReplicaRouter
from app.db.session import ConnectionQueue, create_engine
from app.main import create_app
from app.services.users import USERS
from tests.support import pooled


class Color(enum.Enum):
    RED = "red"


PLAIN = select(
    literal(17, Integer).label("integer"),
    literal(2**40, BigInteger).label("big"),
    literal("Ada", String).label("text"),
    true().label("flag"),  # a literal True would be a bind parameter SQLAlchemy converts
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
    return ReplicaRouter(settings, engine, ConnectionQueue(settings)).reader


@pytest.fixture
def own_reader(own_engine: AsyncEngine, settings: Settings) -> Reader:
    return reader_of(own_engine, settings)


def count_events(engine: AsyncEngine, *names: str) -> list[object]:
    """Each time one of the engine's events `names` fires, one more item."""
    fired: list[object] = []

    def count(*_: object) -> None:
        fired.append(None)

    for name in names:
        event.listen(engine.sync_engine, name, count)
    return fired


def count_sqlalchemy_executions(engine: AsyncEngine) -> list[object]:
    return count_events(engine, "before_cursor_execute")


def count_invalidations(engine: AsyncEngine) -> list[object]:
    """Connections taken out of service: invalidated through SQLAlchemy, or, on the pooled path,
    closed on the driver and soft-invalidated (replaced when their slot is next taken)."""
    return count_events(engine, "invalidate", "soft_invalidate")


async def planned(reader: Reader, statement: Executable, **parameters: Any) -> None:
    """Runs `statement` through SQLAlchemy as often as it takes to plan it for the driver."""
    for _ in range(2):
        await reader.all(statement, **parameters)


def shape(statement: Select[*tuple[Any, ...]], row: Row[Any]) -> dict[str, type]:
    """The row's values by the statement's column keys, as attributes: each value's type."""
    keys = [str(column.key) for column in statement.selected_columns]
    return {key: type(getattr(row, key)) for key in keys}


@pytest.mark.parametrize("statement", [PLAIN, CONVERTED], ids=["plain", "converted"])
async def test_each_run_gives_the_rows_sqlalchemy_gives(
    own_reader: Reader, own_engine: AsyncEngine, statement: Select[*tuple[Any, ...]]
) -> None:
    async with own_engine.connect() as connection:
        expected = (await connection.execute(statement)).all()
    runs = [await own_reader.all(statement) for _ in range(4)]  # the last two on the driver

    assert all(run == expected for run in runs)
    assert all(isinstance(run[0], Row) for run in runs)
    assert all(shape(statement, run[0]) == shape(statement, expected[0]) for run in runs)


@pytest.mark.parametrize(
    ("statement", "parameters", "through_sqlalchemy"),
    [
        (PLAIN, {}, 2),
        (BY_ID, {"id": 2}, 2),
        (CONVERTED, {}, 4),
        (IN_LIST, {"ids": [1, 2]}, 4),
        (text("SELECT 1 AS one"), {}, 4),
    ],
    ids=["plain", "bound", "converted", "in-list", "text"],
)
async def test_a_plain_select_runs_on_the_driver_from_its_third_run(
    own_reader: Reader,
    own_engine: AsyncEngine,
    statement: Select[*tuple[Any, ...]] | TextClause,
    parameters: dict[str, Any],
    through_sqlalchemy: int,
) -> None:
    statement = statement.params()  # a copy: a statement the Reader has not seen yet
    executions = count_sqlalchemy_executions(own_engine)
    rows = [await own_reader.all(statement, **parameters) for _ in range(4)]

    assert len(executions) == through_sqlalchemy
    assert all(len(each) == 1 for each in rows)


async def test_a_planned_statement_takes_the_pools_connection_without_an_sqlalchemy_one(
    settings: Settings,
) -> None:
    production_pool = pooled(settings)  # a pool that keeps its connections (not a NullPool)
    engine = create_engine(production_pool)
    reader = reader_of(engine, production_pool)
    try:
        await planned(reader, PLAIN)
        checkouts = count_events(engine, "checkout")
        sqlalchemy_connections = count_events(engine, "engine_connect")

        rows = [await reader.all(PLAIN) for _ in range(3)]
    finally:
        await engine.dispose()

    assert rows == [rows[0]] * 3
    assert len(checkouts) == 3
    assert sqlalchemy_connections == []


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
    for _ in range(4):
        await reader.all(statement, id=2)

    assert len(executions) == 4


def writer_of(engine: AsyncEngine, settings: Settings) -> Writer:
    """The Writer the application's handlers get, on `engine`."""
    return ReplicaRouter(settings, engine, ConnectionQueue(settings)).writer


@pytest.mark.parametrize("pgbouncer", [False, True], ids=["direct", "behind-pgbouncer"])
async def test_a_write_is_stored_once_it_returns_on_every_run(
    own_engine: AsyncEngine,
    settings: Settings,
    empty_tables: Callable[[], Awaitable[None]],
    pgbouncer: bool,
) -> None:
    writer = writer_of(own_engine, settings.model_copy(update={"db_pgbouncer": pgbouncer}))
    statement = (  # built here: a statement the Writer has not seen yet
        insert(USERS).values(email=bindparam("email"), name=bindparam("name")).returning(*USERS.c)
    )
    executions = count_sqlalchemy_executions(own_engine)
    try:
        rows = [
            await writer.first(statement, email=f"{number}@example.com", name="W")
            for number in range(4)
        ]
        through_sqlalchemy = len(executions)
        async with own_engine.connect() as connection:  # another connection: committed rows
            stored = (await connection.execute(text("SELECT email FROM users"))).scalars().all()
    finally:
        await empty_tables()

    assert [row.email for row in rows if row is not None] == [f"{n}@example.com" for n in range(4)]
    assert sorted(stored) == [f"{n}@example.com" for n in range(4)]
    # Behind PgBouncer each runs through SQLAlchemy, in a transaction the Writer commits.
    assert through_sqlalchemy == (4 if pgbouncer else 2)


async def test_a_reader_refuses_a_write_a_writer_runs(
    own_reader: Reader, own_engine: AsyncEngine, settings: Settings
) -> None:
    deleting = delete(USERS).where(USERS.c.id == bindparam("id")).returning(USERS.c.id)

    with pytest.raises(RuntimeError, match="cannot write"):
        await own_reader.all(deleting, id=0)
    assert await writer_of(own_engine, settings).all(deleting, id=0) == []


async def test_plans_keep_only_the_statements_run_most_recently(settings: Settings) -> None:
    engine = create_async_engine(settings.url, query_cache_size=0)  # SQLAlchemy's keeps them
    reader = Reader(engine.connect, plans=Plans(size=2))
    statements = [BY_ID.params() for _ in range(3)]  # copies, as statements built per request
    try:
        runs = [await reader.all(each, id=2) for each in statements for _ in range(3)]
        again = await reader.all(statements[-1], id=2)  # still planned: on the driver
    finally:
        await engine.dispose()
    oldest = weakref.ref(statements[0])
    del statements[0]
    gc.collect()

    assert runs == [[(1,)]] * 9
    assert again == [(1,)]
    assert oldest() is None  # its plan made way for the newer ones: nothing keeps it alive


async def test_statements_run_once_take_no_plans_place(own_engine: AsyncEngine) -> None:
    reader = Reader(own_engine.connect, plans=Plans(size=1))
    await planned(reader, BY_ID, id=2)
    for _ in range(3):
        await reader.all(BY_ID.params(), id=2)  # a copy: as a statement built per request
    executions = count_sqlalchemy_executions(own_engine)

    assert await reader.all(BY_ID, id=2) == [(1,)]
    assert executions == []  # still planned: it ran on the driver


async def test_a_missing_parameter_is_refused_as_sqlalchemy_refuses_it(own_reader: Reader) -> None:
    await planned(own_reader, BY_ID, id=2)
    with pytest.raises(InvalidRequestError, match="A value is required for bind parameter 'id'"):
        await own_reader.all(BY_ID)


async def test_an_error_on_the_driver_is_the_drivers_own_with_the_same_sqlstate(
    own_reader: Reader, own_engine: AsyncEngine
) -> None:
    with pytest.raises(DBAPIError) as through_sqlalchemy:
        await own_reader.all(DIVIDED, n=1, d=0)
    await planned(own_reader, DIVIDED, n=6, d=3)
    invalidated = count_invalidations(own_engine)
    with pytest.raises(driver.ERROR) as on_the_driver:
        await own_reader.all(DIVIDED, n=1, d=0)

    assert sqlstate_of(through_sqlalchemy.value) == "22012"  # division_by_zero
    assert sqlstate_of(on_the_driver.value) == "22012"
    assert invalidated == []  # the connection is fine: back to the pool
    assert await own_reader.first(DIVIDED, n=6, d=3) == (2,)


async def test_a_connection_lost_during_a_read_is_invalidated_and_the_next_read_succeeds(
    own_reader: Reader, own_engine: AsyncEngine
) -> None:
    await planned(own_reader, SLEEPING, seconds=0)
    invalidated = count_invalidations(own_engine)
    async with own_engine.connect() as other:
        read = asyncio.create_task(own_reader.all(SLEEPING, seconds=30))
        for _ in range(100):
            await asyncio.sleep(0.05)
            terminated = await other.scalar(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query LIKE '%FROM pg_sleep(%' AND pid <> pg_backend_pid()"
                )
            )
            if terminated:
                break

    with pytest.raises(driver.ERROR) as raised:
        await read

    assert terminated is True
    assert isinstance(raised.value, driver.CONNECTION_LOST)
    assert len(invalidated) == 1
    assert await own_reader.all(SLEEPING, seconds=0) == [(1,)]


async def test_a_read_cancelled_mid_statement_leaves_no_connection_behind_in_its_state(
    settings: Settings,
) -> None:
    one_slot = pooled(settings, db_pool_size=1, db_max_overflow=0)  # the same slot, reused
    engine = create_engine(one_slot)
    reader = reader_of(engine, one_slot)
    try:
        await planned(reader, SLEEPING, seconds=0)
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
        runs = [await reader.all(PLAIN) for _ in range(3)]  # the third on the driver
    finally:
        await engine.dispose()

    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert runs[0] == runs[2]
    assert errors == []  # e.g. "Exception closing connection": a socket left open


@pytest.fixture
async def sleepy_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An application with a short statement timeout and a route that reads with a Reader."""
    app = create_app(pooled(settings, db_statement_timeout=0.2))

    @app.get("/sleep")
    async def sleep(reader: ReaderDep, seconds: float) -> int:
        return len(await reader.all(SLEEPING, seconds=seconds))

    async with app.router.lifespan_context(app):
        yield app


async def test_a_read_on_the_driver_that_times_out_answers_504_as_any_other(
    sleepy_app: FastAPI,
) -> None:
    transport = ASGITransport(app=sleepy_app)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        through_sqlalchemy = await client.get("/sleep", params={"seconds": 2})
        quick = [await client.get("/sleep", params={"seconds": 0}) for _ in range(2)]
        on_the_driver = await client.get("/sleep", params={"seconds": 2})

    assert [response.status_code for response in quick] == [200, 200]
    assert through_sqlalchemy.status_code == on_the_driver.status_code == 504
    assert on_the_driver.json() == through_sqlalchemy.json()
