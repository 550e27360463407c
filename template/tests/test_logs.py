import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from starlette.types import Receive, Scope, Send

from app.config import Settings
from app.logs import RequestLogMiddleware, configure_logging, redact

LogLines = Iterator[list[dict[str, Any]]]


@pytest.fixture
def log_output(settings: Settings) -> Iterator[io.StringIO]:
    """Logs as production writes them (JSON), into a buffer; the test's settings afterwards."""
    output = io.StringIO()
    production_like = settings.model_copy(update={"log_format": "json", "log_level": "INFO"})
    configure_logging(production_like, stream=output)
    yield output
    configure_logging(settings)


def json_lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


async def test_a_request_id_is_returned_and_logged_with_the_route(
    client: AsyncClient, log_output: io.StringIO
) -> None:
    response = await client.get("/users/999999", headers={"X-Request-ID": "req-42.a:b_c"})

    assert response.headers["X-Request-ID"] == "req-42.a:b_c"
    requests = [line for line in json_lines(log_output) if line["logger"] == "app.requests"]
    assert len(requests) == 1
    assert requests[0]["request_id"] == "req-42.a:b_c"
    assert requests[0]["method"] == "GET"
    assert requests[0]["path"] == "/users/{user_id}"
    assert requests[0]["status"] == 404
    assert requests[0]["duration_ms"] >= 0


@pytest.mark.parametrize(
    "given", [None, "", "x" * 129, "has space", "semi;colon", "ünïcode"], ids=repr
)
async def test_a_missing_or_unsafe_request_id_is_replaced(
    client: AsyncClient, given: str | None
) -> None:
    headers = [(b"X-Request-ID", given.encode())] if given is not None else []

    response = await client.get("/health/live", headers=headers)

    generated = response.headers["X-Request-ID"]
    assert generated != given
    assert len(generated) == 32
    assert int(generated, 16) >= 0


async def test_any_logger_s_warning_carries_the_request_id(log_output: io.StringIO) -> None:
    async def warns(scope: Scope, receive: Receive, send: Send) -> None:
        logging.getLogger("some.library").warning("careful")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = ASGITransport(app=RequestLogMiddleware(warns))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/anything", headers={"X-Request-ID": "abc"})

    by_logger = {line["logger"]: line for line in json_lines(log_output)}
    warning, request = by_logger["some.library"], by_logger["app.requests"]
    assert response.status_code == 204
    assert (warning["level"], warning["logger"], warning["message"]) == (
        "WARNING",
        "some.library",
        "careful",
    )
    assert warning["request_id"] == request["request_id"] == "abc"
    assert request["path"] == "<unmatched>"


def test_log_lines_never_show_a_url_s_password(log_output: io.StringIO) -> None:
    url = "postgresql+driver://app:s3cret@db:5432/app"

    try:
        raise ConnectionError(f"could not reach {url}")
    except ConnectionError:
        logging.getLogger("app").exception("failed on %s", url)

    (line,) = [line for line in json_lines(log_output) if line["logger"] == "app"]
    assert "s3cret" not in json.dumps(line)
    assert "postgresql+driver://app:***@db:5432/app" in line["message"]
    assert redact("no url here") == "no url here"


def test_json_lines_leave_out_uvicorn_s_colour_codes(log_output: io.StringIO) -> None:
    coloured = "Started server process [\x1b[36m%d\x1b[0m]"
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": coloured}
    )

    (line,) = [line for line in json_lines(log_output) if line["logger"] == "uvicorn.error"]
    assert line["message"] == "Started server process [7]"
    assert "color_message" not in line


def test_development_logs_are_readable_lines(settings: Settings) -> None:
    output = io.StringIO()
    configure_logging(settings.model_copy(update={"environment": "development"}), stream=output)
    try:
        logging.getLogger("app").warning("disk %s", "full")
    finally:
        configure_logging(settings)

    assert output.getvalue().rstrip().endswith("WARNING app [-] disk full")


@pytest.mark.parametrize(
    ("environment", "log_format", "expected"),
    [("production", None, True), ("development", None, False), ("production", "text", False)],
)
def test_json_logs_by_environment_unless_set(
    settings: Settings, environment: str, log_format: str | None, expected: bool
) -> None:
    chosen = settings.model_copy(update={"environment": environment, "log_format": log_format})

    assert chosen.json_logs is expected


def test_log_level_comes_from_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    from_environment = Settings(_env_file=None)

    configure_logging(from_environment)
    try:
        assert logging.getLogger().level == logging.WARNING
    finally:
        configure_logging(settings)
    assert from_environment.log_level == "WARNING"


def test_python_warnings_are_log_lines(settings: Settings) -> None:
    output = io.StringIO()
    # In the test itself: pytest restores the way warnings are shown after each fixture
    # (and captureWarnings(True) does nothing while it believes it is still in place).
    logging.captureWarnings(False)
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=output)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library's warning", UserWarning, stacklevel=1)
    finally:
        configure_logging(settings)

    [line] = json_lines(output)
    assert line["logger"] == "py.warnings"
    assert line["level"] == "WARNING"
    assert "a library's warning" in line["message"]
