"""A request the server cuts short when it stops: uvicorn, run for real, gets SIGTERM while a
write waits behind a table lock, and its graceful shutdown times out. The client must get a
503 with Retry-After and Connection: close (nothing was stored, it may retry), the write must
not be stored, and the cancelled request must be logged once, without a traceback."""

import concurrent.futures
import signal
import subprocess
import time

import httpx
import pytest

from harness.answers import DRIVERS
from harness.environments import project_environment
from harness.faults import DATABASE, Stage, stage_for
from harness.service import free_port, server_workdir, stop, uvicorn_command, wait_until_live

GRACE_SECONDS = 2  # uvicorn's --timeout-graceful-shutdown here (the image's is 8)
LOCK_SECONDS = 12  # the write waits behind the lock longer than the grace period
EMAIL = "shutdown@example.com"


def wait_for_a_statement_waiting_on_a_lock(stage: Stage) -> None:
    waiting = (
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{DATABASE}'"
        " AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + LOCK_SECONDS / 2
    while stage.scalar(waiting) != "1":
        assert time.monotonic() < deadline, "the write never reached the lock"
        time.sleep(0.05)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_request_cut_short_by_shutdown_answers_503_and_stores_nothing(driver: str) -> None:
    with server_workdir(f"shutdown-{driver}-") as workdir, stage_for(driver, workdir) as stage:
        port = free_port()
        # No lock timeout: the write waits for the lock as a long statement would run.
        env = project_environment(
            stage.python,
            environment="development",
            database_url=stage.database_url(),
            db_lock_timeout="0",
        )
        command = uvicorn_command(stage.python, "app.main:create_app", port)
        command[command.index("--timeout-graceful-shutdown") + 1] = str(GRACE_SECONDS)
        log = workdir / "uvicorn.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                command, cwd=stage.project, env=env, stdout=output, stderr=output
            )
        try:
            wait_until_live(f"http://127.0.0.1:{port}", server)
            with (
                stage.postgres.table_locked("users", DATABASE, LOCK_SECONDS),
                concurrent.futures.ThreadPoolExecutor(1) as client,
            ):
                write = client.submit(
                    httpx.post,
                    f"http://127.0.0.1:{port}/users",
                    json={"email": EMAIL, "name": "S"},
                    timeout=LOCK_SECONDS + 10,
                )
                wait_for_a_statement_waiting_on_a_lock(stage)
                server.send_signal(signal.SIGTERM)
                stopping = time.monotonic()
                try:
                    response: httpx.Response | httpx.HTTPError = write.result()
                except httpx.HTTPError as error:  # no answer at all: shown with the log below
                    response = error
                answered_after = time.monotonic() - stopping
                server.wait(timeout=LOCK_SECONDS + 10)  # it ends, whatever the client got
        finally:
            stop(server)
        stored = stage.scalar(f"SELECT count(*) FROM users WHERE email = '{EMAIL}'")
        logged = log.read_text()

    assert isinstance(response, httpx.Response), f"{response!r}\n{logged}"
    assert (response.status_code, stored) == (503, "0"), logged
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Connection"] == "close"
    assert answered_after < LOCK_SECONDS - 1, "answered only once the lock was released"
    assert logged.count("cancelled: the server is stopping") == 1, logged
    assert "Traceback" not in logged, logged
