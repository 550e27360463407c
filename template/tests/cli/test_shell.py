import asyncio
import io

import pytest

from app.cli.shell import AsyncConsole, namespace, shell
from app.config import Settings


def test_the_shell_starts_with_the_settings_engine_sessions_and_every_model(
    settings: Settings,
) -> None:
    names = namespace(settings)

    assert names["settings"] is settings
    assert {"engine", "Session", "select", "func", "User", "Post"} <= names.keys()
    asyncio.run(names["engine"].dispose())


def test_the_console_runs_top_level_await_on_the_database(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    names = namespace(settings)
    loop = asyncio.new_event_loop()
    console = AsyncConsole(names, loop)

    console.push("async with Session() as session:")
    console.push(
        "    print('users:', await session.scalar(select(func.count()).select_from(User)))"
    )
    console.push("")
    loop.run_until_complete(names["engine"].dispose())
    loop.close()

    assert "users: " in capsys.readouterr().out


def test_the_shell_reads_a_piped_script_and_exits_0(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("print('one:', await engine.dispose() or 1)\n"))

    assert shell(settings) == 0
    assert "one: 1" in capsys.readouterr().out
