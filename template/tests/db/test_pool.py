"""The request pool as it runs in production: no connection churn, dead connections replaced
without a failed request, reads without BEGIN/COMMIT, and readiness apart from the requests."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Integer, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.deps import ReaderDep, ReadSessionDep, SessionDep
from app.config import DRIVER, Settings
from app.db.session import ConnectionQueue
from app.main import create_app
from tests.support import (
    idle_in_transaction,
    pooled,
    silent_server,
    slow_to_hang_up,
    unreachable,
)

# Two statements in one transaction (after a BEGIN) get the same id; on their own, two ids.
TRANSACTION_ID = text("SELECT pg_current_xact_id()::text")
# Built once, typed: the Reader plans it, then reads it on the driver.
BACKEND_PID = select(func.pg_backend_pid(type_=Integer))


@pytest.fixture
async def pooled_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(pooled(settings))
    async with app.router.lifespan_context(app):
        yield app


def count_connects(engine: AsyncEngine) -> Callable[[], int]:
    """How many connections the engine has opened since this call."""
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda *_: opened.append(None))
    return lambda: len(opened)


async def burst(client: AsyncClient, requests: int) -> set[int]:
    responses = await asyncio.gather(*(client.get("/users?limit=1") for _ in range(requests)))
    return {response.status_code for response in responses}


async def test_a_burst_of_requests_opens_no_new_connection_once_the_pool_is_warm(
    pooled_app: FastAPI, settings: Settings
) -> None:
    capacity = settings.db_pool_size + settings.db_max_overflow
    async with AsyncClient(transport=ASGITransport(app=pooled_app), base_url="http://t") as client:
        assert await burst(client, 4 * capacity) == {200}  # warm: up to size + overflow open
        opened = count_connects(pooled_app.state.engine)
        for _ in range(5):
            assert await burst(client, 4 * capacity) == {200}

    assert opened() == 0


async def test_a_read_that_fails_or_is_cancelled_gives_back_its_connection_and_its_turn(
    pooled_app: FastAPI, settings: Settings
) -> None:
    reader = pooled_app.state.replica_router.reader
    pool = pooled_app.state.engine.sync_engine.pool
    capacity = settings.db_pool_size + settings.db_max_overflow
    for _ in range(capacity + 1):  # one more than there are turns: each failure gave its back
        with pytest.raises(DBAPIError, match="division by zero"):
            await reader.first(text("SELECT 1/0"))
    executing: list[object] = []
    all_executing = asyncio.Event()

    @event.listens_for(pooled_app.state.engine.sync_engine, "before_cursor_execute")
    def count(*_: object) -> None:
        executing.append(None)
        if len(executing) == capacity:
            all_executing.set()

    sleeping = [
        asyncio.create_task(reader.first(text("SELECT pg_sleep(3)"))) for _ in range(capacity)
    ]
    async with asyncio.timeout(10):
        await all_executing.wait()
    await asyncio.sleep(0.1)  # their statements are on the wire
    for task in sleeping:
        task.cancel()
    cancelled = await asyncio.gather(*sleeping, return_exceptions=True)

    rows = await asyncio.gather(*(reader.first(text("SELECT 1")) for _ in range(capacity)))
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in cancelled)
    assert [tuple(row) for row in rows if row] == [(1,)] * capacity
    assert pool.checkedout() == 0


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failed_request(
    pooled_app: FastAPI, fixture_engine: AsyncEngine
) -> None:
    @pooled_app.get("/backend")
    async def backend(reader: ReaderDep) -> int:
        row = await reader.first(text("SELECT pg_backend_pid()"))
        assert row is not None
        pid: int = row[0]
        return pid

    async with AsyncClient(transport=ASGITransport(app=pooled_app), base_url="http://t") as client:
        pid = (await client.get("/backend")).json()
        async with fixture_engine.connect() as connection:
            terminated = await connection.scalar(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
            )
        await asyncio.sleep(0.1)  # the server's goodbye reaches the pooled connection's socket
        opened = count_connects(pooled_app.state.engine)

        replaced_by = await client.get("/backend")

    assert terminated is True
    assert replaced_by.status_code == 200
    assert replaced_by.json() != pid
    assert opened() == 1


@pytest.mark.parametrize("path", ["/reader", "/session"], ids=["on-the-driver", "in-a-session"])
async def test_a_connection_that_read_the_server_s_goodbye_but_not_its_hang_up_fails_no_more_than_one_request(
    settings: Settings, fixture_engine: AsyncEngine, path: str
) -> None:
    one_connection = pooled(settings, db_pool_size=1, db_max_overflow=0)
    async with slow_to_hang_up(one_connection) as (relayed, hung_up):
        app = create_app(relayed)

        @app.get("/reader")
        async def read(reader: ReaderDep) -> int | None:
            row = await reader.first(BACKEND_PID)
            return row[0] if row else None

        @app.get("/session")
        async def in_a_session(session: SessionDep) -> int | None:
            return await session.scalar(BACKEND_PID)

        transport = ASGITransport(app=app)
        async with app.router.lifespan_context(app), AsyncClient(transport=transport) as client:
            # The Reader's third run of a statement is on the driver, below SQLAlchemy.
            [pid] = {(await client.get(f"http://t{path}")).json() for _ in range(3)}
            async with fixture_engine.connect() as connection:
                terminated = await connection.scalar(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                )
            async with asyncio.timeout(10):
                await hung_up.wait()
            await asyncio.sleep(0.1)  # the goodbye reaches the pooled connection's socket

            first = await client.get(f"http://t{path}")
            then = await client.get(f"http://t{path}")

    assert terminated is True
    # asyncpg shows nothing of the goodbye until the connection's next statement fails (it is
    # then replaced); psycopg's connection is found to have hung up before reuse.
    assert first.status_code == (503 if DRIVER == "asyncpg" else 200)
    assert then.status_code == 200
    assert then.json() != pid


async def test_an_idle_connection_is_pinged_before_reuse_only_after_the_threshold(
    settings: Settings,
) -> None:
    app = create_app(pooled(settings, db_pool_ping_after=0.2))
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.engine
        pings: list[object] = []
        original = engine.dialect.do_ping

        def counting_ping(dbapi_connection: Any) -> bool:
            pings.append(None)
            return original(dbapi_connection)

        engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            for _ in range(3):
                assert (await client.get("/users?limit=1")).status_code == 200
            pings_while_busy = len(pings)
            await asyncio.sleep(0.3)
            assert (await client.get("/users?limit=1")).status_code == 200

    assert pings_while_busy == 0
    assert len(pings) == 1


async def test_a_connection_given_back_in_a_transaction_is_rolled_back(
    pooled_app: FastAPI,
) -> None:
    engine: AsyncEngine = pooled_app.state.engine
    given_back = await engine.raw_connection()  # past SQLAlchemy's Connection: only the pool resets

    def query_then_give_back() -> None:  # on the driver's connection (SQLAlchemy's adapter)
        given_back.cursor().execute("SELECT 1")  # after the driver's BEGIN
        given_back.close()

    async with pooled_app.state.probe_engine.connect() as other:  # for SQLAlchemy's greenlet
        await other.run_sync(lambda _: query_then_give_back())

    # Seen from the probe's own connection: the pool would hand back the one given back.
    assert await idle_in_transaction(pooled_app.state.probe_engine) == 0


def add_transaction_counters(app: FastAPI) -> None:
    """GET /transactions/<dependency>: in how many transactions two statements ran."""

    @app.get("/transactions/reader")
    async def by_a_reader(reader: ReaderDep) -> int:
        return len({await reader.first(TRANSACTION_ID) for _ in range(2)})

    @app.get("/transactions/read-session")
    async def in_a_read_session(session: ReadSessionDep) -> int:
        return len({await session.scalar(TRANSACTION_ID) for _ in range(2)})

    @app.get("/transactions/unit-of-work")
    async def in_a_unit_of_work(session: SessionDep) -> int:
        return len({await session.scalar(TRANSACTION_ID) for _ in range(2)})


@pytest.mark.parametrize(
    ("dependency", "transactions"),
    [("reader", 2), ("read-session", 2), ("unit-of-work", 1)],
)
async def test_reads_run_each_statement_without_begin(
    pooled_app: FastAPI, dependency: str, transactions: int
) -> None:
    add_transaction_counters(pooled_app)
    async with AsyncClient(transport=ASGITransport(app=pooled_app), base_url="http://t") as client:
        response = await client.get(f"/transactions/{dependency}")

    assert response.json() == transactions  # 2: each statement on its own


async def test_behind_pgbouncer_reads_keep_their_statements_in_a_transaction(
    settings: Settings,
) -> None:
    """asyncpg's prepare and execute must reach the same server connection through PgBouncer."""
    app = create_app(pooled(settings, db_pgbouncer=True))
    add_transaction_counters(app)

    @app.get("/transaction-begun-before-the-statement")
    async def begun_before(reader: ReaderDep) -> bool:
        row = await reader.first(text("SELECT now() < statement_timestamp()"))
        return bool(row and row[0])

    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        session = await client.get("/transactions/read-session")
        reader = await client.get("/transaction-begun-before-the-statement")

    assert session.json() == 1  # the session's statements share its transaction
    assert reader.json() is True  # BEGIN came first: prepare and execute share a transaction


async def test_reads_refuse_to_write(pooled_app: FastAPI, fixture_engine: AsyncEngine) -> None:
    from app.models import User

    @pooled_app.post("/write/read-session")
    async def through_a_read_session(session: ReadSessionDep) -> None:
        session.add(User(email="never@example.com", name="N"))
        await session.flush()

    @pooled_app.post("/write/reader")
    async def through_a_reader(reader: ReaderDep) -> None:
        await reader.all(
            insert(User).values(email="never@example.com", name="N").returning(User.id)
        )

    transport = ASGITransport(app=pooled_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        session = await client.post("/write/read-session")
        reader = await client.post("/write/reader")
    async with fixture_engine.connect() as check:
        stored = await check.scalar(text("SELECT count(*) FROM users WHERE name = 'N'"))

    assert (session.status_code, reader.status_code, stored) == (500, 500, 0)


async def test_ready_answers_while_requests_hold_every_connection(settings: Settings) -> None:
    app = create_app(pooled(settings, db_pool_size=1, db_max_overflow=0))
    async with app.router.lifespan_context(app):
        queue: ConnectionQueue = app.state.connection_queue
        async with queue.turn(), AsyncSession(app.state.engine) as held:
            await held.execute(text("SELECT 1"))  # the pool's only connection, held
            async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
                response = await c.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_takes_no_connection_of_the_requests_while_connects_hang(
    settings: Settings,
) -> None:
    async with silent_server(pooled(settings, db_pool_size=1, db_max_overflow=0)) as hanging:
        app = create_app(hanging)
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
        ):
            probe = asyncio.create_task(client.get("/health/ready"))
            await asyncio.sleep(0.5)  # the probe is waiting for its connect
            held_by_probe = app.state.engine.pool.checkedout()
            response = await probe

    assert held_by_probe == 0
    assert response.status_code == 503


async def test_reads_go_to_the_primary_when_the_replica_is_unreachable(
    settings: Settings,
) -> None:
    replica = unreachable(settings).database_url
    app = create_app(pooled(settings, database_replica_url=replica))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        read = await client.get("/users?limit=1")
        ready = await client.get("/health/ready")

    assert read.status_code == 200
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "replica": "unavailable"})


def count_closes(engine: AsyncEngine) -> Callable[[], int]:
    """How many connections the engine has closed since this call."""
    closed: list[object] = []
    event.listen(engine.sync_engine, "close", lambda *_: closed.append(None))
    return lambda: len(closed)


def count_open(engine: AsyncEngine) -> Callable[[], int]:
    """How many of the engine's connections are open (call it while none is)."""
    opened, closed = count_connects(engine), count_closes(engine)
    return lambda: opened() - closed()


@pytest.fixture
async def peak_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Two connections kept, six more for peaks closed after half a second idle, and a route
    that holds its connection a fifth of a second."""
    app = create_app(pooled(settings, db_pool_size=2, db_max_overflow=6, db_pool_max_idle=0.5))

    @app.get("/hold")
    async def hold(session: SessionDep) -> None:
        await session.execute(text("SELECT pg_sleep(0.2)"))

    async with app.router.lifespan_context(app):
        yield app


async def holding(client: AsyncClient, clients: int, seconds: float) -> set[int]:
    """`clients` clients, each sending /hold again and again for `seconds`."""
    statuses: set[int] = set()

    async def one_client() -> None:
        until = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < until:
            statuses.add((await client.get("/hold")).status_code)

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return statuses


async def test_after_a_peak_the_pool_closes_what_it_opened_above_its_size(
    peak_app: FastAPI,
) -> None:
    open_connections = count_open(peak_app.state.engine)
    async with AsyncClient(transport=ASGITransport(app=peak_app), base_url="http://t") as client:
        statuses = await holding(client, clients=8, seconds=0.5)
        at_peak = open_connections()
        await asyncio.sleep(2)  # idle: four times DB_POOL_MAX_IDLE
        after_idle = open_connections()
        again = await holding(client, clients=8, seconds=0.3)  # a later peak reopens them

    assert statuses == again == {200}
    assert (at_peak, after_idle) == (8, 2)


async def test_under_steady_load_the_pool_opens_and_closes_nothing(peak_app: FastAPI) -> None:
    async with AsyncClient(transport=ASGITransport(app=peak_app), base_url="http://t") as client:
        await holding(client, clients=8, seconds=0.3)  # warm: eight connections
        connects = count_connects(peak_app.state.engine)
        closes = count_closes(peak_app.state.engine)
        statuses = await holding(client, clients=8, seconds=2)  # four times DB_POOL_MAX_IDLE

    assert statuses == {200}
    assert (connects(), closes()) == (0, 0)
