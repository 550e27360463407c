import multiprocessing
import os

import pytest

from app.loop import new_event_loop

# WEB_CONCURRENCY (unset: one process) and the loop each server process must serve on.
CHOICES = [(None, "asyncio."), ("1", "asyncio."), ("2", "uvloop."), ("4", "uvloop.")]
IDS = ["unset", "one-process", "two-workers", "four-workers"]


def loop_class(web_concurrency: str | None) -> str:
    if web_concurrency is None:
        os.environ.pop("WEB_CONCURRENCY", None)
    else:
        os.environ["WEB_CONCURRENCY"] = web_concurrency
    loop = new_event_loop()
    loop.close()
    return f"{type(loop).__module__}.{type(loop).__name__}"


@pytest.mark.parametrize(("web_concurrency", "expected"), CHOICES, ids=IDS)
def test_the_server_process_started_directly_serves_on_the_loop_web_concurrency_asks_for(
    monkeypatch: pytest.MonkeyPatch, web_concurrency: str | None, expected: str
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)  # restored after the test

    assert loop_class(web_concurrency).startswith(expected)


@pytest.mark.parametrize(("web_concurrency", "expected"), CHOICES, ids=IDS)
def test_a_spawned_server_process_serves_on_the_same_loop(
    web_concurrency: str | None, expected: str
) -> None:
    # uvicorn spawns the process that serves both for --reload (compose.dev.yaml) and for each
    # of its --workers.
    with multiprocessing.get_context("spawn").Pool(1) as processes:
        started_in_a_child = processes.apply(loop_class, (web_concurrency,))

    assert started_in_a_child.startswith(expected)
