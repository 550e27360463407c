"""`python -m app shell`: Python with top-level `await`, the settings, engine, session factory
and every model at hand; `python -m app dbshell`: psql on the same database."""

import ast
import asyncio
import code
import importlib
import importlib.util
import inspect
import os
import shutil
import subprocess
import types
from typing import Any

import sqlalchemy

from app.config import Settings
from app.db.base import Base
from app.db.session import create_engine, create_sessionmaker

BANNER = (
    "{project} shell on {database}: settings, engine, Session (async_sessionmaker), select, text "
    "and the models ({models}) are here; use `await`, e.g.\n"
    "    async with Session() as session: print(await session.scalar(select(func.count())"
    ".select_from(...)))"
)


def namespace(settings: Settings) -> dict[str, Any]:
    """What the shell starts with: the settings, the engine, a session factory, every model and
    the SQLAlchemy constructs a query needs."""
    import app.models  # noqa: F401  (registers every model on Base)

    engine = create_engine(settings)
    names: dict[str, Any] = {
        "settings": settings,
        "engine": engine,
        "Session": create_sessionmaker(engine),
        "select": sqlalchemy.select,
        "text": sqlalchemy.text,
        "func": sqlalchemy.func,
    }
    for mapper in Base.registry.mappers:
        names[mapper.class_.__name__] = mapper.class_
    return names


class AsyncConsole(code.InteractiveConsole):
    """The standard console, compiling with top-level `await` allowed and running what it
    compiles on one event loop, kept for the whole session (the engine's connections live on
    it)."""

    def __init__(self, names: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(names)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.loop = loop

    def runcode(self, code_object: types.CodeType) -> None:
        try:
            result = types.FunctionType(code_object, self.locals)()
            if inspect.iscoroutine(result):
                self.loop.run_until_complete(result)
        except SystemExit:
            raise
        except BaseException:
            self.showtraceback()


def shell(settings: Settings) -> int:
    names = namespace(settings)
    models = ", ".join(sorted(mapper.class_.__name__ for mapper in Base.registry.mappers))
    banner = BANNER.format(project="python -m app", database=repr(settings.url), models=models)
    loop = asyncio.new_event_loop()
    try:
        if importlib.util.find_spec("IPython") is None:
            AsyncConsole(names, loop).interact(banner=banner, exitmsg="")
        else:  # not a dependency: whoever installed it wants it (its own autoawait)
            ipython = importlib.import_module("IPython")
            ipython.start_ipython(argv=["--no-banner"], user_ns=names)
    finally:
        loop.run_until_complete(names["engine"].dispose())
        loop.close()
    return 0


def dbshell(settings: Settings, psql: str | None) -> int:
    """psql on the database, the password handed over in the environment (PGPASSWORD), so that
    no process listing shows it."""
    psql = psql or shutil.which("psql")
    if psql is None:
        print("psql is not installed: install PostgreSQL's client (apt install postgresql-client)")
        return 1
    url = settings.url
    environment = {
        **os.environ,
        "PGHOST": url.host or str(url.query.get("host", "localhost")),
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
        "PGDATABASE": url.database or "postgres",
    }
    if url.password:
        environment["PGPASSWORD"] = url.password
    return subprocess.run([psql], env=environment, check=False).returncode  # noqa: S603
