import pytest

from app.cli.database import DatabaseProblemError, database, ensure_reachable
from app.config import Settings
from tests.support import UNREACHABLE_PASSWORD, unreachable, with_url


def test_a_database_url_that_is_set_is_used_as_it_is(settings: Settings) -> None:
    with database(settings) as used:
        assert used is settings


def test_an_unreachable_server_is_named_in_one_line_without_the_password(
    settings: Settings,
) -> None:
    with pytest.raises(DatabaseProblemError) as raised:
        ensure_reachable(unreachable(settings))

    message = str(raised.value)
    assert message.startswith(
        f"cannot reach PostgreSQL at 127.0.0.1:9, database {settings.url.database}:"
    )
    assert "start that server, or correct DATABASE_URL" in message
    assert UNREACHABLE_PASSWORD not in message
    assert "\n" not in message


def test_a_missing_database_says_so_and_how_to_create_it(settings: Settings) -> None:
    with pytest.raises(DatabaseProblemError) as raised:
        ensure_reachable(with_url(settings, settings.url.set(database="no_such_database")))

    assert "database no_such_database: that database does not exist: create it" in str(raised.value)
