"""Dependencies shared by the routers, as `Annotated` aliases: the unit of work, the writes of
one statement, the reads, and the entities they load."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.read_your_writes import wants_primary
from app.db.reads import Reader, Writer
from app.db.replicas import ReplicaRouter
from app.db.session import ConnectionQueue, session_scope
from app.models import User
from app.schemas.fields import ID_MAX
from app.schemas.user import UserRead
from app.services import users


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


async def get_db(
    request: Request,
    sessionmaker: Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)],
) -> AsyncIterator[AsyncSession]:
    """The request's session. Depend on it with scope="function" (SessionDep): the commit then
    happens before the response is sent, so a 2xx means the write is stored."""
    queue: ConnectionQueue = request.app.state.connection_queue
    async with queue.turn(), session_scope(sessionmaker) as session:
        yield session
    if session.info.get("wrote"):
        request.state.wrote = True  # ReadYourWrites tells the client to read the primary


async def get_writer(request: Request) -> AsyncIterator[Writer]:
    """Writes of one statement each, on the primary, each stored when it returns. Depend on it
    with scope="function" (WriterDep): a handler that wrote then tells ReadYourWrites so before
    the response is sent; one that failed (a 409, a 404) did not write."""
    router: ReplicaRouter = request.app.state.replica_router
    yield router.writer
    request.state.wrote = True


async def get_reader(request: Request) -> Reader:
    """Reads that need rows, not objects: on the replica when one is configured, except for a
    client that has just written."""
    router: ReplicaRouter = request.app.state.replica_router
    return router.primary_reader if wants_primary(request, router) else router.reader


async def get_read_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session, for reads that need ORM objects (a relationship to load): on the
    replica when one is configured, except for a client that has just written."""
    router: ReplicaRouter = request.app.state.replica_router
    async with router.session(primary=wants_primary(request, router)) as session:
        yield session


# The unit of work, for handlers whose writes must be stored together, or that write after
# reading, or need one snapshot across statements. scope="function" ends it (commit or
# rollback) before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
# For handlers whose write is one statement (an INSERT, UPDATE or DELETE with RETURNING): it is
# its own transaction, with no BEGIN/COMMIT round trips and no session. The lean write path.
WriterDep = Annotated[Writer, Depends(get_writer, scope="function")]
# For handlers that only read: each statement on its own (no BEGIN/COMMIT round trips), on the
# replica when one is configured. Rows validated into response schemas: the lean path.
ReaderDep = Annotated[Reader, Depends(get_reader)]
# ORM objects, for reads that load relationships; a session costs more CPU than a Reader.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_db, scope="function")]
ResourceId = Annotated[int, Path(ge=1, le=ID_MAX)]
USER_NOT_FOUND = "user not found"


async def get_user_or_404(user_id: ResourceId, session: SessionDep) -> User:
    user = await users.get_user(session=session, user_id=user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, USER_NOT_FOUND)
    return user


async def read_user_or_404(user_id: ResourceId, reader: ReaderDep) -> UserRead:
    user = await users.read_user(reader=reader, user_id=user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, USER_NOT_FOUND)
    return user


UserDep = Annotated[User, Depends(get_user_or_404)]  # an object of the unit of work
ReadUserDep = Annotated[UserRead, Depends(read_user_or_404)]  # read, as the client sees it
