"""The throughput baseline: Starlette and a raw asyncpg pool, the same queries as the service."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

USER_COLUMNS = "id, email, name, created_at"


def as_json(row: asyncpg.Record) -> dict[str, object]:
    return {**row, "created_at": row["created_at"].isoformat()}


async def get_user(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1",
        int(request.path_params["user_id"]),
    )
    if row is None:
        return JSONResponse({"detail": "user not found"}, status_code=404)
    return JSONResponse(as_json(row))


async def list_users(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    limit = int(request.query_params.get("limit", 50))
    rows = await pool.fetch(
        f"SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM users ORDER BY id LIMIT $1",
        limit,
    )
    total = rows[0]["total"] if rows else 0
    items = [{key: value for key, value in as_json(row).items() if key != "total"} for row in rows]
    return JSONResponse({"items": items, "total": total, "limit": limit, "offset": 0})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # The same connection budget as the service's pool (5 + 10 overflow).
    app.state.pool = await asyncpg.create_pool(os.environ["BASELINE_DSN"], min_size=5, max_size=15)
    yield
    await app.state.pool.close()


def create_app() -> Starlette:
    routes = [Route("/users/{user_id:int}", get_user), Route("/users", list_users)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_route("/health/live", lambda request: JSONResponse({"status": "ok"}))
    return app
