from collections.abc import Iterator

import pytest

from app.cli.commands import main
from app.config import Settings, get_settings
from tests.support import UNREACHABLE_PASSWORD, unreachable

COMMANDS = ["check", "dev", "shell", "dbshell", "new"]


@pytest.fixture
def settings_read_afresh() -> Iterator[None]:
    """The commands read DATABASE_URL from the environment through the cached settings."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_help_lists_every_command_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    output = capsys.readouterr().out
    assert exited.value.code == 0
    for command in COMMANDS:
        [line] = [line for line in output.splitlines() if line.strip().startswith(f"{command} ")]
        assert len(line.split(maxsplit=1)) == 2, f"{command} has no one-line description"


@pytest.mark.usefixtures("settings_read_afresh")
def test_check_runs_on_database_url(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())

    assert main(["check"]) == 0
    assert "migrations: at " in capsys.readouterr().out


@pytest.mark.usefixtures("settings_read_afresh")
def test_a_database_that_cannot_be_reached_is_one_line_and_exit_1(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", unreachable(settings).database_url.get_secret_value())

    exit_code = main(["shell"])

    error = capsys.readouterr().err
    assert exit_code == 1
    assert error.startswith("cannot reach PostgreSQL at 127.0.0.1:9")
    assert len(error.splitlines()) == 1
    assert UNREACHABLE_PASSWORD not in error


def test_new_hands_its_arguments_to_the_resource_generator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["new", "resource", "--help"])

    assert exited.value.code == 0
    assert "python -m app new resource" in capsys.readouterr().out
