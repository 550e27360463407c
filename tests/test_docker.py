"""The default project's image and compose stack, built and run for real on Docker, per driver.

Each driver's image is built once per run (both at once) and both stacks run side by side, each
under its own compose project name, on free loopback ports, with the `WEB_CONCURRENCY=2` a team
would set. Where `docker compose` (v2) exists the stacks run under it. Where it does not (these
machines), `PlainDockerStack` runs the services *as compose.yaml declares them* with plain
`docker` commands: it reads compose.yaml with the test's override on top (merged as compose
merges), interpolates variables as compose does, and translates image, build, command,
environment, ports, volumes, healthcheck, depends_on conditions, stop_grace_period and the default
network into `docker network/volume/run`, waiting for each condition before starting a
dependant. A service key it does not know fails the run, so compose.yaml cannot grow a setting
this test silently ignores; `develop` (used by `docker compose watch` only) is the one it skips.

The override adds an init script to db that sleeps SLOW_INIT seconds, the first start on a new
volume that once made migrate fail with ConnectionRefusedError, and shortens healthcheck
intervals. Docker missing fails these tests: a skipped Docker test is not a pass. Timings are
printed (`pytest -s`), never asserted.
"""

import concurrent.futures
import http.client
import json
import os
import re
import shlex
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

from harness.answers import DRIVERS
from harness.commands import run
from harness.render import render
from harness.service import EVENT_LOOP, KEEP_ALIVE_SECONDS, free_port

SLOW_INIT = 30  # seconds the init script sleeps: the race the db healthcheck must win
DEADLINE = 240  # seconds any one wait may take before the test fails
UVICORN_DEFAULT_KEEP_ALIVE = 5  # seconds
DATABASE = "orders_service"  # the default project's database
SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "environment",
    "ports",
    "volumes",
    "healthcheck",
    "depends_on",
    "stop_grace_period",
}
IGNORED_KEYS = {"develop"}  # `docker compose watch` only
SLOW_INIT_SCRIPT = f"""\
echo "slow init: sleeping"
sleep {SLOW_INIT}
echo "slow init: done"
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


pytestmark = pytest.mark.xdist_group("docker")


def docker(
    *arguments: str, returncode: int | None = 0, timeout: float = DEADLINE, **env: str
) -> str:
    """A docker command; `env` adds variables to its environment (`docker run --env NAME`
    takes the value from there, so secrets stay out of the command line)."""
    environment = {**os.environ, **env} if env else None
    result = run(
        "docker",
        *arguments,
        cwd=Path.cwd(),
        returncode=returncode,
        timeout=timeout,
        env=environment,
    )
    return result.stdout.strip()


def seconds(duration: str | int) -> float:
    """A compose duration ("1m30s", "500ms", "15s") in seconds."""
    if isinstance(duration, int):
        return duration
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(amount) * unit[name] for amount, name in parts)


# ─── compose.yaml, read as compose reads it ─────────────────────────────────────────────────
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_]\w*))"
)


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, applied to every string of the parsed file."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        current = variables.get(name)
        operator = match["operator"] or ""
        missing = current is None or (operator.startswith(":") and current == "")
        if operator.endswith("-"):
            return match["argument"] if missing else str(current)
        if operator.endswith("?"):
            assert not missing, f"compose would refuse to start: {match['argument']}"
        return current or ""

    return VARIABLE.sub(substitute, value)


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge of a later file onto an earlier one: mappings merge key by key, ports
    and volumes add up, any other value is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if key in {"ports", "volumes"} and isinstance(base, list):
        return base + [item for item in override if item not in base]
    return override


def load_compose(files: list[Path], variables: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in files:
        config = merge(config, yaml.safe_load(path.read_text()))
    return interpolate(config, variables)


# ─── Running a compose project ──────────────────────────────────────────────────────────────
@dataclass
class Stack:
    """One compose project: compose.yaml plus the test override, in `directory`."""

    directory: Path
    name: str
    variables: dict[str, str]
    files: list[Path]

    @property
    def config(self) -> dict[str, Any]:
        return load_compose(self.files, self.variables)

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.variables}

    def start(self, *services: str) -> None:
        raise NotImplementedError

    def container(self, service: str) -> str:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def healthcheck_command(self, service: str) -> list[str]:
        test = self.config["services"][service]["healthcheck"]["test"]
        kind, *command = test
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
        code = docker("wait", self.container(service))
        return int(code)

    def logs(self, service: str) -> str:
        result = run("docker", "logs", self.container(service), cwd=self.directory, returncode=None)
        return result.stdout + result.stderr


class ComposeStack(Stack):
    """Run by Docker Compose v2 itself."""

    def compose(self, *arguments: str) -> str:
        files = [argument for path in self.files for argument in ("-f", str(path))]
        command = ["docker", "compose", "-p", self.name, *files, *arguments]
        result = run(*command, cwd=self.directory, env=self.env(), timeout=DEADLINE + 60)
        return result.stdout.strip()

    def start(self, *services: str) -> None:
        if services == ("db",):
            self.compose("up", "--detach", "--no-build", "db")
        else:
            self.compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", str(DEADLINE))

    def container(self, service: str) -> str:
        return self.compose("ps", "--all", "--quiet", service)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "1")


class PlainDockerStack(Stack):
    """Compose's behaviour for the keys compose.yaml uses, with plain docker commands."""

    created = False

    def resource(self, name: str) -> str:
        return f"{self.name}_{name}"

    def container(self, service: str) -> str:
        return f"{self.name}-{service}-1"

    def start(self, *services: str) -> None:
        config = self.config
        declared = config["services"]
        if not self.created:
            docker("network", "create", self.resource("default"))
            for volume in config.get("volumes") or {}:
                docker("volume", "create", self.resource(volume))
            self.created = True
        for service in self.ordered(declared, services or tuple(declared)):
            if not docker("ps", "-aq", "--filter", f"name=^{self.container(service)}$"):
                self.run_service(service, declared[service])
        if not services:  # the whole stack: as `up --wait`, until every healthcheck passes
            for service, spec in declared.items():
                if "healthcheck" in spec:
                    self.wait_healthy(service)

    def ordered(self, declared: dict[str, Any], wanted: tuple[str, ...]) -> list[str]:
        order: list[str] = []

        def visit(service: str) -> None:
            for dependency in declared[service].get("depends_on") or {}:
                visit(dependency)
            if service not in order:
                order.append(service)

        for service in wanted:
            visit(service)
        return order

    def run_service(self, service: str, spec: dict[str, Any]) -> None:
        unknown = set(spec) - SERVICE_KEYS - IGNORED_KEYS
        assert not unknown, f"{service}: translate {sorted(unknown)} in PlainDockerStack"
        for dependency, condition in (spec.get("depends_on") or {}).items():
            self.satisfy(dependency, condition["condition"])
        if "build" in spec:
            assert spec["build"] == ".", "the image is built from the project directory"
        command = ["run", "--detach", "--name", self.container(service)]
        command += ["--network", self.resource("default"), "--network-alias", service]
        environment = {key: str(value) for key, value in (spec.get("environment") or {}).items()}
        for key in environment:
            command += ["--env", key]  # the value comes from docker's own environment: not in argv
        for port in spec.get("ports") or []:
            command += ["--publish", port]
        for volume in spec.get("volumes") or []:
            source, target = volume.split(":", 1)
            if source.startswith((".", "/")):  # a bind mount, relative to the project
                source = str((self.directory / source).resolve())
            else:  # a named volume of this project
                source = self.resource(source)
            command += ["--volume", f"{source}:{target}"]
        if "stop_grace_period" in spec:
            command += ["--stop-timeout", str(int(seconds(spec["stop_grace_period"])))]
        if health := spec.get("healthcheck"):
            kind, *test = health["test"]
            command += ["--health-cmd", test[0] if kind == "CMD-SHELL" else shlex.join(test)]
            for option in ("interval", "timeout", "start_period"):
                if option in health:
                    command += [f"--health-{option.replace('_', '-')}", str(health[option])]
            if "retries" in health:
                command += ["--health-retries", str(health["retries"])]
        command.append(spec["image"])
        if "command" in spec:
            declared = spec["command"]
            command += declared if isinstance(declared, list) else shlex.split(declared)
        docker(*command, **environment)

    def satisfy(self, service: str, condition: str) -> None:
        if condition == "service_healthy":
            self.wait_healthy(service)
        elif condition == "service_completed_successfully":
            code = self.wait_exited(service)
            assert code == 0, f"{service} exited {code}:\n{self.logs(service)}"
        else:
            assert condition == "service_started", condition

    def down(self) -> None:
        names = [self.container(service) for service in self.config["services"]]
        docker("rm", "--force", "--volumes", *names, returncode=None)
        docker("network", "rm", self.resource("default"), returncode=None)
        for volume in self.config.get("volumes") or {}:
            docker("volume", "rm", self.resource(volume), returncode=None)


def compose_v2_available() -> bool:
    return run("docker", "compose", "version", cwd=Path.cwd(), returncode=None).returncode == 0


# ─── Fixtures: images built once, both stacks up at once ─────────────────────────────────────
@dataclass
class Deployment:
    driver: str
    project: Path
    image: str
    stack: Stack
    build_seconds: float = 0
    image_megabytes: float = 0
    checks: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Docker must answer: these tests fail, never skip, without it (.ci/run starts it)."""
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"Docker is not available:\n{result.stderr}"


def render_project(template_source: Path, directory: Path, driver: str) -> list[Path]:
    """The project's compose.yaml and the test's override, kept outside the build context
    (so the image is the project's own, and cached between runs)."""
    project = render(template_source, directory / "project", db_driver=driver)
    slow_init = directory / "slow-init.sh"
    slow_init.write_text(SLOW_INIT_SCRIPT)
    slow_init.chmod(0o644)
    override = directory / "compose.test.yaml"
    override.write_text(yaml.safe_dump(override_for(slow_init)))
    return [project / "compose.yaml", override]


def build(deployment: Deployment) -> None:
    started = time.monotonic()
    docker("build", "--quiet", "--tag", deployment.image, str(deployment.project), timeout=1800)
    deployment.build_seconds = time.monotonic() - started
    size = docker("image", "inspect", "--format", "{{.Size}}", deployment.image)
    deployment.image_megabytes = int(size) / 1e6


@pytest.fixture(scope="session")
def deployments(
    docker_engine: None, template_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Deployment]]:
    """Both drivers' images, built at once; stacks not yet started."""
    run_id = uuid.uuid4().hex[:8]
    stack_class = ComposeStack if compose_v2_available() else PlainDockerStack
    deployments: dict[str, Deployment] = {}
    for driver in DRIVERS:
        files = render_project(template_source, tmp_path_factory.mktemp(driver), driver)
        project = files[0].parent
        image = f"async-pg-template-test/{driver}:{run_id}"
        variables = {
            "POSTGRES_PASSWORD": f"pw-{uuid.uuid4().hex[:16]}",
            "POSTGRES_PORT": str(free_port()),
            "API_PORT": str(free_port()),
            "API_IMAGE": image,
            "WEB_CONCURRENCY": "2",
        }
        stack = stack_class(project, f"apt-{driver}-{run_id}", variables, files)
        deployments[driver] = Deployment(driver, project, image, stack)
    dangling_before = set(docker("images", "--quiet", "--filter", "dangling=true").split())
    try:
        with concurrent.futures.ThreadPoolExecutor(len(DRIVERS)) as pool:
            list(pool.map(build, deployments.values()))
        for deployment in deployments.values():
            print(
                f"\n[docker] {deployment.driver}: image {deployment.image_megabytes:.0f} MB, "
                f"built in {deployment.build_seconds:.0f} s ({stack_class.__name__})"
            )
        yield deployments
    finally:
        for deployment in deployments.values():
            print(f"\n[docker] {deployment.driver}: {deployment.checks}")
            deployment.stack.down()
            docker("image", "rm", "--force", deployment.image, returncode=None)
        # The build stages' images, left untagged by the build: ours too.
        dangling = set(docker("images", "--quiet", "--filter", "dangling=true").split())
        if leftovers := sorted(dangling - dangling_before):
            docker("image", "rm", "--force", *leftovers, returncode=None)


def timed(deployment: Deployment, check: str, started: float) -> None:
    deployment.checks[check] = time.monotonic() - started
    print(f"\n[docker] {deployment.driver}: {check}: {deployment.checks[check]:.1f} s")


def first_start(deployment: Deployment) -> None:
    """db alone until its init script runs, probed there; then the whole stack."""
    stack = deployment.stack
    started = time.monotonic()
    stack.start("db")
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
    stack.start()
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


def psql(deployment: Deployment, sql: str) -> str:
    """A query inside the db container (its socket: no password)."""
    container = deployment.stack.container("db")
    return docker("exec", container, "psql", "-U", "postgres", "-d", DATABASE, "-Atqc", sql)


# ─── The checks, in the order a first deployment meets them ─────────────────────────────────
def test_image_has_no_uv_runs_as_non_root_with_bytecode(deployment: Deployment) -> None:
    script = (
        "import os, shutil, importlib.util, app.main, sqlalchemy;"
        "print(os.getuid(), shutil.which('uv'), os.path.exists('/root/.cache/uv'),"
        "os.path.exists(importlib.util.cache_from_source(app.main.__file__)),"
        "os.path.exists(importlib.util.cache_from_source(sqlalchemy.__file__)))"
    )
    output = docker("run", "--rm", deployment.image, "python", "-c", script)

    uid, uv, uv_cache, app_bytecode, venv_bytecode = output.split()
    assert uid != "0"
    assert (uv, uv_cache) == ("None", "False")
    assert (app_bytecode, venv_bytecode) == ("True", "True")


def test_image_serves_on_the_event_loop_the_fault_harness_measures(deployment: Deployment) -> None:
    command = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Cmd}}", deployment.image)
    )

    assert command[command.index("--loop") + 1] == EVENT_LOOP


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


def test_dev_override_mounts_the_code_read_only_and_reloads(
    template_source: Path, tmp_path: Path
) -> None:
    """compose.dev.yaml on top of compose.yaml, merged as compose merges (read, not run)."""
    project = render(template_source, tmp_path / "project")
    files = [project / "compose.yaml", project / "compose.dev.yaml"]

    api = load_compose(files, {"POSTGRES_PASSWORD": "dev"})["services"]["api"]

    assert "--reload" in api["command"]
    assert "./app:/app/app:ro" in api["volumes"]
    assert api["environment"]["WEB_CONCURRENCY"] == "1"
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://postgres:dev@db")
