import logging

import pytest
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.session import create_engine
from tests.db.test_driver import show_setting, show_statement_timeout


async def test_pgbouncer_mode_sets_the_statement_timeout_per_transaction(
    settings: Settings,
) -> None:
    behind_pgbouncer = settings.model_copy(update={"db_pgbouncer": True, "db_statement_timeout": 7})

    assert await show_statement_timeout(behind_pgbouncer) == "7s"


async def test_pgbouncer_mode_sets_the_lock_timeout_per_transaction(settings: Settings) -> None:
    behind_pgbouncer = settings.model_copy(update={"db_pgbouncer": True, "db_lock_timeout": 3})

    assert await show_setting(behind_pgbouncer, "lock_timeout") == "3s"


async def test_pgbouncer_mode_without_a_timeout_sets_none(settings: Settings) -> None:
    behind_pgbouncer = settings.model_copy(
        update={"db_pgbouncer": True, "db_statement_timeout": 0, "db_lock_timeout": 0}
    )

    assert await show_statement_timeout(behind_pgbouncer) == "0"
    assert await show_setting(behind_pgbouncer, "lock_timeout") == "0"


async def test_a_pgbouncer_symptom_logs_what_to_set_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # A statement name already taken on the server connection (42P05) is what a client that
    # names its statements meets behind PgBouncer in transaction mode.
    engine = create_engine(settings)
    try:
        for attempt in range(2):
            async with engine.connect() as connection:
                prepare = f"PREPARE taken_{attempt} AS SELECT 1"
                await connection.exec_driver_sql(prepare)
                with pytest.raises(DBAPIError), caplog.at_level(logging.ERROR):
                    await connection.exec_driver_sql(prepare)
    finally:
        await engine.dispose()

    hints = [record for record in caplog.records if "DB_PGBOUNCER=true" in record.getMessage()]
    assert len(hints) == 1
