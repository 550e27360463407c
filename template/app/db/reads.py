"""Read-only sessions (ReadSessionDep): each statement on its own, on the replica when one is
configured and answers, on the primary otherwise or right after the client's own write."""

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db.session import PROBE_SECONDS, ConnectionQueue

logger = logging.getLogger(__name__)

# The cookie a committed write sets (with a replica) so the client's next reads see it.
READ_YOUR_WRITES_COOKIE = "read_primary"


def create_read_sessionmaker(
    engine: AsyncEngine, settings: Settings
) -> async_sessionmaker[AsyncSession]:
    """Sessions that only read. Each statement runs on its own (autocommit): no BEGIN and no
    COMMIT round trip. Behind PgBouncer in transaction mode they stay in a transaction: asyncpg
    sends a statement as two exchanges (prepare, then execute), which PgBouncer may give to two
    different server connections when no transaction holds them together."""
    if not settings.db_pgbouncer:
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=ReadOnlySession
    )


class ReadOnlySession(Session):
    """The class of read-only sessions: flushing a change is a bug, caught before it reaches the
    database."""


@event.listens_for(ReadOnlySession, "before_flush")
def refuse_to_write(session: Session, *_: object) -> None:
    raise RuntimeError("a read-only session cannot write: use SessionDep for handlers that write")


class Reads:
    """Where read-only sessions come from: the replica when one is configured and answers, the
    primary otherwise. A replica that fails to connect is skipped for DB_REPLICA_RETRY_AFTER
    seconds (logged); the read that found it down goes to the primary."""

    def __init__(
        self,
        settings: Settings,
        primary: async_sessionmaker[AsyncSession],
        queue: ConnectionQueue,
        replica: AsyncEngine | None = None,
    ) -> None:
        self._primary = primary
        self._queue = queue
        self._replica = create_read_sessionmaker(replica, settings) if replica else None
        self._replica_queue = ConnectionQueue(settings)
        self._retry_after = settings.db_replica_retry_after
        self._replica_down_until = 0.0

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

    @asynccontextmanager
    async def session(self, *, primary: bool = False) -> AsyncIterator[AsyncSession]:
        async with AsyncExitStack() as stack:
            session = None
            if self._replica is not None and not primary and self.replica_in_use:
                session = await self._replica_session(stack, self._replica)
            if session is None:
                await stack.enter_async_context(self._queue.turn())
                session = await stack.enter_async_context(self._primary())
            yield session

    async def _replica_session(
        self, stack: AsyncExitStack, replica: async_sessionmaker[AsyncSession]
    ) -> AsyncSession | None:
        """A session on a connection of the replica, or None when it cannot connect."""
        attempt = AsyncExitStack()
        try:
            await attempt.enter_async_context(self._replica_queue.turn())
            session = await attempt.enter_async_context(replica())
            async with asyncio.timeout(PROBE_SECONDS):
                await session.connection()
        except Exception as error:  # any failure to connect: the primary serves this read
            await attempt.aclose()
            self._mark_replica_down(type(error).__name__)
            return None
        stack.push_async_exit(attempt)
        return session


async def get_read_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session: on the replica when one is configured, except for a client that
    wrote within DB_READ_YOUR_WRITES seconds (it carries the cookie its write set)."""
    reads: Reads = request.app.state.reads
    primary = reads.replica_configured and READ_YOUR_WRITES_COOKIE in request.cookies
    async with reads.session(primary=primary) as session:
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
