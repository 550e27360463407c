"""The service plus one route that fails after writing, for the failing-handler scenario.
Served from the project directory with this folder on PYTHONPATH."""

from app.api.deps import SessionDep
from app.main import create_app as create_service
from app.models import User
from app.schemas.user import UserCreate
from fastapi import FastAPI


def create_app() -> FastAPI:
    app = create_service()

    @app.post("/users-then-fail", status_code=201)
    async def create_then_fail(data: UserCreate, session: SessionDep, fail: bool = False) -> None:
        session.add(User(email=data.email, name=data.name))
        await session.flush()  # sent: a failure must roll it back
        if fail:
            raise RuntimeError("the handler fails after writing")

    return app
