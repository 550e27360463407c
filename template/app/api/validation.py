"""422 answers that say what is wrong with a request without repeating it: each error carries at
most a short prefix of the value it is about, so a large body never comes back (nor fills memory
twice), and any string, a lone surrogate included, encodes (escaped as ASCII)."""

import json
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

INPUT_PREFIX_CHARACTERS = 40


def _short(value: Any) -> Any:
    """A string or bytes cut to its prefix; numbers and the like as they are; a list or an object
    (the whole body, when a field is missing) by its size only."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        cut = value[:INPUT_PREFIX_CHARACTERS]
        return cut if len(cut) == len(value) else f"{cut}... ({len(value)} characters)"
    if isinstance(value, bool | int | float) or value is None:
        return value if not isinstance(value, int) or abs(value) < 10**40 else "a large integer"
    if isinstance(value, dict | list):
        return f"{type(value).__name__} of {len(value)} items"
    return type(value).__name__


def _error(error: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "type": error["type"],
        "loc": [_short(part) if isinstance(part, str) else part for part in error["loc"]],
        "msg": error["msg"],
    }
    if "input" in error:
        shown["input"] = _short(error["input"])
    if "ctx" in error:
        shown["ctx"] = {key: _short(str(value)) for key, value in error["ctx"].items()}
    return shown


class AsciiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def register_validation_handler(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return AsciiJSONResponse(
            {"detail": [_error(each) for each in error.errors()]},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
