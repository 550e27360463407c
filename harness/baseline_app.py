"""The throughput baselines: Starlette and a raw pool of one driver, the same queries as the
service. BASELINE_DRIVER picks the driver: asyncpg (its own pool, with its defaults: it runs a
reset query on each connection it takes back) or psycopg (autocommit connections in a queue)."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

USER_COLUMNS = "id, email, name, created_at"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = %s"
USER_PAGE = f"SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM users ORDER BY id LIMIT %s"
# The service's connection budget (5 + 10 overflow).
SMALLEST_POOL, LARGEST_POOL = 5, 15

Fetch = Callable[..., Awaitable[Sequence[Mapping[str, Any]]]]


def as_json(row: Mapping[str, Any]) -> dict[str, object]:
    return {**row, "created_at": row["created_at"].isoformat()}


async def get_user(request: Request) -> JSONResponse:
    fetch: Fetch = request.app.state.fetch
    rows = await fetch(USER_BY_ID, int(request.path_params["user_id"]))
    if not rows:
        return JSONResponse({"detail": "user not found"}, status_code=404)
    return JSONResponse(as_json(rows[0]))


async def list_users(request: Request) -> JSONResponse:
    fetch: Fetch = request.app.state.fetch
    limit = int(request.query_params.get("limit", 50))
    rows = await fetch(USER_PAGE, limit)
    total = rows[0]["total"] if rows else 0
    items = [{key: value for key, value in as_json(row).items() if key != "total"} for row in rows]
    return JSONResponse({"items": items, "total": total, "limit": limit, "offset": 0})


@asynccontextmanager
async def asyncpg_pool(dsn: str) -> AsyncIterator[Fetch]:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=SMALLEST_POOL, max_size=LARGEST_POOL)
    # asyncpg numbers its parameters: each query converted once, not per call.
    numbered = {sql: sql.replace("%s", "$1") for sql in (USER_BY_ID, USER_PAGE)}

    async def fetch(sql: str, *parameters: Any) -> Sequence[Mapping[str, Any]]:
        rows: Sequence[Mapping[str, Any]] = await pool.fetch(numbered[sql], *parameters)
        return rows

    try:
        yield fetch
    finally:
        await pool.close()


@asynccontextmanager
async def psycopg_pool(dsn: str) -> AsyncIterator[Fetch]:
    import psycopg
    from psycopg.rows import dict_row

    free: asyncio.Queue[psycopg.AsyncConnection[dict[str, Any]]] = asyncio.Queue()
    for _ in range(LARGEST_POOL):
        connection = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, row_factory=dict_row
        )
        free.put_nowait(connection)

    async def fetch(sql: str, *parameters: Any) -> Sequence[Mapping[str, Any]]:
        connection = await free.get()
        try:
            cursor = await connection.execute(sql, parameters, binary=True)
            return await cursor.fetchall()
        finally:
            free.put_nowait(connection)

    try:
        yield fetch
    finally:
        while not free.empty():
            await free.get_nowait().close()


POOLS = {"asyncpg": asyncpg_pool, "psycopg": psycopg_pool}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = POOLS[os.environ.get("BASELINE_DRIVER", "asyncpg")]
    async with pool(os.environ["BASELINE_DSN"]) as app.state.fetch:
        yield


def create_app() -> Starlette:
    routes = [Route("/users/{user_id:int}", get_user), Route("/users", list_users)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_route("/health/live", lambda request: JSONResponse({"status": "ok"}))
    return app
