"""Audits of what a service leaves behind, not faults: its production log (JSON, no secrets,
request ids) and its project files (.env ignored, ports on loopback only)."""

import json
import re
from pathlib import Path

import yaml

URL_WITH_PASSWORD = re.compile(r"://[^\s/:@]+:(?!\*\*\*@)[^\s/@]+@")


def json_log_problems(log: str, *, requests: int) -> list[str]:
    """The production log: every line JSON, no URL with a password, a line with a request id
    per request, and the app's warnings and errors tied to their request."""
    problems = []
    lines = []
    for text in log.splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            problems.append(f"a log line is not JSON: {text[:200]}")
    if any(URL_WITH_PASSWORD.search(text) for text in log.splitlines()):
        problems.append("a log line holds a URL with a password")
    request_lines = [line for line in lines if line.get("logger") == "app.requests"]
    if len(request_lines) < requests or not all(line["request_id"] for line in request_lines):
        problems.append(f"{len(request_lines)} request lines with ids for {requests} requests")
    alarms = [
        line
        for line in lines
        if line.get("level") in ("WARNING", "ERROR") and line.get("logger", "").startswith("app.")
    ]
    if not alarms or not all(line["request_id"] for line in alarms):
        problems.append("the app's warnings and errors do not all carry a request id")
    return problems


def static_secret_checks(project: Path) -> list[str]:
    problems = []
    if ".env" not in (project / ".gitignore").read_text().splitlines():
        problems.append(".env is not ignored by git")
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    ports = [port for service in compose["services"].values() for port in service.get("ports", [])]
    if not all(str(port).startswith("127.0.0.1:") for port in ports):
        problems.append(f"compose publishes ports beyond loopback: {ports}")
    return problems
