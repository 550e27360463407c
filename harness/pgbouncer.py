"""PgBouncer (Debian's package, 1.18) in transaction mode in front of an embedded PostgreSQL, on
loopback; and a measurement: a generated service under a mixed read/write load through it, then
the prepared statements each of PgBouncer's server connections holds. Prints one table.

    python3 -m uv run python -m harness.pgbouncer [--drivers asyncpg psycopg] [--seconds 60]

tests/test_pgbouncer.py runs the same load for a few seconds and asserts the bound.
"""

import argparse
import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.answers import DRIVERS
from harness.commands import run
from harness.faults import (
    DATABASE,
    Result,
    Stage,
    call,
    client_for,
    stage_for,
    write_and_read,
)
from harness.paths import ROOT
from harness.service import Postgres, free_port, prepare

CONFIG = """\
[databases]
* = host={socket_dir} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
ignore_startup_parameters = {ignored}
"""


class PgBouncer:
    """PgBouncer in transaction mode in front of `postgres`, until close(). It refuses to run as
    root: as root it runs as the embedded server's own system user, which can reach its socket."""

    def __init__(
        self,
        postgres: Postgres,
        directory: Path,
        *,
        pool_size: int = 10,
        max_client_conn: int = 200,
        ignore_startup_parameters: str = "",
    ) -> None:
        executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        assert Path(executable).exists(), "no pgbouncer: apt-get install pgbouncer"
        self.postgres = postgres
        self.directory = directory
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        info = postgres.server.get_postmaster_info()
        (directory / "users.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(
            CONFIG.format(
                socket_dir=info.socket_dir,
                server_port=info.port,
                port=self.port,
                directory=directory,
                pool_size=pool_size,
                max_client_conn=max_client_conn,
                ignored=ignore_startup_parameters,
            )
        )
        user = postgres.server.system_user
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in [directory, *directory.iterdir()]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.process = subprocess.Popen(
            [executable, str(directory / "pgbouncer.ini")],
            user=user,
            group=None if user is None else pwd.getpwnam(user).pw_gid,
            extra_groups=None if user is None else [],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited {self.process.returncode}:\n{self.log()}")
            if (
                run(
                    *self.psql("pgbouncer"),
                    "-c",
                    "SHOW VERSION",
                    cwd=self.directory,
                    returncode=None,
                ).returncode
                == 0
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not listen within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def url(self, database: str, driver: str | None = None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, database: str) -> list[str]:
        return [str(self.postgres.server.bin_path / "psql"), "-X", "-At", self.url(database)]

    def admin(self, command: str) -> list[list[str]]:
        """A command on PgBouncer's admin console; its rows, fields split."""
        output = run(*self.psql("pgbouncer"), "-c", command, cwd=self.directory).stdout
        return [line.split("|") for line in output.splitlines() if line]

    def server_connections(self, database: str) -> int:
        return sum(1 for row in self.admin("SHOW SERVERS") if row[2] == database)

    def prepared_statements(self, database: str, hold_seconds: float = 1.5) -> list[int]:
        """Prepared statements held by each of PgBouncer's server connections to `database`.

        pg_prepared_statements shows only the asking backend's own statements: as many clients
        as there are server connections each hold a transaction open through PgBouncer at the
        same time, so each is handed a different server connection, and asks it."""
        servers = self.server_connections(database)
        query = "SELECT 'held', pg_backend_pid(), count(*) FROM pg_prepared_statements"
        command = [*self.psql(database), "-c", "BEGIN", "-c", query]
        command += ["-c", f"SELECT pg_sleep({hold_seconds})", "-c", "COMMIT"]
        clients = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(servers)
        ]
        held: dict[str, int] = {}
        for client in clients:
            output, _ = client.communicate(timeout=60)
            for line in output.splitlines():
                if line.startswith("held|"):
                    _, pid, count = line.split("|")
                    held[pid] = int(count)
        return sorted(held.values())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # safe shutdown: waits for clients to end
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def pgbouncer_in_front(
    stage: Stage, name: str = "pgbouncer", **options: Any
) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(stage.postgres, stage.workdir / name, **options)
    try:
        yield bouncer
    finally:
        bouncer.close()


@dataclass
class Load:
    result: Result
    prepared: list[int]  # per server connection, after the load


async def mixed_load(
    stage: Stage, bouncer: PgBouncer, *, seconds: float, clients: int = 16, limit: int = 100_000
) -> Result:
    """`clients` loops of write, read-it-back, list, through PgBouncer, for `seconds` or until
    `limit` requests; checks 0 errors (so 0 5xx and every write read back) and acknowledged =
    stored."""
    result = Result("mixed load through PgBouncer", stage.driver)
    prefix = f"bounced-{stage.driver}-"
    acknowledged: set[str] = set()
    settings = {"database_url": bouncer.url(DATABASE, stage.driver), "db_pgbouncer": "true"}
    with stage.serve("pgbouncer-load", **settings) as running:
        async with client_for(running, clients) as client:
            deadline = time.monotonic() + seconds

            async def worker(number: int) -> None:
                count = 0
                while time.monotonic() < deadline and len(result.records) < limit:
                    email = f"{prefix}{number}-{count}@x.io"
                    await write_and_read(client, result, email, acknowledged)
                    await call(client, result, "GET", "/users?limit=5")
                    count += 1

            await asyncio.gather(*(worker(number) for number in range(clients)))
    result.check(not result.errors(), f"requests failed: {result.errors()}")
    result.acknowledged = len(acknowledged)
    result.stored = stage.stored(acknowledged, prefix)
    result.check(result.acknowledged == result.stored, "an acknowledged write was lost")
    return result


def measure(driver: str, workdir: Path, seconds: float, project: tuple[Path, Path]) -> Load:
    with (
        stage_for(driver, workdir / driver, project) as stage,
        pgbouncer_in_front(stage) as bouncer,
    ):
        result = asyncio.run(mixed_load(stage, bouncer, seconds=seconds))
        return Load(result, bouncer.prepared_statements(DATABASE))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.pgbouncer")
    parser.add_argument("--drivers", nargs="+", choices=DRIVERS, default=DRIVERS)
    parser.add_argument("--seconds", type=float, default=60)
    arguments = parser.parse_args()
    columns = ["driver", "seconds", "requests", "errors", "acknowledged / stored"]
    columns += ["server connections", "prepared statements per server connection (min-max)"]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    passed = True
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as scratch:
        for driver in arguments.drivers:
            project = prepare(Path(scratch) / f"project-{driver}", db_driver=driver)
            load = measure(driver, Path(scratch), arguments.seconds, project)
            held = load.prepared
            passed = passed and load.result.passed
            rows.append(
                f"| {driver} | {arguments.seconds:g} | {load.result.requests()} "
                f"| {dict(load.result.errors()) or 'none'} "
                f"| {load.result.acknowledged} / {load.result.stored} | {len(held)} "
                f"| {min(held, default=0)}-{max(held, default=0)} |"
            )
            print(f"{driver}: {'pass' if load.result.passed else 'FAIL'}", file=sys.stderr)
    print("\n".join(rows))
    return 0 if passed else 1


if __name__ == "__main__":
    os.environ.setdefault("COPIER_SETTINGS_PATH", str(ROOT / "tests" / "copier-settings.yml"))
    sys.exit(main())
