"""Behind PgBouncer in transaction mode: the statement and lock timeouts in force per
transaction, and a logged hint when PgBouncer is in front and DB_PGBOUNCER is not set."""

import logging
import time

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

logger = logging.getLogger(__name__)

# What a client that sends startup parameters or names its prepared statements meets behind
# PgBouncer in transaction mode: PgBouncer refusing the connection, or PostgreSQL finding a
# statement name taken (42P05) or missing (26000) on the server connection it was handed.
REFUSED_STARTUP_PARAMETER = "unsupported startup parameter"
PREPARED_STATEMENT_SQLSTATES = {"42P05", "26000"}
HINT_INTERVAL_SECONDS = 60.0


class MissingSettingHint:
    """Logs, at most once a minute, what to set when the server looks like PgBouncer."""

    def __init__(self) -> None:
        self._last_logged = -HINT_INTERVAL_SECONDS

    def __call__(self, error: BaseException) -> None:
        now = time.monotonic()
        if looks_like_pgbouncer(error) and now - self._last_logged >= HINT_INTERVAL_SECONDS:
            self._last_logged = now
            logger.error(
                "the database answered like PgBouncer in transaction mode (%s: %s): "
                "set DB_PGBOUNCER=true when DATABASE_URL points at PgBouncer",
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
            )


# One for the process, shared by its engines. It sees the errors of statements run through
# SQLAlchemy here; connects (app.db.errors) and reads on the driver (app.db.reads), which
# SQLAlchemy's handle_error never sees, show it theirs.
missing_setting_hint = MissingSettingHint()


def configure(engine: AsyncEngine, settings: Settings) -> MissingSettingHint | None:
    """Call once per engine, where it is created. Without DB_PGBOUNCER it returns the hint,
    which must be shown the errors of connects too."""
    if not settings.db_pgbouncer:
        event.listen(
            engine.sync_engine,
            "handle_error",
            lambda context: missing_setting_hint(context.original_exception),
        )
        return missing_setting_hint
    if timeouts := {name: ms for name, ms in settings.session_timeouts.items() if ms != "0"}:
        # PgBouncer refuses the startup parameters that set them for a whole connection, and a
        # plain SET would stay on a server connection that other clients get next. set_config's
        # local form (SET LOCAL) ends with the transaction: one statement per transaction.
        calls = ", ".join(f"set_config('{name}', '{ms}', true)" for name, ms in timeouts.items())
        set_local = f"SELECT {calls}"

        def apply_timeouts(connection: Connection) -> None:
            connection.exec_driver_sql(set_local)

        event.listen(engine.sync_engine, "begin", apply_timeouts)
    return None


def looks_like_pgbouncer(error: BaseException) -> bool:
    """True for the failures a client configured for PostgreSQL itself gets from PgBouncer."""
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    return sqlstate in PREPARED_STATEMENT_SQLSTATES or REFUSED_STARTUP_PARAMETER in str(error)
