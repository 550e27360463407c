import gc
import re

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.check import POOL_OVER_BUDGET, check
from app.config import Settings
from app.main import YOUNG_OBJECTS_PER_COLLECTION, create_app
from tests.support import UNREACHABLE_PASSWORD, unreachable


async def test_check_reports_server_and_migration_state(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)

    exit_code = await check(settings)

    output = capsys.readouterr().out
    assert exit_code == 0
    assert "PostgreSQL" in output
    assert f"pool:       size={settings.db_pool_size} " in output
    assert f" ping_after={settings.db_pool_ping_after}s" in output
    assert re.search(r"migrations: at (\w+), head is \1$", output, re.MULTILINE)
    pool, overflow = settings.db_pool_size, settings.db_max_overflow
    budget = f"1 process(es) (WEB_CONCURRENCY) x ({pool} pool + {overflow} overflow) = "
    assert f"budget:     {budget}{pool + overflow}" in output
    assert "WARNING" not in output


async def test_check_reports_the_statement_timeout_the_server_applies(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await check(settings.model_copy(update={"db_statement_timeout": 0.25}))

    assert "statement_timeout=250ms " in capsys.readouterr().out


async def test_check_behind_pgbouncer_reports_the_timeout_set_per_transaction(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """PgBouncer mode sends no startup parameter; the timeout is SET LOCAL in each transaction,
    and the check reads it back from the server inside one."""
    await check(settings.model_copy(update={"db_pgbouncer": True, "db_statement_timeout": 30}))

    assert "statement_timeout=30s " in capsys.readouterr().out


async def test_check_behind_pgbouncer_without_a_timeout_reports_the_servers_own(
    settings: Settings, fixture_engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    async with fixture_engine.connect() as connection:
        servers_own = await connection.scalar(text("SHOW statement_timeout"))

    await check(settings.model_copy(update={"db_pgbouncer": True, "db_statement_timeout": 0}))

    assert f"statement_timeout={servers_own} " in capsys.readouterr().out


async def test_check_warns_when_the_pools_need_more_than_the_server_allows(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "1000")

    exit_code = await check(settings)

    output = capsys.readouterr().out
    assert exit_code == POOL_OVER_BUDGET
    pool, overflow = settings.db_pool_size, settings.db_max_overflow
    budget = f"1000 process(es) (WEB_CONCURRENCY) x ({pool} pool + {overflow} overflow) = "
    assert f"{budget}{1000 * (pool + overflow)}" in output
    assert re.search(r"the server allows \d+ \(max_connections \d+ - \d+ reserved\)", output)
    assert "WARNING:    the pools can ask for more connections than the server allows" in output


async def test_check_fails_clearly_without_leaking_the_password(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = await check(unreachable(settings))

    output = capsys.readouterr().out
    assert exit_code == 1
    assert "unreachable" in output
    assert UNREACHABLE_PASSWORD not in output


async def test_while_serving_the_collector_skips_what_startup_made_and_waits_for_many_young_objects(
    settings: Settings,
) -> None:
    app = create_app(settings)
    default_threshold = gc.get_threshold()
    async with app.router.lifespan_context(app):
        frozen_while_serving = gc.get_freeze_count()
        threshold_while_serving = gc.get_threshold()

    assert frozen_while_serving > 10_000  # modules, the app, the engines
    assert threshold_while_serving == (YOUNG_OBJECTS_PER_COLLECTION, *default_threshold[1:])
    assert gc.get_freeze_count() == 0  # collectable again: app after app in tests piles nothing up
    assert gc.get_threshold() == default_threshold
