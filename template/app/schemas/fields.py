"""Field types that reject, with a 422, input PostgreSQL would refuse with an error."""

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

INT4_MAX = 2**31 - 1  # the largest value of a PostgreSQL `integer` column


def _normalized(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_without_nul)]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# Lower-cased before the length check: lowering can lengthen a string ("İ" becomes two letters).
Email = Annotated[
    Text,
    BeforeValidator(_normalized),
    StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Title = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[Text, StringConstraints(max_length=100_000)]
Limit = Annotated[int, Field(ge=1, le=100)]
Offset = Annotated[int, Field(ge=0, le=INT4_MAX)]
