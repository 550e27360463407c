"""Keeps the values a statement was given out of the log in production, whatever logs the
failure. `hide_parameters` drops SQLAlchemy's `[parameters: ...]`, but the drivers' and the
server's messages quote values too (asyncpg: `invalid input for query argument $2: '...'`;
PostgreSQL: `relation "..." does not exist`)."""

import logging
import traceback
from pathlib import PurePath

from sqlalchemy.exc import StatementError

from app.db.errors import sqlstate_of

_DRIVER_PACKAGES = frozenset({"asyncpg", "psycopg", "psycopg_binary", "psycopg_c"})


def _chain(error: BaseException) -> list[BaseException]:
    """The exception and those it came from, newest first, as a traceback shows them."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain


def _from_the_database(error: BaseException) -> bool:
    if isinstance(error, StatementError):
        return True
    if type(error).__module__.split(".")[0] in _DRIVER_PACKAGES:
        return True
    # A value the driver failed to encode (psycopg raises Python's own UnicodeEncodeError).
    # Its compiled code names its files relative to the package (psycopg_binary/types/...).
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and not _DRIVER_PACKAGES.isdisjoint(PurePath(frames[-1].filename).parts)


def _without_messages(chain: list[BaseException]) -> str:
    """The traceback of each exception, oldest first, each named by its class and SQLSTATE."""
    parts = []
    for error in reversed(chain):
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        sqlstate = sqlstate_of(error)
        detail = f"SQLSTATE {sqlstate}, " if sqlstate else ""
        statement = error.statement if isinstance(error, StatementError) else None
        if statement:
            detail += f"statement: {' '.join(statement.split())}, "
        parts.append(
            "Traceback (most recent call last):\n"
            + "".join(traceback.format_tb(error.__traceback__))
            + f"{kind}: ({detail}message hidden: it may quote the statement's values)\n"
        )
    return "\nThe above exception led to the following exception:\n\n".join(parts).rstrip("\n")


class HideStatementValues(logging.Filter):
    """Replaces the text of a logged exception that came from the database (a driver's error,
    or one SQLAlchemy raised running a statement) by its traceback and the class, SQLSTATE and
    statement of each exception, without their messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            chain = _chain(record.exc_info[1])
            if any(_from_the_database(error) for error in chain):
                record.exc_text = _without_messages(chain)
        return True
