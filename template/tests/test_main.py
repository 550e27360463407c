import re

import pytest

from app.__main__ import check
from app.config import Settings
from tests.support import UNREACHABLE_PASSWORD, unreachable


async def test_check_reports_server_and_migration_state(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = await check(settings)

    output = capsys.readouterr().out
    assert exit_code == 0
    assert "PostgreSQL" in output
    assert f"pool:       size={settings.db_pool_size} " in output
    assert re.search(r"migrations: at (\w+), head is \1$", output, re.MULTILINE)


async def test_check_fails_clearly_without_leaking_the_password(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = await check(unreachable(settings))

    output = capsys.readouterr().out
    assert exit_code == 1
    assert "unreachable" in output
    assert UNREACHABLE_PASSWORD not in output
