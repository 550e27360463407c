"""The throughput baselines: Starlette and a raw pool of one driver, the same statements as the
service. BASELINE_DRIVER picks the driver: asyncpg (its own pool, with its defaults: it runs a
reset query on each connection it takes back) or psycopg (autocommit connections in a queue).
Writes are one statement each, in autocommit, after the same validation of the JSON body as the
service's (its app/schemas/fields.py)."""

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, StringConstraints, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

USER_COLUMNS = "id, email, name, created_at"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = %s"
USER_PAGE = f"SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM users ORDER BY id LIMIT %s"
INSERT_USER = f"INSERT INTO users (email, name) VALUES (%s, %s) RETURNING {USER_COLUMNS}"
UPDATE_USER = f"UPDATE users SET email = %s, name = %s WHERE id = %s RETURNING {USER_COLUMNS}"
STATEMENTS = (USER_BY_ID, USER_PAGE, INSERT_USER, UPDATE_USER)
UNIQUE_VIOLATION = "23505"
# The service's connection budget (5 + 10 overflow).
SMALLEST_POOL, LARGEST_POOL = 5, 15

Fetch = Callable[..., Awaitable[Sequence[Mapping[str, Any]]]]


def without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def normalized(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class UserBody(BaseModel):
    """The service's UserCreate, rule for rule."""

    email: Annotated[
        str,
        AfterValidator(without_nul),
        BeforeValidator(normalized),
        StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    ]
    name: Annotated[
        str,
        AfterValidator(without_nul),
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    ]


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


async def write_user(request: Request, sql: str, *key: int) -> JSONResponse:
    """The INSERT or UPDATE ... RETURNING of a validated body; 422, 404 and 409 as the service."""
    try:
        body = UserBody.model_validate_json(await request.body())
    except ValidationError as error:
        return JSONResponse({"detail": error.errors(include_url=False, include_context=False)}, 422)
    fetch: Fetch = request.app.state.fetch
    try:
        rows = await fetch(sql, body.email, body.name, *key)
    except Exception as error:
        if getattr(error, "sqlstate", None) == UNIQUE_VIOLATION:
            return JSONResponse({"detail": "a user with this email already exists"}, 409)
        raise
    if not rows:
        return JSONResponse({"detail": "user not found"}, status_code=404)
    return JSONResponse(as_json(rows[0]), status_code=201 if sql == INSERT_USER else 200)


async def create_user(request: Request) -> JSONResponse:
    return await write_user(request, INSERT_USER)


async def replace_user(request: Request) -> JSONResponse:
    return await write_user(request, UPDATE_USER, int(request.path_params["user_id"]))


def numbered(sql: str) -> str:
    """asyncpg's $1, $2, ... for each %s in turn."""
    count = itertools.count(1)
    return re.sub("%s", lambda _: f"${next(count)}", sql)


@asynccontextmanager
async def asyncpg_pool(dsn: str) -> AsyncIterator[Fetch]:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=SMALLEST_POOL, max_size=LARGEST_POOL)
    # asyncpg numbers its parameters: each query converted once, not per call.
    for_asyncpg = {sql: numbered(sql) for sql in STATEMENTS}

    async def fetch(sql: str, *parameters: Any) -> Sequence[Mapping[str, Any]]:
        rows: Sequence[Mapping[str, Any]] = await pool.fetch(for_asyncpg[sql], *parameters)
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
    routes = [
        Route("/users/{user_id:int}", get_user),
        Route("/users/{user_id:int}", replace_user, methods=["PUT"]),
        Route("/users", list_users),
        Route("/users", create_user, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_route("/health/live", lambda request: JSONResponse({"status": "ok"}))
    return app
