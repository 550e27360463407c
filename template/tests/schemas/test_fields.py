"""The shared field types on their own; the endpoints' tests show them answering 422."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

import pytest
from pydantic import AfterValidator, TypeAdapter, ValidationError

from app.schemas.fields import Email, Instant, NotNull, sort_keys

INSTANT = TypeAdapter(Instant)


def test_an_instant_is_kept_in_utc() -> None:
    sent = datetime(2026, 12, 7, 9, 30, tzinfo=timezone(timedelta(hours=2)))

    assert INSTANT.validate_python(sent) == sent
    assert INSTANT.validate_python(sent).tzinfo == UTC


@pytest.mark.parametrize(
    "sent",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:30:00+01:00", "2026-12-07T09:30:00"],
    ids=["after-9999-in-utc", "before-year-1-in-utc", "no-zone"],
)
def test_an_instant_postgresql_and_python_cannot_both_read_back_is_refused(sent: str) -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_python(sent)


def test_an_email_that_is_not_text_is_refused_as_the_wrong_type() -> None:
    with pytest.raises(ValidationError, match="string_type"):
        TypeAdapter(Email).validate_python(42)


def test_not_null_refuses_null_and_keeps_a_value() -> None:
    required = TypeAdapter(Annotated[int | None, NotNull])

    assert required.validate_python(3) == 3
    with pytest.raises(ValidationError, match="must not be null"):
        required.validate_python(None)


def test_sort_keys_accepts_allowed_keys_either_way_and_names_them_otherwise() -> None:
    keys = TypeAdapter(
        Annotated[str, AfterValidator(lambda value: sort_keys(value, ("id", "name")))]
    )

    assert keys.validate_python("-name,id") == "-name,id"
    with pytest.raises(ValidationError, match="cannot sort by email: the keys are id, name"):
        keys.validate_python("name,email")
