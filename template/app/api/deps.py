"""Dependencies shared by the routers, as `Annotated` aliases."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.reads import Reader, get_read_db, get_reader
from app.db.session import get_db
from app.models import User
from app.schemas.fields import ID_MAX
from app.schemas.user import UserRead
from app.services import users

# The unit of work, for handlers that write or need one snapshot across statements.
# scope="function" ends it (commit or rollback) before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
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
