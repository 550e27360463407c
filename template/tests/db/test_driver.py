from sqlalchemy import text

from app.config import Settings
from app.db.session import create_engine


async def show_setting(settings: Settings, name: str) -> str | None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            # Twice: the second run of a statement is where prepared statements would kick in.
            await connection.scalar(text(f"SHOW {name}"))
            shown: str | None = await connection.scalar(text(f"SHOW {name}"))
    finally:
        await engine.dispose()
    return shown


async def show_statement_timeout(settings: Settings) -> str | None:
    return await show_setting(settings, "statement_timeout")


async def test_statement_timeout_reaches_the_server(settings: Settings) -> None:
    seven_seconds = settings.model_copy(update={"db_statement_timeout": 7})

    assert await show_statement_timeout(seven_seconds) == "7s"


async def test_lock_timeout_reaches_the_server(settings: Settings) -> None:
    three_seconds = settings.model_copy(update={"db_lock_timeout": 3})

    assert await show_setting(three_seconds, "lock_timeout") == "3s"


async def test_pgbouncer_mode_sends_no_startup_parameters(settings: Settings) -> None:
    behind_pgbouncer = settings.model_copy(update={"db_pgbouncer": True, "db_statement_timeout": 7})
    engine = create_engine(behind_pgbouncer)
    try:
        async with engine.connect() as connection:
            # The session's own value: what a startup parameter would have set.
            session_value = await connection.scalar(
                text("SELECT reset_val FROM pg_settings WHERE name = 'statement_timeout'")
            )
    finally:
        await engine.dispose()

    assert session_value == "0"
