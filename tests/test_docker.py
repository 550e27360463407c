"""The default project's image and compose stack, built and run for real on Docker with Compose
v2 (`docker compose`), per driver.

The images are tests/docker_images.py's (each built once per run, shared with
tests/test_kubernetes.py). Both stacks run side by side, each under its own compose project name,
on free loopback ports, with the `WEB_CONCURRENCY=2` a team would set. The test's override adds
an init script to db that sleeps SLOW_INIT seconds, the first start on a new volume that once
made migrate fail with ConnectionRefusedError, and shortens healthcheck intervals. Docker or
Compose missing fails these tests: a skipped Docker test is not a pass. Timings are printed
(`pytest -s`), never asserted.
"""

import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.answers import DRIVERS, machine_python
from harness.commands import run
from harness.service import EVENT_LOOP, KEEP_ALIVE_SECONDS, free_port
from tests.docker_images import DEADLINE, Image, docker

SLOW_INIT = 30  # seconds the init script sleeps: the race the db healthcheck must win
UVICORN_DEFAULT_KEEP_ALIVE = 5  # seconds
DATABASE = "orders_service"  # the default project's database
SLOW_INIT_SCRIPT = f"""\
echo "slow init: sleeping"
sleep {SLOW_INIT}
echo "slow init: done"
"""
# Added to a health/ route module by the dev-loop test: a route uvicorn serves once reloaded.
RELOADED_ROUTE = """

@router.get("/reloaded")
async def reloaded() -> Health:
    return Health(status="ok")
"""


def override_for(slow_init: Path) -> dict[str, Any]:
    return {
        "services": {
            "db": {
                "volumes": [f"{slow_init}:/docker-entrypoint-initdb.d/slow-init.sh:ro"],
                "healthcheck": {"interval": "1s"},
            },
            "api": {"healthcheck": {"interval": "1s"}},
        }
    }


# The api pointed at a database that does not answer: never ready, so never healthy.
UNREACHABLE_DATABASE = {
    "services": {
        "api": {
            "environment": {"DATABASE_URL": "postgresql://postgres:x@db-gone.invalid:5432/none"},
            "healthcheck": {"interval": "1s", "retries": 2, "start_period": "0s"},
        }
    }
}

pytestmark = pytest.mark.xdist_group("docker")


# ─── Running a compose project ──────────────────────────────────────────────────────────────
@dataclass
class Stack:
    """One compose project: compose.yaml plus the test override, run by `docker compose`."""

    directory: Path
    name: str
    variables: dict[str, str]
    files: list[Path]

    def compose(
        self, *arguments: str, files: list[Path] | None = None, returncode: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        listed = [argument for path in files or self.files for argument in ("-f", str(path))]
        command = ["docker", "compose", "-p", self.name, *listed, *arguments]
        env = {**os.environ, **self.variables}
        return run(*command, cwd=self.directory, env=env, returncode=returncode,
                   timeout=DEADLINE + 60)  # fmt: skip

    def up(self, *services: str, files: list[Path] | None = None, returncode: int | None = 0
           ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """`up --wait`: returns once every service is running and healthy (or exited 0)."""
        wait = ["--wait", "--wait-timeout", str(DEADLINE)]
        return self.compose("up", "--detach", "--no-build", *wait, *services, files=files,
                            returncode=returncode)  # fmt: skip

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.compose("config", "--format", "json").stdout)

    def container(self, service: str) -> str:
        return self.compose("ps", "--all", "--quiet", service).stdout.strip()

    def down(self, *options: str) -> None:
        self.compose("down", "--remove-orphans", "--timeout", "1", *options)

    def healthcheck_command(self, service: str) -> list[str]:
        kind, *command = self.config["services"][service]["healthcheck"]["test"]
        return ["sh", "-c", command[0]] if kind == "CMD-SHELL" else command

    def inspect(self, service: str) -> dict[str, Any]:
        return json.loads(docker("inspect", self.container(service)))[0]

    def wait_healthy(self, service: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while (state := self.inspect(service)["State"])["Health"]["Status"] != "healthy":
            assert state["Running"], f"{service} exited:\n{self.logs(service)}"
            assert state["Health"]["Status"] != "unhealthy", f"{service} unhealthy"
            assert time.monotonic() < deadline, f"{service} not healthy in {DEADLINE} s"
            time.sleep(0.25)

    def wait_exited(self, service: str) -> int:
        return int(docker("wait", self.container(service)))

    def logs(self, service: str) -> str:
        result = run("docker", "logs", self.container(service), cwd=self.directory, returncode=None)
        return result.stdout + result.stderr


# ─── Fixtures: both stacks up at once ───────────────────────────────────────────────────────
@dataclass
class Deployment:
    driver: str
    project: Path
    image: str
    stack: Stack
    checks: dict[str, Any] = field(default_factory=dict)


def compose_files(project: Path, directory: Path) -> list[Path]:
    """The project's compose.yaml and the test's override, kept outside the build context."""
    slow_init = directory / "slow-init.sh"
    slow_init.write_text(SLOW_INIT_SCRIPT)
    slow_init.chmod(0o644)
    override = directory / "compose.test.yaml"
    override.write_text(yaml.safe_dump(override_for(slow_init)))
    return [project / "compose.yaml", override]


@pytest.fixture(scope="session")
def deployments(
    images: dict[str, Image], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Deployment]]:
    """Both drivers' stacks, not yet started; taken down with their volumes afterwards."""
    version = docker("compose", "version", "--short", returncode=None)
    assert version.split(".")[0] == "2", f"Docker Compose v2 is needed, not {version!r}"
    run_id = uuid.uuid4().hex[:8]
    deployments: dict[str, Deployment] = {}
    for driver in DRIVERS:
        image = images[driver]
        files = compose_files(image.project, tmp_path_factory.mktemp(f"compose-{driver}"))
        variables = {
            "POSTGRES_PASSWORD": f"pw-{uuid.uuid4().hex[:16]}",
            "POSTGRES_PORT": str(free_port()),
            "API_PORT": str(free_port()),
            "API_IMAGE": image.tag,
            "WEB_CONCURRENCY": "2",
        }
        stack = Stack(image.project, f"apt-{driver}-{run_id}", variables, files)
        deployments[driver] = Deployment(driver, image.project, image.tag, stack)
    try:
        yield deployments
    finally:
        for deployment in deployments.values():
            print(f"\n[docker] {deployment.driver}: {deployment.checks}")
            deployment.stack.down("--volumes")


def timed(deployment: Deployment, check: str, started: float) -> None:
    deployment.checks[check] = time.monotonic() - started
    print(f"\n[docker] {deployment.driver}: {check}: {deployment.checks[check]:.1f} s")


def first_start(deployment: Deployment) -> None:
    """db alone until its init script runs, probed there; then the whole stack (`up --wait`),
    and the api's readiness the moment that returns."""
    stack = deployment.stack
    started = time.monotonic()
    stack.compose("up", "--detach", "--no-build", "db")
    deadline = time.monotonic() + DEADLINE
    while "slow init: sleeping" not in stack.logs("db"):
        assert time.monotonic() < deadline, stack.logs("db")
        time.sleep(0.25)
    probe = run(
        "docker",
        "exec",
        stack.container("db"),
        *stack.healthcheck_command("db"),
        cwd=stack.directory,
        returncode=None,
    )
    socket_probe = run(
        "docker",
        "exec",
        stack.container("db"),
        "pg_isready",
        "-d",
        DATABASE,
        cwd=stack.directory,
        returncode=None,
    )
    deployment.checks["during init"] = {
        "healthcheck": probe.returncode,
        "health status": stack.inspect("db")["State"]["Health"]["Status"],
        "pg_isready over the socket": socket_probe.returncode,
    }
    stack.wait_healthy("db")
    deployment.checks["init done before healthy"] = "slow init: done" in stack.logs("db")
    timed(deployment, "db healthy (first start, slow init)", started)
    started = time.monotonic()
    stack.up()
    deployment.checks["ready when up --wait returned"] = api(deployment, "GET", "/health/ready")[0]
    deployment.checks["api health when up --wait returned"] = stack.inspect("api")["State"][
        "Health"
    ]["Status"]
    timed(deployment, "migrate exited 0, api healthy (up --wait)", started)


@pytest.fixture(scope="session")
def stacks(deployments: dict[str, Deployment]) -> dict[str, Deployment]:
    """Both stacks brought up at once, from new volumes with the slow init script."""
    with concurrent.futures.ThreadPoolExecutor(len(deployments)) as pool:
        list(pool.map(first_start, deployments.values()))
    return deployments


@pytest.fixture(params=DRIVERS)
def deployment(request: pytest.FixtureRequest, stacks: dict[str, Deployment]) -> Deployment:
    return stacks[request.param]


# ─── HTTP through the published port ────────────────────────────────────────────────────────
def api(deployment: Deployment, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    port = deployment.stack.variables["API_PORT"]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, ConnectionError) as error:
        return 0, str(error)


def wait_for_status(deployment: Deployment, path: str, expected: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while (answer := api(deployment, "GET", path))[0] != expected:
        assert time.monotonic() < deadline, f"{path} still answers {answer}, not {expected}"
        time.sleep(0.25)


def ready_answer_shared_seconds(project: Path) -> float:
    """READY_RESULT_SECONDS of the project's app/api/health.py."""
    source = (project / "app" / "api" / "health.py").read_text()
    found = re.search(r"^READY_RESULT_SECONDS = ([0-9.]+)$", source, re.MULTILINE)
    assert found, "app/api/health.py no longer sets READY_RESULT_SECONDS"
    return float(found[1])


def psql(deployment: Deployment, sql: str) -> str:
    """A query inside the db container (its socket: no password)."""
    container = deployment.stack.container("db")
    return docker("exec", container, "psql", "-U", "postgres", "-d", DATABASE, "-Atqc", sql)


# ─── The checks, in the order a first deployment meets them ─────────────────────────────────
def test_image_has_no_uv_runs_as_non_root_with_bytecode(deployment: Deployment) -> None:
    script = (
        "import os, platform, shutil, importlib.util, app.main, sqlalchemy;"
        "print(platform.python_version(), os.getuid(), shutil.which('uv'),"
        "os.path.exists('/root/.cache/uv'),"
        "os.path.exists(importlib.util.cache_from_source(app.main.__file__)),"
        "os.path.exists(importlib.util.cache_from_source(sqlalchemy.__file__)))"
    )
    output = docker("run", "--rm", deployment.image, "python", "-c", script)

    python, uid, uv, uv_cache, app_bytecode, venv_bytecode = output.split()
    # Rendered projects answer the machine's python_version (harness.answers.BASE_ANSWERS):
    # this image is that version's; tests/test_pythons.py builds the other versions' images.
    assert python.startswith(f"{machine_python()}."), python
    assert uid != "0"
    assert (uv, uv_cache) == ("None", "False")
    assert (app_bytecode, venv_bytecode) == ("True", "True")


def test_image_serves_on_the_event_loop_the_fault_harness_measures(deployment: Deployment) -> None:
    command = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Cmd}}", deployment.image)
    )

    assert command[command.index("--loop") + 1] == EVENT_LOOP


# Counts the processes of the container that have uvloop's library mapped: those serving on it.
ON_UVLOOP = (
    "import glob; print(sum('uvloop' in open(maps).read()"
    " for maps in glob.glob('/proc/[0-9]*/maps')))"
)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_image_serves_on_the_loop_web_concurrency_asks_for(
    deployment: Deployment, workers: int
) -> None:
    """asyncio's loop for one process, uvloop in each of several workers (app/loop.py). No
    database is needed: the app connects on the first request."""
    name = f"loop-{workers}-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "-e", f"WEB_CONCURRENCY={workers}", deployment.image)
    try:
        deadline = time.monotonic() + DEADLINE
        logs = ""
        while logs.count("Application startup complete") < workers:  # uvicorn logs to stderr
            assert time.monotonic() < deadline, logs
            time.sleep(0.5)
            logs = run("docker", "logs", name, cwd=Path.cwd()).stderr
        on_uvloop = int(docker("exec", name, "python", "-c", ON_UVLOOP))
    finally:
        docker("rm", "-f", name)

    assert on_uvloop == (0 if workers == 1 else workers)


def test_db_is_healthy_only_once_the_application_database_accepts_tcp(
    deployment: Deployment,
) -> None:
    during_init = deployment.checks["during init"]
    print(f"\n[docker] {deployment.driver}: while the init script ran: {during_init}")

    assert during_init["healthcheck"] != 0
    assert during_init["health status"] == "starting"
    assert deployment.checks["init done before healthy"]


def test_migrate_waits_for_a_slow_first_start_and_succeeds(deployment: Deployment) -> None:
    stack = deployment.stack

    assert stack.wait_exited("migrate") == 0
    assert "Running upgrade" in stack.logs("migrate")
    assert stack.inspect("migrate")["State"]["ExitCode"] == 0


def test_api_is_ready_with_the_workers_web_concurrency_asks_for(deployment: Deployment) -> None:
    started = time.monotonic()
    wait_for_status(deployment, "/health/ready", 200)
    timed(deployment, "api ready", started)

    assert deployment.stack.logs("api").count("Started server process") == 2


def test_image_keeps_idle_connections_longer_than_the_proxies_in_front(
    deployment: Deployment,
) -> None:
    environment = dict(
        entry.split("=", 1)
        for entry in json.loads(
            docker("image", "inspect", "--format", "{{json .Config.Env}}", deployment.image)
        )
    )
    assert int(environment["UVICORN_TIMEOUT_KEEP_ALIVE"]) == KEEP_ALIVE_SECONDS > 60
    wait_for_status(deployment, "/health/live", 200)
    connection = http.client.HTTPConnection(
        "127.0.0.1", int(deployment.stack.variables["API_PORT"]), timeout=30
    )
    try:
        connection.request("GET", "/health/live")
        assert connection.getresponse().read()
        socket = connection.sock
        time.sleep(UVICORN_DEFAULT_KEEP_ALIVE + 1)  # idle past uvicorn's own time-out

        connection.request("GET", "/health/live")
        answer = connection.getresponse()  # http.client.RemoteDisconnected had it closed

        assert answer.status == 200
        assert connection.sock is socket
    finally:
        connection.close()


def test_password_reaches_only_the_services_that_use_it(deployment: Deployment) -> None:
    password = deployment.stack.variables["POSTGRES_PASSWORD"]
    for service, allowed in {
        "db": "POSTGRES_PASSWORD",
        "migrate": "DATABASE_URL",
        "api": "DATABASE_URL",
    }.items():
        environment = deployment.stack.inspect(service)["Config"]["Env"]
        holding = [entry.split("=", 1)[0] for entry in environment if password in entry]
        assert holding == [allowed], service


def test_a_write_is_read_back_through_the_api(deployment: Deployment) -> None:
    started = time.monotonic()
    email = f"{deployment.driver}@example.com"
    status, created = api(deployment, "POST", "/users", {"email": email, "name": "Docker"})
    assert status == 201, created

    status, read = api(deployment, "GET", f"/users/{created['id']}")
    timed(deployment, "write and read", started)

    assert status == 200
    assert read["email"] == email


def test_db_stopped_makes_api_unready_and_started_again_ready_with_data(
    deployment: Deployment,
) -> None:
    stack = deployment.stack
    email = f"before-stop-{deployment.driver}@example.com"
    status, created = api(deployment, "POST", "/users", {"email": email, "name": "Before stop"})
    assert status == 201, created

    started = time.monotonic()
    docker("stop", stack.container("db"))
    wait_for_status(deployment, "/health/ready", 503)
    timed(deployment, "db stopped: ready answers 503", started)

    started = time.monotonic()
    docker("start", stack.container("db"))
    stack.wait_healthy("db")
    # Each worker shares a readiness answer for a while (app/api/health.py), so the other worker
    # may still give the 200 of a check made before the stop: only a check begun after db is
    # healthy again says the api is ready.
    time.sleep(ready_answer_shared_seconds(deployment.project))
    wait_for_status(deployment, "/health/ready", 200)
    timed(deployment, "db started: ready answers 200", started)

    status, read = api(deployment, "GET", f"/users/{created['id']}")
    assert status == 200, read
    assert read["email"] == email


def test_docker_stop_lets_a_request_in_flight_finish_and_exits_0(
    deployment: Deployment,
) -> None:
    stack = deployment.stack
    # A table lock held for a few seconds keeps the next write waiting inside the api.
    holder = subprocess.Popen(
        [
            "docker",
            "exec",
            stack.container("db"),
            "psql",
            "-U",
            "postgres",
            "-d",
            DATABASE,
            "-c",
            "BEGIN; LOCK TABLE users; SELECT pg_sleep(4); COMMIT;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'users'::regclass AND granted"
        deadline = time.monotonic() + DEADLINE
        while psql(deployment, waiting) == "0":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        answers: list[tuple[int, Any]] = []
        email = f"in-flight-{deployment.driver}@example.com"
        request = threading.Thread(
            target=lambda: answers.append(
                api(deployment, "POST", "/users", {"email": email, "name": "In flight"})
            )
        )
        request.start()
        blocked = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        while psql(deployment, blocked) == "0":
            assert time.monotonic() < deadline
            time.sleep(0.1)

        started = time.monotonic()
        docker("stop", stack.container("api"))  # its own stop timeout: stop_grace_period
        timed(deployment, "docker stop with a request in flight", started)
        request.join(DEADLINE)
    finally:
        holder.wait(DEADLINE)

    assert [status for status, _ in answers] == [201], answers
    assert stack.inspect("api")["State"]["ExitCode"] == 0, stack.logs("api")
    assert psql(deployment, f"SELECT count(*) FROM users WHERE email = '{email}'") == "1"


def test_up_wait_returned_only_once_the_api_was_healthy(deployment: Deployment) -> None:
    assert deployment.checks["api health when up --wait returned"] == "healthy"
    assert deployment.checks["ready when up --wait returned"] == 200


def test_up_wait_fails_while_the_api_cannot_become_ready(
    deployment: Deployment, tmp_path: Path
) -> None:
    stack = deployment.stack
    unreachable = tmp_path / "compose.unreachable.yaml"
    unreachable.write_text(yaml.safe_dump(UNREACHABLE_DATABASE))
    started = time.monotonic()

    failed = stack.up("api", files=[*stack.files, unreachable], returncode=None)
    timed(deployment, "up --wait with an unreachable database: failed", started)

    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert stack.inspect("api")["State"]["Health"]["Status"] == "unhealthy"
    started = time.monotonic()
    stack.up()  # as declared again: healthy
    timed(deployment, "up --wait as declared again", started)
    assert stack.inspect("api")["State"]["Health"]["Status"] == "healthy"


def test_down_then_up_keeps_the_data(deployment: Deployment) -> None:
    stack = deployment.stack
    email = f"before-down-{deployment.driver}@example.com"
    status, created = api(deployment, "POST", "/users", {"email": email, "name": "Before down"})
    assert status == 201, created
    started = time.monotonic()

    stack.down()
    assert not stack.container("db")
    stack.up()
    timed(deployment, "down, then up --wait", started)

    status, read = api(deployment, "GET", f"/users/{created['id']}")
    assert status == 200, read
    assert read["email"] == email


def test_dev_override_reloads_the_api_on_a_code_change(deployment: Deployment) -> None:
    """compose.dev.yaml on top: the working tree's app/ mounted read-only, uvicorn reloading."""
    stack = deployment.stack
    files = [*stack.files, deployment.project / "compose.dev.yaml"]
    stack.up(files=files)
    command = stack.inspect("api")["Config"]["Cmd"]
    assert "--reload" in command
    assert api(deployment, "GET", "/health/reloaded")[0] == 404
    module = deployment.project / "app" / "api" / "health.py"
    original = module.read_text()
    started = time.monotonic()
    try:
        module.write_text(original + RELOADED_ROUTE)
        wait_for_status(deployment, "/health/reloaded", 200)
        timed(deployment, "dev: code change to the new route served", started)
    finally:
        module.write_text(original)
    mounts = {mount["Destination"]: mount["RW"] for mount in stack.inspect("api")["Mounts"]}
    assert mounts["/app/app"] is False
