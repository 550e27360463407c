"""Where reads run: on the replica when one is configured and answers, on the primary otherwise
(or when the caller asks for it, right after its own write); writes of one statement run on the
primary."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from app.config import Settings
from app.db.reads import PooledConnections, Reader, Writer, refuse_to_write_statement
from app.db.session import PROBE_SECONDS, ConnectionQueue
from app.metrics import metrics

logger = logging.getLogger(__name__)

OpenedT = TypeVar("OpenedT", AsyncConnection, AsyncSession, PoolProxiedConnection)


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


class ReadOnlySession(Session):
    """The class of read-only sessions: flushing a change is a bug, caught before it reaches the
    database."""


@event.listens_for(ReadOnlySession, "before_flush")
def refuse_to_write(session: Session, *_: object) -> None:
    raise RuntimeError("a read-only session cannot write: use SessionDep for handlers that write")


@dataclass(frozen=True)
class Database:
    """One database as reads use it: its engine, read-only sessions on it, its turns."""

    engine: AsyncEngine  # the pool's connections as they are: each read sets what it needs
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: ConnectionQueue

    @classmethod
    def of(cls, engine: AsyncEngine, settings: Settings, queue: ConnectionQueue) -> "Database":
        sessionmaker = async_sessionmaker(
            read_engine(engine, settings),
            expire_on_commit=False,
            autoflush=False,
            sync_session_class=ReadOnlySession,
        )
        return cls(engine, sessionmaker, queue)

    async def connect(self, stack: AsyncExitStack) -> AsyncConnection:
        connection = await self.engine.connect().start()
        # Closed by the stack, not by `async with`, which shields the close in a task of its
        # own: a task and three turns of the event loop more per read.
        stack.push_async_callback(connection.close)
        return connection

    async def pooled(self, stack: AsyncExitStack) -> PoolProxiedConnection:
        connection = await self.engine.raw_connection()
        stack.callback(connection.close)  # back to the pool: nothing to await
        return connection

    async def open_session(self, stack: AsyncExitStack) -> AsyncSession:
        session = await stack.enter_async_context(self.sessionmaker())
        await session.connection()  # connects now: a replica that cannot answer is found here
        return session


class ReplicaRouter:
    """Routes reads to the replica when one is configured and answers, to the primary otherwise.
    A replica that fails to connect is skipped for DB_REPLICA_RETRY_AFTER seconds (logged); the
    read that found it down goes to the primary. `reader` reads where the router says,
    `primary_reader` on the primary (a client's reads right after its own write); `writer`
    writes there."""

    def __init__(
        self,
        settings: Settings,
        primary: AsyncEngine,
        queue: ConnectionQueue,
        replica: AsyncEngine | None = None,
    ) -> None:
        self._primary = Database.of(primary, settings, queue)
        self._replica = (
            Database.of(replica, settings, ConnectionQueue(settings, engine="replica"))
            if replica
            else None
        )
        self._retry_after = settings.db_replica_retry_after
        self._replica_down_until = 0.0
        # Resolved once: counting a read is then one increment, not a lookup by label.
        known = metrics()
        self._primary_reads = known.reads.labels("primary")
        self._replica_reads = known.reads.labels("replica")
        self._reads_after_write = known.reads_after_write
        # Behind PgBouncer reads stay in a transaction (see read_engine): SQLAlchemy runs them all.
        direct = not settings.db_pgbouncer
        # A planned statement takes the pool's connection itself (see `pooled`) where the pool
        # keeps what it is given back, as a QueuePool of this project's does (no overflow): a
        # NullPool closes each connection on return, which with psycopg awaits inside
        # SQLAlchemy's greenlet. A connection through SQLAlchemy otherwise.
        engines = [primary] if replica is None else [primary, replica]
        keeps = direct and all(isinstance(engine.pool, QueuePool) for engine in engines)

        def pooled(**where: bool) -> PooledConnections | None:
            return partial(self.pooled, **where) if keeps else None

        self.reader = Reader(self.connect, pooled=pooled(), direct=direct)
        self.primary_reader = Reader(
            partial(self.connect, primary=True), pooled=pooled(primary=True), direct=direct
        )
        self.writer = Writer(
            partial(self.connect, writing=True), pooled=pooled(writing=True), direct=direct
        )

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

    def connect(
        self, *, primary: bool = False, writing: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A pooled connection of the replica, or of the primary (see `_open`), for one read
        through SQLAlchemy; of the primary for one write."""
        return self._one(Database.connect, primary=primary, writing=writing)

    def pooled(
        self, *, primary: bool = False, writing: bool = False
    ) -> AbstractAsyncContextManager[PoolProxiedConnection]:
        """As `connect`, the pool's own connection (`AsyncEngine.raw_connection()`), for one
        statement run on the driver (app.db.reads.Plan): no SQLAlchemy Connection to make
        around it, nor to close after it (which awaits inside SQLAlchemy's greenlet)."""
        return self._one(Database.pooled, primary=primary, writing=writing)

    @asynccontextmanager
    async def _one(
        self,
        opener: Callable[[Database, AsyncExitStack], Awaitable[OpenedT]],
        *,
        primary: bool,
        writing: bool,
    ) -> AsyncIterator[OpenedT]:
        if primary or writing or not self.replica_in_use:  # the common case, kept short
            if not writing:
                self._count_primary_read(after_write=primary)
            async with self._primary.queue.turn(), AsyncExitStack() as stack:
                yield await opener(self._primary, stack)
            return
        async with AsyncExitStack() as stack:
            yield await self._open(stack, opener)

    @asynccontextmanager
    async def session(self, *, primary: bool = False) -> AsyncIterator[AsyncSession]:
        async with AsyncExitStack() as stack:
            yield await self._open(stack, Database.open_session, primary=primary)

    async def _open(
        self,
        stack: AsyncExitStack,
        opener: Callable[[Database, AsyncExitStack], Awaitable[OpenedT]],
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
                self._replica_reads.inc()
                return opened
        self._count_primary_read(after_write=primary)
        await stack.enter_async_context(self._primary.queue.turn())
        return await opener(self._primary, stack)

    def _count_primary_read(self, *, after_write: bool) -> None:
        # Without a replica every read is the primary's: nothing to split, nothing counted (a
        # counted value is a write to a shared file in multiprocess mode, on every read).
        if self._replica is None:
            return
        self._primary_reads.inc()
        if after_write:  # only the read-your-writes cookie sends a read to the primary by name
            self._reads_after_write.inc()
