import asyncio
import time
from typing import Literal

from fastapi import APIRouter, FastAPI, Request, Response, status
from pydantic import BaseModel

from app.db.replicas import ReplicaRouter
from app.db.session import check_db_connection

router = APIRouter(prefix="/health", tags=["health"])
# Probes within this many seconds of a check's start share its answer.
READY_RESULT_SECONDS = 1.0


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    # Only with DATABASE_REPLICA_URL: "unavailable" means reads go to the primary.
    replica: Literal["ok", "unavailable"] | None = None


class SharedReadiness:
    """One readiness check at a time for the process: probes that arrive while it runs wait
    for its answer, and those within READY_RESULT_SECONDS of its start get the same answer.
    A flood of probes then costs one check a second, and no probe fails because others queue
    for the probe's connection."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._answer: Health | None = None
        self._started = -READY_RESULT_SECONDS
        self._running: asyncio.Task[Health] | None = None

    async def health(self) -> Health:
        if self._answer is not None and time.monotonic() - self._started < READY_RESULT_SECONDS:
            return self._answer
        if self._running is None:
            self._running = asyncio.create_task(self._check())
        # Shielded: a probe that gives up (its client left) does not cancel the others' check.
        return await asyncio.shield(self._running)

    async def _check(self) -> Health:
        started = time.monotonic()
        try:
            answer = await check_databases(self._app)
        finally:
            self._running = None
        self._answer, self._started = answer, started
        return answer


async def check_databases(app: FastAPI) -> Health:
    """The primary answers (and the replica, when one is configured)."""
    replicas: ReplicaRouter = app.state.replica_router
    probes = [app.state.probe_engine]
    if replicas.replica_configured:
        probes.append(app.state.replica_probe_engine)
    primary, *replica = await asyncio.gather(*map(check_db_connection, probes))
    health = Health(status="ok" if primary else "unavailable")
    if replica:
        replicas.replica_answered(replica[0])
        health.replica = "ok" if replica[0] else "unavailable"
    return health


def shared_readiness(app: FastAPI) -> SharedReadiness:
    readiness: SharedReadiness | None = getattr(app.state, "readiness", None)
    if readiness is None:
        readiness = app.state.readiness = SharedReadiness(app)
    return readiness


@router.get("/live", response_model_exclude_none=True)
async def live() -> Health:
    """The process is up; touches nothing else."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"model": Health}}, response_model_exclude_none=True)
async def ready(request: Request, response: Response) -> Health:
    """The database answers; 503 (within a couple of seconds) when it does not. The probe has
    a connection of its own: it never waits behind requests, and they never wait behind it.
    Concurrent probes share one check, and its answer for a second."""
    health = await shared_readiness(request.app).health()
    if health.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health
