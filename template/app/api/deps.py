"""Dependencies shared by the routers, as `Annotated` aliases."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.reads import get_read_db
from app.db.session import get_db
from app.models import User
from app.schemas.fields import INT4_MAX
from app.services import users

# The unit of work, for handlers that write or need one snapshot across statements.
# scope="function" ends it (commit or rollback) before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
# For handlers that only read: each statement on its own (no BEGIN/COMMIT round trips), on the
# replica when one is configured. The connection goes back before the response is sent.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_db, scope="function")]
ResourceId = Annotated[int, Path(ge=1, le=INT4_MAX)]


async def user_or_404(session: AsyncSession, user_id: int) -> User:
    user = await users.get_user(session=session, user_id=user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    return user


async def get_user_or_404(user_id: ResourceId, session: SessionDep) -> User:
    return await user_or_404(session, user_id)


async def read_user_or_404(user_id: ResourceId, session: ReadSessionDep) -> User:
    return await user_or_404(session, user_id)


UserDep = Annotated[User, Depends(get_user_or_404)]  # loaded in the unit of work
ReadUserDep = Annotated[User, Depends(read_user_or_404)]  # loaded by a read-only session
