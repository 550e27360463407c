"""Dependencies shared by the routers, as `Annotated` aliases."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import get_db
from app.models import User
from app.schemas.fields import INT4_MAX
from app.services import users

# scope="function" ends the unit of work (commit or rollback) before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
ResourceId = Annotated[int, Path(ge=1, le=INT4_MAX)]


async def get_user_or_404(user_id: ResourceId, session: SessionDep) -> User:
    user = await users.get_user(session=session, user_id=user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    return user


UserDep = Annotated[User, Depends(get_user_or_404)]
