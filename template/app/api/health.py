from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from app.db.session import check_db_connection

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


@router.get("/live")
async def live() -> Health:
    """The process is up; touches nothing else."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"model": Health}})
async def ready(request: Request, response: Response) -> Health:
    """The database answers; 503 (within a couple of seconds) when it does not."""
    if await check_db_connection(request.app.state.engine):
        return Health(status="ok")
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="unavailable")
