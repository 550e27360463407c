"""`python -m app dev`: the API with reload, on DATABASE_URL's server when set, else on the
development server (devserver/postgres.py), migrated to head first."""

import fcntl
import os

import uvicorn
from alembic import command
from alembic.config import Config

from app.cli.database import DatabaseProblemError, configured, database
from app.config import PROJECT_ROOT, Settings, get_settings
from devserver import postgres

LOCK = PROJECT_ROOT / ".devdb" / "dev.lock"


def migrate(settings: Settings) -> None:
    """Alembic's `upgrade head`, on the database this run serves."""
    os.environ["DATABASE_URL"] = settings.database_url.get_secret_value()
    get_settings.cache_clear()
    command.upgrade(Config(PROJECT_ROOT / "alembic.ini"), "head")


def dev(host: str, port: int, *, reload: bool) -> int:
    LOCK.parent.mkdir(exist_ok=True)
    with LOCK.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise DatabaseProblemError(
                f"`python -m app dev` already runs for this project (pid {lock.read().strip()}):"
                " use it, or stop it first (Ctrl-C in its terminal)"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        return _serve(host, port, reload=reload)


def _serve(host: str, port: int, *, reload: bool) -> int:
    settings = get_settings()
    if configured(settings):
        source = "DATABASE_URL (environment or .env)"
    else:
        folder = postgres.data_folder().relative_to(PROJECT_ROOT)
        source = f"{postgres.version_note()}, data in {folder}/; set DATABASE_URL for another"
    with database(settings) as served:
        migrate(served)
        print(f"database: {served.url!r}\n          ({source})")
        print(f"API:      http://{host}:{port}\ndocs:     http://{host}:{port}/docs")
        print("Ctrl-C stops the API and the development database.", flush=True)
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            loop="app.loop:new_event_loop",
            reload=reload,
            reload_dirs=[str(PROJECT_ROOT / "app")],
        )
    return 0
