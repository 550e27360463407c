"""Reads (ReaderDep, ReadSessionDep): each statement on its own, on the replica when one is
configured and answers, on the primary otherwise or right after the client's own write."""

import asyncio
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Enum,
    Executable,
    Integer,
    String,
    Time,
    Uuid,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.util import greenlet_spawn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db import driver
from app.db.session import PROBE_SECONDS, ConnectionQueue

logger = logging.getLogger(__name__)

# The cookie a committed write sets (with a replica) so the client's next reads see it.
READ_YOUR_WRITES_COOKIE = "read_primary"

OpenedT = TypeVar("OpenedT", AsyncConnection, AsyncSession, PoolProxiedConnection)
# A row as read services get it: column name to value.
ReadRow = dict[str, Any]


def read_engine(engine: AsyncEngine, settings: Settings) -> AsyncEngine:
    """The engine's connections as reads use them: each statement on its own (autocommit), no
    BEGIN and no COMMIT round trip, and no INSERT, UPDATE or DELETE. Behind PgBouncer in
    transaction mode they stay in a transaction: asyncpg sends a statement as two exchanges
    (prepare, then execute), which PgBouncer may give to two different server connections when
    no transaction holds them together."""
    options = {} if settings.db_pgbouncer else {"isolation_level": "AUTOCOMMIT"}
    reads = engine.execution_options(**options)  # a view of the same pool
    event.listen(reads.sync_engine, "before_execute", refuse_to_write_statement)
    return reads


def refuse_to_write_statement(connection: Connection | None, statement: object, *_: object) -> None:
    if isinstance(statement, UpdateBase):
        raise RuntimeError("a read connection cannot write: use SessionDep for handlers that write")


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[PoolProxiedConnection]:
    """A pooled connection (checked, as every checkout is) without SQLAlchemy's Connection
    around it: the driver runs the statement."""
    pooled = await engine.raw_connection()
    try:
        yield pooled
    finally:
        await greenlet_spawn(pooled.close)


class ReadOnlySession(Session):
    """The class of read-only sessions: flushing a change is a bug, caught before it reaches the
    database."""


@event.listens_for(ReadOnlySession, "before_flush")
def refuse_to_write(session: Session, *_: object) -> None:
    raise RuntimeError("a read-only session cannot write: use SessionDep for handlers that write")


@dataclass(frozen=True)
class _Database:
    """One database as reads use it: its read engine, read-only sessions on it, its turns."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: ConnectionQueue

    @classmethod
    def of(cls, engine: AsyncEngine, settings: Settings, queue: ConnectionQueue) -> "_Database":
        reads = read_engine(engine, settings)
        sessionmaker = async_sessionmaker(
            reads, expire_on_commit=False, autoflush=False, sync_session_class=ReadOnlySession
        )
        return cls(reads, sessionmaker, queue)

    async def connect(self, stack: AsyncExitStack) -> AsyncConnection:
        return await stack.enter_async_context(self.engine.connect())

    async def connect_driver(self, stack: AsyncExitStack) -> PoolProxiedConnection:
        return await stack.enter_async_context(driver_connection(self.engine))

    async def open_session(self, stack: AsyncExitStack) -> AsyncSession:
        session = await stack.enter_async_context(self.sessionmaker())
        await session.connection()  # connects now: a replica that cannot answer is found here
        return session


class Reads:
    """Where reads get their connection: the replica when one is configured and answers, the
    primary otherwise. A replica that fails to connect is skipped for DB_REPLICA_RETRY_AFTER
    seconds (logged); the read that found it down goes to the primary."""

    def __init__(
        self,
        settings: Settings,
        primary: AsyncEngine,
        queue: ConnectionQueue,
        replica: AsyncEngine | None = None,
    ) -> None:
        self._primary = _Database.of(primary, settings, queue)
        self._replica = (
            _Database.of(replica, settings, ConnectionQueue(settings)) if replica else None
        )
        self._retry_after = settings.db_replica_retry_after
        self._replica_down_until = 0.0
        # Behind PgBouncer reads stay in a transaction (see read_engine): SQLAlchemy runs them.
        self.in_transactions = settings.db_pgbouncer

    @property
    def replica_configured(self) -> bool:
        return self._replica is not None

    @property
    def replica_in_use(self) -> bool:
        return self._replica is not None and time.monotonic() >= self._replica_down_until

    def replica_answered(self, answered: bool) -> None:
        """What a probe of the replica found (used by /health/ready)."""
        if answered and not self.replica_in_use:
            logger.warning("the replica answers again: reads go back to it")
            self._replica_down_until = 0.0
        elif not answered and self.replica_in_use:
            self._mark_replica_down("it did not answer the readiness probe")

    def _mark_replica_down(self, why: str) -> None:
        logger.warning(
            "the replica is unreachable (%s): reads go to the primary for %s s",
            why,
            self._retry_after,
        )
        self._replica_down_until = time.monotonic() + self._retry_after

    @property
    def engine(self) -> AsyncEngine:
        """The primary's read engine (its dialect and settings are the replica's too)."""
        return self._primary.engine

    @asynccontextmanager
    async def connection(self, *, primary: bool = False) -> AsyncIterator[AsyncConnection]:
        async with AsyncExitStack() as stack:
            yield await self._open(stack, _Database.connect, primary=primary)

    @asynccontextmanager
    async def driver_connection(
        self, *, primary: bool = False
    ) -> AsyncIterator[PoolProxiedConnection]:
        if primary or not self.replica_in_use:  # the common case, kept short: it is every read
            async with (
                self._primary.queue.turn(),
                driver_connection(self._primary.engine) as pooled,
            ):
                yield pooled
            return
        async with AsyncExitStack() as stack:
            yield await self._open(stack, _Database.connect_driver)

    @asynccontextmanager
    async def session(self, *, primary: bool = False) -> AsyncIterator[AsyncSession]:
        async with AsyncExitStack() as stack:
            yield await self._open(stack, _Database.open_session, primary=primary)

    async def _open(
        self,
        stack: AsyncExitStack,
        opener: Callable[[_Database, AsyncExitStack], Awaitable[OpenedT]],
        *,
        primary: bool = False,
    ) -> OpenedT:
        """What `opener` opens on the replica, or on the primary when the replica is not to be
        used or cannot connect."""
        if self._replica is not None and not primary and self.replica_in_use:
            attempt = AsyncExitStack()
            try:
                await attempt.enter_async_context(self._replica.queue.turn())
                async with asyncio.timeout(PROBE_SECONDS):
                    opened = await opener(self._replica, attempt)
            except Exception as error:  # any failure to connect: the primary serves this read
                await attempt.aclose()
                self._mark_replica_down(type(error).__name__)
            else:
                stack.push_async_exit(attempt)
                return opened
        await stack.enter_async_context(self._primary.queue.turn())
        return await opener(self._primary, stack)


def _wants_primary(request: Request, reads: Reads) -> bool:
    """A client that wrote within DB_READ_YOUR_WRITES seconds carries the cookie its write set."""
    return reads.replica_configured and READ_YOUR_WRITES_COOKIE in request.cookies


# Types whose values the drivers return as SQLAlchemy does, with no conversion (Enum is a String
# that converts; Numeric and Float convert depending on the column's type in the database).
_PLAIN_TYPES = (Integer, String, Boolean, DateTime, Date, Time, Uuid)


@dataclass(frozen=True)
class _Plan:
    """A read statement compiled once for the driver: its SQL, how its parameters are sent, the
    names of its columns."""

    compiled: SQLCompiler
    converters: Mapping[str, Callable[[Any], Any]]
    keys: tuple[str, ...]

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> "_Plan | None":
        """The plan of a SELECT whose parameters and columns need nothing from SQLAlchemy at run
        time beyond what is compiled here; None for any other statement (SQLAlchemy runs it)."""
        if not isinstance(statement, SelectBase):
            return None
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            return None
        columns = compiled._result_columns  # (key, name, objects, type) of each column, in order
        keys = tuple(column.keyname for column in columns)
        if (
            compiled.post_compile_params  # IN lists and the like: the SQL changes per execution
            or compiled.literal_execute_params
            or compiled.escaped_bind_names
            or len(set(keys)) != len(keys)
            or not all(_plain(column.type, dialect) for column in columns)
        ):
            return None
        converters = {
            name: converter
            for bind, name in compiled.bind_names.items()
            if (converter := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        return cls(compiled, converters, keys)

    def parameters(self, values: dict[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """The statement's parameters as the driver takes them, each converted as SQLAlchemy
        would; the statement's own values (`where(User.id == 1)`) included."""
        named = self.compiled.construct_params(values, escape_names=False)
        for name, convert in self.converters.items():
            named[name] = convert(named[name])
        if self.compiled.positiontup is None:
            return named
        return [named[name] for name in self.compiled.positiontup]


def _plain(type_: Any, dialect: Dialect) -> bool:
    return (
        isinstance(type_, _PLAIN_TYPES)
        and not isinstance(type_, Enum)
        and type_.dialect_impl(dialect).result_processor(dialect, None) is None
    )


# Statements seen once are planned the second time they run: a statement built per request is
# never planned (SQLAlchemy's cache serves it), one built at import is planned once.
_SEEN_ONCE = object()
_plans: "weakref.WeakKeyDictionary[Executable, object]" = weakref.WeakKeyDictionary()


def _plan(statement: Executable, dialect: Dialect) -> _Plan | None:
    plan = _plans.get(statement)
    if plan is None:
        _plans[statement] = _SEEN_ONCE
        return None
    if plan is _SEEN_ONCE:
        plan = _plans[statement] = _Plan.of(statement, dialect)
    return plan if isinstance(plan, _Plan) else None


class Reader:
    """Runs a request's read statements, each on its own (autocommit) on a pooled connection
    taken for that statement only, as asyncpg's `pool.fetch` does: nothing is lost, since reads
    run on their own anyway, and no connection waits idle while the handler builds its response.

    A SELECT built once (at import) and of plain columns runs straight on the driver: SQL compiled
    once, no SQLAlchemy Connection or Result, a third of the CPU. Any other statement, or with
    `driver` None (behind PgBouncer), runs through SQLAlchemy. Rows come back as dicts."""

    def __init__(
        self,
        engine: AsyncEngine,
        connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        driver: Callable[[], AbstractAsyncContextManager[PoolProxiedConnection]] | None,
    ) -> None:
        self._dialect = engine.dialect
        self._hide_parameters = engine.sync_engine.hide_parameters
        self._connect = connect
        self._driver = driver

    async def all(self, statement: Executable, /, **parameters: Any) -> list[ReadRow]:
        refuse_to_write_statement(None, statement)
        plan = _plan(statement, self._dialect) if self._driver else None
        if plan is None or self._driver is None:
            async with self._connect() as connection:
                result = await connection.execute(statement, parameters)
                return [row._asdict() for row in result]
        sent = plan.parameters(parameters)
        async with self._driver() as pooled:
            try:
                rows = await driver.fetch(pooled.driver_connection, plan.compiled.string, sent)
            except Exception as error:
                raise await self._sqlalchemy_error(pooled, plan, sent, error) from error
        return [dict(zip(plan.keys, row, strict=True)) for row in rows]

    async def first(self, statement: Executable, /, **parameters: Any) -> ReadRow | None:
        rows = await self.all(statement, **parameters)
        return rows[0] if rows else None

    async def _sqlalchemy_error(
        self, pooled: PoolProxiedConnection, plan: _Plan, sent: Any, error: Exception
    ) -> Exception:
        """The error as SQLAlchemy would raise it (app.api.errors answers those), the connection
        invalidated if it was lost."""
        dbapi_error = driver.as_dbapi_error(pooled, error)
        if not isinstance(dbapi_error, self._dialect.loaded_dbapi.Error):
            return dbapi_error
        lost = self._dialect.is_disconnect(dbapi_error, pooled.dbapi_connection, None)
        if lost:
            await greenlet_spawn(pooled.invalidate, dbapi_error)
        return DBAPIError.instance(
            plan.compiled.string,
            sent,
            dbapi_error,
            self._dialect.loaded_dbapi.Error,
            hide_parameters=self._hide_parameters,
            dialect=self._dialect,
            connection_invalidated=lost,
        )


async def get_reader(request: Request) -> Reader:
    """Reads that need rows, not objects: on the replica when one is configured, except for a
    client that has just written."""
    reads: Reads = request.app.state.reads
    primary = _wants_primary(request, reads)
    return Reader(
        reads.engine,
        partial(reads.connection, primary=primary),
        None if reads.in_transactions else partial(reads.driver_connection, primary=primary),
    )


async def get_read_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session, for reads that need ORM objects (a relationship to load): on the
    replica when one is configured, except for a client that has just written."""
    reads: Reads = request.app.state.reads
    async with reads.session(primary=_wants_primary(request, reads)) as session:
        yield session


class ReadYourWrites:
    """With a replica: a response to a request that committed a write sets a cookie for
    DB_READ_YOUR_WRITES seconds, and the client's reads go to the primary while it lasts, so
    they see the write before the replica has replayed it."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.cookie = (
            f"{READ_YOUR_WRITES_COOKIE}=1; Max-Age={math.ceil(seconds)}; Path=/; HttpOnly; "
            "SameSite=Lax"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get("state", {}).get("wrote"):
                MutableHeaders(scope=message).append("set-cookie", self.cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
