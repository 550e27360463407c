"""Reads (ReaderDep, ReadSessionDep): each statement on its own, on the replica when one is
configured and answers, on the primary otherwise or right after the client's own write."""

import asyncio
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from fastapi import Request
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Enum,
    Executable,
    Integer,
    Row,
    String,
    Time,
    Uuid,
    event,
)
from sqlalchemy.engine import Dialect, IteratorResult
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.util import await_, greenlet_spawn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db import driver
from app.db.session import PROBE_SECONDS, ConnectionQueue

logger = logging.getLogger(__name__)

# The cookie a committed write sets (with a replica) so the client's next reads see it.
READ_YOUR_WRITES_COOKIE = "read_primary"

OpenedT = TypeVar("OpenedT", AsyncConnection, AsyncSession)
T = TypeVar("T")


def read_engine(engine: AsyncEngine, settings: Settings) -> AsyncEngine:
    """The engine's connections as read-only sessions use them: each statement on its own
    (autocommit), no BEGIN and no COMMIT round trip, and no INSERT, UPDATE or DELETE. Behind
    PgBouncer in transaction mode they stay in a transaction: asyncpg sends a statement as two
    exchanges (prepare, then execute), which PgBouncer may give to two different server
    connections when no transaction holds them together."""
    options = {} if settings.db_pgbouncer else {"isolation_level": "AUTOCOMMIT"}
    reads = engine.execution_options(**options)  # a view of the same pool
    event.listen(reads.sync_engine, "before_execute", refuse_to_write_statement)
    return reads


def refuse_to_write_statement(connection: Connection, statement: object, *_: object) -> None:
    if isinstance(statement, UpdateBase):
        raise RuntimeError("a read connection cannot write: use SessionDep for handlers that write")


class ReadOnlySession(Session):
    """The class of read-only sessions: flushing a change is a bug, caught before it reaches the
    database."""


@event.listens_for(ReadOnlySession, "before_flush")
def refuse_to_write(session: Session, *_: object) -> None:
    raise RuntimeError("a read-only session cannot write: use SessionDep for handlers that write")


@dataclass(frozen=True)
class _Database:
    """One database as reads use it: its engine, read-only sessions on it, its turns."""

    engine: AsyncEngine  # the pool's connections as they are: each read sets what it needs
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: ConnectionQueue

    @classmethod
    def of(cls, engine: AsyncEngine, settings: Settings, queue: ConnectionQueue) -> "_Database":
        sessionmaker = async_sessionmaker(
            read_engine(engine, settings),
            expire_on_commit=False,
            autoflush=False,
            sync_session_class=ReadOnlySession,
        )
        return cls(engine, sessionmaker, queue)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work` on a pooled connection, from checkout to return in one greenlet: SQLAlchemy's
        bridge from its synchronous core to the async driver. (An AsyncConnection enters one
        for its connect, for each execute and for its close: a read would pay three times.)"""
        async with self.queue.turn():
            return await greenlet_spawn(_checked_out, self.engine.sync_engine, work)

    async def connect(self, stack: AsyncExitStack) -> AsyncConnection:
        return await stack.enter_async_context(self.engine.connect())

    async def open_session(self, stack: AsyncExitStack) -> AsyncSession:
        session = await stack.enter_async_context(self.sessionmaker())
        await session.connection()  # connects now: a replica that cannot answer is found here
        return session


def _checked_out(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as connection:
        return work(connection)


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
            _Database.of(replica, settings, ConnectionQueue(settings, engine="replica"))
            if replica
            else None
        )
        self._retry_after = settings.db_replica_retry_after
        self._replica_down_until = 0.0
        # Behind PgBouncer reads stay in a transaction (see read_engine): SQLAlchemy runs them all.
        alone = not settings.db_pgbouncer
        self.reader = Reader(self.run, alone=alone)
        self.primary_reader = Reader(self.run_on_primary, alone=alone)

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

    async def run(self, work: Callable[[Connection], T], *, primary: bool = False) -> T:
        """`work` on a connection of the replica, or of the primary (see `_open`)."""
        if primary or not self.replica_in_use:  # the common case, kept short: it is every read
            return await self._primary.run(work)
        async with AsyncExitStack() as stack:
            connection = await self._open(stack, _Database.connect)
            return await connection.run_sync(work)

    async def run_on_primary(self, work: Callable[[Connection], T]) -> T:
        return await self.run(work, primary=True)

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


class RunsOnConnection(Protocol):
    """Runs `work` on a connection and returns what it returns (`Reads.run`, or
    `AsyncConnection.run_sync` in tests)."""

    def __call__(self, work: Callable[[Connection], T], /) -> Awaitable[T]: ...


class Reader:
    """Runs a request's read statements, each on a pooled connection taken for that statement
    only (as asyncpg's `pool.fetch` does): reads run on their own anyway, so nothing is lost,
    and no connection waits idle while the handler builds its response.

    Each statement runs on its own, outside any transaction: no BEGIN and no COMMIT round trip.
    A SELECT built once (at import) and of plain columns runs on the driver itself from its
    second run: compiled once, no SQLAlchemy cursor or execution context, a third of the CPU
    of the read. The rows, and the errors, are the ones SQLAlchemy gives. Anything else runs
    through SQLAlchemy, in autocommit. With `alone` False (behind PgBouncer) every statement
    runs through SQLAlchemy, in a transaction. On a connection already in a transaction (a
    test's), a statement runs in it."""

    def __init__(self, run: RunsOnConnection, *, alone: bool = True) -> None:
        self._run = run
        self._alone = alone

    async def all(self, statement: Executable, /, **parameters: Any) -> Sequence[Row[Any]]:
        return await self._run(partial(self._rows, statement, parameters))

    async def first(self, statement: Executable, /, **parameters: Any) -> Row[Any] | None:
        rows = await self.all(statement, **parameters)
        return rows[0] if rows else None

    def _rows(
        self, statement: Executable, parameters: dict[str, Any], connection: Connection
    ) -> Sequence[Row[Any]]:
        refuse_to_write_statement(connection, statement)
        plan = _plan(statement, connection.dialect) if self._alone else None
        if plan is not None:
            return plan.run(connection, parameters)
        if self._alone and not connection.in_transaction():
            connection.execution_options(isolation_level="AUTOCOMMIT")  # reset on return
        return connection.execute(statement, parameters).all()


# Types whose values the drivers return as SQLAlchemy does, with no conversion (Enum is a String
# that converts; Numeric and Float convert depending on the column's type in the database).
_PLAIN_TYPES = (Integer, String, Boolean, DateTime, Date, Time, Uuid)


@dataclass(frozen=True)
class _Bind:
    """A parameter of a planned statement: its name in the SQL, the key callers pass it by, the
    value the statement carries, and how the driver wants it."""

    name: str
    key: str
    required: bool
    value: Any
    convert: Callable[[Any], Any] | None

    def sent(self, values: dict[str, Any]) -> Any:
        if self.key in values:
            value = values[self.key]
        elif self.required:
            raise InvalidRequestError(f"A value is required for bind parameter {self.key!r}")
        else:
            value = self.value
        return value if self.convert is None else self.convert(value)


@dataclass(frozen=True)
class _Plan:
    """A read statement compiled once for the driver: its SQL, its parameters, its columns.
    Nothing in it refers back to the statement, so a plan never keeps one alive."""

    sql: str
    binds: tuple[_Bind, ...]
    positional: bool
    columns: SimpleResultMetaData

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
            or any(bind.callable is not None for bind in compiled.bind_names)
            or len(set(keys)) != len(keys)
            or not all(_plain(column.type, dialect) for column in columns)
        ):
            return None
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        order = compiled.positiontup if compiled.positional else list(by_name)
        binds = tuple(
            _Bind(
                name,
                by_name[name].key,
                by_name[name].required,
                by_name[name].value,
                by_name[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in order or ()
        )
        return cls(compiled.string, binds, compiled.positional, SimpleResultMetaData(keys))

    def run(self, connection: Connection, values: dict[str, Any]) -> Sequence[Row[Any]]:
        """The rows, read on the connection's driver (in SQLAlchemy's greenlet); an error is
        handled as SQLAlchemy handles one: wrapped, its events told, a lost connection
        invalidated."""
        sent: Sequence[Any] | Mapping[str, Any] = (
            [bind.sent(values) for bind in self.binds]
            if self.positional
            else {bind.name: bind.sent(values) for bind in self.binds}
        )
        pooled = connection.connection
        try:
            rows = await_(driver.fetch(pooled.driver_connection, self.sql, sent))
        except BaseException as error:
            connection._handle_dbapi_exception(
                driver.as_dbapi_error(pooled, error), self.sql, sent, None, None
            )
        result: IteratorResult[Any] = IteratorResult(self.columns, iter(rows))
        return result.all()


def _plain(type_: Any, dialect: Dialect) -> bool:
    return (
        isinstance(type_, _PLAIN_TYPES)
        and not isinstance(type_, Enum)
        and type_.dialect_impl(dialect).result_processor(dialect, None) is None
    )


# Statements are planned the second time they run: one built per request and run once never is
# (SQLAlchemy's own cache serves it), one built at import is planned once.
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


async def get_reader(request: Request) -> Reader:
    """Reads that need rows, not objects: on the replica when one is configured, except for a
    client that has just written."""
    reads: Reads = request.app.state.reads
    return reads.primary_reader if _wants_primary(request, reads) else reads.reader


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
