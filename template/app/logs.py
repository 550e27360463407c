"""Logging: one configuration for every logger (the app's, uvicorn's, SQLAlchemy's), JSON lines
in production and readable lines elsewhere, each carrying the request id of the request it
belongs to (and its trace and span ids when traced); and the middleware that gives requests
their id, logs one line each and tells the metrics (app.metrics.HttpMetrics) of them."""

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.hidden_values import HideStatementValues

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only if it is short and plain: it goes into every log line and a header.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# user:password@ in any URL, whatever printed it (a driver's error, a library's repr).
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*):[^\s@/]*@")
_HANDLER_NAME = "app"
UNMATCHED_ROUTE = "<unmatched>"  # the route of every path no route matched
# A record's own attributes; and uvicorn's copy of its message with terminal colour codes.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
request_logger = logging.getLogger("app.requests")
# What other modules add to every record logged (app/telemetry.py: the trace and span ids).
record_fields: list[Callable[[], Mapping[str, str]]] = []


def redact(text: str) -> str:
    """`text` with the password of any URL in it replaced by ***."""
    if "@" not in text:  # most lines: no search at all (a request's line is on every request)
        return text
    return _URL_PASSWORD.sub(r"\g<scheme>:***@", text)


class _RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served when it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        for fields in record_fields:
            for name, value in fields().items():
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and any `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry |= {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_FIELDS and key not in entry
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    """A readable line for a terminal, with the request id in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return redact(super().format(record))


class _StandardErrorHandler(logging.StreamHandler[TextIO]):
    """Writes to `sys.stderr` as it is at each line: test runners swap it and close their own."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger through one handler on the root logger, writing to `stream`
    (standard error by default); calling it again replaces that handler."""
    handler = logging.StreamHandler(stream) if stream else _StandardErrorHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.json_logs else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    if settings.environment == "production":  # as the engine's hide_parameters
        handler.addFilter(HideStatementValues())
    root = logging.getLogger()
    for previous in [known for known in root.handlers if known.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # Python's warnings too: as log lines, never raw on stderr
    # uvicorn's own handlers would print its lines in its format; its access log would repeat
    # what the request line says, with the raw path and query string.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # With DB_ECHO, SQLAlchemy adds a plain stdout handler to a logger that has none.
    for name in ("sqlalchemy.engine.Engine", "sqlalchemy.pool"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def _accepted_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestObserver(Protocol):
    """Told of each request RequestLogMiddleware serves, when it starts (its scope; the request
    id is set) and once answered and logged (its route template, status and duration):
    app.metrics.HttpMetrics counts and times them, app.telemetry's spans trace them."""

    def started(self, scope: Scope) -> None: ...

    def finished(self, method: str, route: str, status: int, seconds: float) -> None: ...


class RequestLogMiddleware:
    """Gives each request an id (the client's `X-Request-ID` when valid, else a new one),
    returns it in the response header, and logs one line per request with the route's path
    template, never the raw path or query string; tells `observers` of each request. The one
    middleware that watches every response (a wrapper of `send` on each request costs CPU).
    Pure ASGI: streams pass through."""

    def __init__(self, app: ASGIApp, *, observers: Sequence[RequestObserver] = ()) -> None:
        self.app = app
        self.observers = observers  # the app's list: one added after the app is made counts too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identifier = _accepted_request_id(scope)
        token = request_id.set(identifier)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, identifier)
            await send(message)

        for observer in self.observers:
            observer.started(scope)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"]
            path = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            duration_ms = round(seconds * 1000, 1)
            request_logger.info(
                "%s %s %s %.1fms",
                method,
                path,
                status,
                duration_ms,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
            # After the line: a span an observer ends is current while it is written.
            for observer in self.observers:
                observer.finished(method, path, status, seconds)
            request_id.reset(token)
