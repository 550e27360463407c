import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from app.db.replicas import ReplicaRouter
from app.db.session import check_db_connection

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    # Only with DATABASE_REPLICA_URL: "unavailable" means reads go to the primary.
    replica: Literal["ok", "unavailable"] | None = None


@router.get("/live", response_model_exclude_none=True)
async def live() -> Health:
    """The process is up; touches nothing else."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"model": Health}}, response_model_exclude_none=True)
async def ready(request: Request, response: Response) -> Health:
    """The database answers; 503 (within a couple of seconds) when it does not. The probe has
    a connection of its own: it never waits behind requests, and they never wait behind it."""
    router: ReplicaRouter = request.app.state.replica_router
    probes = [request.app.state.probe_engine]
    if router.replica_configured:
        probes.append(request.app.state.replica_probe_engine)
    primary, *replica = await asyncio.gather(*map(check_db_connection, probes))
    health = Health(status="ok" if primary else "unavailable")
    if replica:
        router.replica_answered(replica[0])
        health.replica = "ok" if replica[0] else "unavailable"
    if not primary:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health
