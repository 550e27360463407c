"""Reads that scale out, for real: the rendered service (uvicorn) on an embedded primary and a hot
standby made from it with pg_basebackup, both drivers. Pausing the standby's replay shows where a
read went: a row written after the pause is on the primary only."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness.answers import DRIVERS
from harness.service import Postgres, Standby, migrate, prepare, serve

DATABASE = "replicated"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Postgres, Standby]]:
    root = tmp_path_factory.mktemp("replica")
    primary = Postgres(root)
    try:
        primary.create_database(DATABASE)
        standby = Standby(primary, root / "standby")
        try:
            yield primary, standby
        finally:
            standby.close()
    finally:
        primary.close()


def eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    """Whether `check` comes true within `seconds` (bounded polling, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def status(client: httpx.Client, path: str) -> int:
    return client.get(path).status_code


def readiness(client: httpx.Client) -> tuple[int, object]:
    ready = client.get("/health/ready")
    return ready.status_code, ready.json()


@pytest.mark.parametrize("driver", DRIVERS)
def test_reads_go_to_the_replica_fall_back_to_the_primary_and_come_back(
    driver: str, servers: tuple[Postgres, Standby], tmp_path: Path
) -> None:
    primary, standby = servers
    project, python = prepare(tmp_path, db_driver=driver)
    migrate(project, python, primary.url(DATABASE, driver))

    def on_standby(statement: str) -> None:
        standby.sql(statement, DATABASE)

    with (
        serve(
            project,
            python,
            tmp_path / "service.log",
            database_url=primary.url(DATABASE, driver),
            database_replica_url=standby.url(DATABASE, driver),
            db_replica_retry_after="0.5",
        ) as service,
        httpx.Client(base_url=service.base_url, timeout=10) as writer,
        httpx.Client(base_url=service.base_url, timeout=10) as reader,
    ):

        def create(email: str) -> int:
            created = writer.post("/users", json={"email": email, "name": "R"})
            assert created.status_code == 201
            user_id: int = created.json()["id"]
            return user_id

        # Written on the primary, read from the replica once replayed.
        replayed = create(f"replayed-{driver}@example.com")
        assert eventually(lambda: status(reader, f"/users/{replayed}") == 200)
        assert reader.get("/health/ready").json() == {"status": "ok", "replica": "ok"}

        # Replay paused: a new row is on the primary only. The writer (its cookie) reads its
        # write; a client that did not write reads the replica and does not see it yet.
        on_standby("SELECT pg_wal_replay_pause()")
        unreplayed = create(f"unreplayed-{driver}@example.com")
        assert "read_primary" in writer.cookies
        assert status(writer, f"/users/{unreplayed}") == 200
        assert status(reader, f"/users/{unreplayed}") == 404
        on_standby("SELECT pg_wal_replay_resume()")
        assert eventually(lambda: status(reader, f"/users/{unreplayed}") == 200)

        # Replica stopped: reads fall back to the primary, readiness says so.
        standby.stop()
        try:
            assert status(reader, f"/users/{unreplayed}") == 200
            # Probes share a check's answer for a second: the one before the stop may still stand.
            assert eventually(
                lambda: readiness(reader) == (200, {"status": "ok", "replica": "unavailable"})
            )
        finally:
            standby.start()

        # Started again: used again (a row written during a pause is not seen by the reader).
        assert eventually(lambda: reader.get("/health/ready").json().get("replica") == "ok")
        on_standby("SELECT pg_wal_replay_pause()")
        try:
            again = create(f"again-{driver}@example.com")
            assert eventually(lambda: status(reader, f"/users/{replayed}") == 200)
            assert status(reader, f"/users/{again}") == 404
        finally:
            on_standby("SELECT pg_wal_replay_resume()")
        assert eventually(lambda: status(reader, f"/users/{again}") == 200)
