"""Field types that reject, with a 422, input PostgreSQL would refuse with an error or store in a
form the service could not read back. Every string field of a request schema is a `Text`."""

import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

INT4_MAX = 2**31 - 1  # the largest value of a PostgreSQL `integer` column
ID_MAX = 2**63 - 1  # the largest value of a `bigint` identity column: every table's `id`
_FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
# Characters nobody sees in an address: spaces and controls are refused by their Unicode category
# (C*, Z*); these are letters or marks that render as nothing (Hangul fillers, variation selectors).
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180b\u180c\u180d\u180e\u180f") | frozenset(
    map(chr, range(0xFE00, 0xFE10))
)


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate (\ud800-\udfff): not a character UTF-8 has
        raise ValueError("must not contain unpaired surrogates") from None
    return value


def _readable_as_utc(value: datetime) -> datetime:
    """The instant in UTC, as PostgreSQL stores it. Python cannot read back an instant past
    9999-12-31 or before 0001-01-01 in UTC (9999-12-31T23:59:59-01:00 is one), and asyncpg
    writes Python's first and last instants as -infinity and infinity: all are refused."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not _FIRST_INSTANT < utc < _LAST_INSTANT:
        raise ValueError(
            "must be after 0001-01-01T00:00:00Z and before 9999-12-31T23:59:59.999999Z"
        )
    return utc


def _normalized_email(value: object) -> object:
    """One spelling per address: compatibility forms folded (fullwidth letters, NFD accents),
    lowercased. Lowered before the length check: lowering can lengthen ("İ" becomes two)."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFKC", value.strip()).lower()
    for character in value:
        if unicodedata.category(character)[0] in "CZ" or character in _INVISIBLE:
            raise ValueError(
                f"must not contain spaces, control or invisible characters (U+{ord(character):04X})"
            )
    return value


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null: send a value or leave the field out")
    return value


def sort_keys(value: str, allowed: tuple[str, ...]) -> str:
    """A list's `sort`: keys among `allowed`, comma-separated, each with `-` for descending."""
    unknown = [key for key in value.split(",") if key.removeprefix("-") not in allowed]
    if unknown:
        raise ValueError(
            f"cannot sort by {', '.join(unknown)}: the keys are {', '.join(allowed)} "
            "(indexed columns), each with - first for descending"
        )
    return value


Text = Annotated[str, AfterValidator(_storable)]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    Text,
    BeforeValidator(_normalized_email),
    StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Title = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[Text, StringConstraints(max_length=100_000)]
Instant = Annotated[AwareDatetime, AfterValidator(_readable_as_utc)]  # a zone is required
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
Limit = Annotated[int, Field(ge=1, le=100)]
Offset = Annotated[int, Field(ge=0, le=INT4_MAX)]
# A PATCH field of a column that needs a value: left out (None, the unvalidated default) it
# keeps its value; sent as null it is refused.
NotNull = AfterValidator(_not_null)
