from fastapi import APIRouter, HTTPException, status

from app.api.deps import USER_NOT_FOUND, ReaderDep, ReadUserDep, ResourceId, WriterDep
from app.schemas.fields import Limit, Offset
from app.schemas.page import Page
from app.schemas.user import UserCreate, UserRead
from app.services import users

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {}})
async def create_user(data: UserCreate, writer: WriterDep) -> UserRead:
    try:
        return await users.create_user(writer=writer, data=data)
    except users.EmailAlreadyRegisteredError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error


@router.get("")
async def list_users(reader: ReaderDep, limit: Limit = 50, offset: Offset = 0) -> Page[UserRead]:
    return await users.list_users(reader=reader, limit=limit, offset=offset)


@router.get("/{user_id}", responses={404: {}})
async def get_user(user: ReadUserDep) -> UserRead:
    return user


@router.put("/{user_id}", responses={404: {}, 409: {}})
async def replace_user(user_id: ResourceId, data: UserCreate, writer: WriterDep) -> UserRead:
    try:
        user = await users.update_user(writer=writer, user_id=user_id, data=data)
    except users.EmailAlreadyRegisteredError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, USER_NOT_FOUND)
    return user
