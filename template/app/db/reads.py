"""Reads (ReaderDep, ReadSessionDep): each statement on its own, on the replica when one is
configured and answers, on the primary otherwise or right after the client's own write."""

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import Request
from sqlalchemy import Connection, Engine, Executable, Row, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import greenlet_spawn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db.session import PROBE_SECONDS, ConnectionQueue

logger = logging.getLogger(__name__)

# The cookie a committed write sets (with a replica) so the client's next reads see it.
READ_YOUR_WRITES_COOKIE = "read_primary"

OpenedT = TypeVar("OpenedT", AsyncConnection, AsyncSession)
T = TypeVar("T")


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
            _Database.of(replica, settings, ConnectionQueue(settings)) if replica else None
        )
        self._retry_after = settings.db_replica_retry_after
        self._replica_down_until = 0.0
        self.reader = Reader(self.run)
        self.primary_reader = Reader(self.run_on_primary)

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
    and no connection waits idle while the handler builds its response."""

    def __init__(self, run: RunsOnConnection) -> None:
        self._run = run

    async def all(self, statement: Executable, /, **parameters: Any) -> Sequence[Row[Any]]:
        return await self._run(lambda connection: connection.execute(statement, parameters).all())

    async def first(self, statement: Executable, /, **parameters: Any) -> Row[Any] | None:
        return await self._run(lambda connection: connection.execute(statement, parameters).first())


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
