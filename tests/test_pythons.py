"""Every offered python_version runs for real, where a version mismatch would show.

Each version with a base image (python:X.Y-slim, pulled or a Debian stand-in: .ci/run) runs the
default project inside that image, from its own uv.lock (`uv sync --locked`): ruff, ruff format,
mypy --strict and the generated suite; and the project's image builds on that base and its
container becomes ready. The default version does so with both drivers. 3.12 has no image (no
Debian suite packages it): it runs on an interpreter of the machine where there is one
(tests/test_combinations.py). The machine's own version runs the 16 combinations on the machine
and its image is tests/test_docker.py's, so only its suite runs here. A project that answered
3.11 updates to this release. Each version and driver is an xdist group: they run in parallel,
and each image is built once per run. Timings print with `pytest -s`.
"""

import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import copier
import pytest
import yaml
from packaging.requirements import Requirement
from uv import find_uv_bin

from harness.answers import COPIER_YML, DRIVERS, choices, machine_python
from harness.commands import ProjectRunner, run
from harness.paths import ROOT
from harness.pythons import uv_in_image
from harness.releases import adopt_optional_revisions, commit_all, git, leftovers, update
from harness.render import TEMPLATE_FILES, copy_working_tree, render
from harness.service import free_port
from tests.test_combinations import SUITE_RESULT

VERSIONS = choices("python_version")
DEFAULT_VERSION = COPIER_YML["python_version"]["default"]
DEFAULT_DRIVER = COPIER_YML["db_driver"]["default"]
POSTGRES_IMAGE = f"postgres:{COPIER_YML['postgres_version']['default']}"
WITHOUT_IMAGE = ["3.12"]  # no Debian suite packages it, so it has no stand-in
IN_IMAGE = [
    (version, driver)
    for version in VERSIONS
    if version not in WITHOUT_IMAGE
    for driver in (DRIVERS if version == DEFAULT_VERSION else [DEFAULT_DRIVER])
]
BUILT = [(version, driver) for version, driver in IN_IMAGE if version != machine_python()]
# Release 0.2.0, the last offering 3.11 to 3.13 with 3.11 the default.
PREVIOUS_RELEASE = "56435d894e4c26efad9c15c6c50348f820faafef"
DEADLINE = 240  # seconds any one wait may take
IN_IMAGE_TIMEOUT = 1800  # seconds for one command in an image (a first `uv sync` downloads)
PASSWORD = "pythons-test-password"


def embedded_server_versions() -> list[str]:
    """The versions the project's dev group installs the embedded test server on (read from
    template/pyproject.toml.jinja: its marker leaves out versions it has no wheel for)."""
    lines = (ROOT / "template" / "pyproject.toml.jinja").read_text().splitlines()
    (spec,) = [line.strip(' ",') for line in lines if line.strip().startswith('"pixeltable-')]
    marker = Requirement(spec).marker
    return [
        version
        for version in VERSIONS
        if marker is None
        or marker.evaluate({"python_version": version, "python_full_version": f"{version}.0"})
    ]


def by_version(pairs: list[tuple[str, str]]) -> list[object]:
    """Parameters with readable ids (py3.15-asyncpg), one xdist group each."""
    return [
        pytest.param(
            version,
            driver,
            id=f"py{version}-{driver}",
            marks=pytest.mark.xdist_group(f"py{version}-{driver}"),
        )
        for version, driver in pairs
    ]


def docker(*arguments: str, returncode: int | None = 0, timeout: float = DEADLINE) -> str:
    return run("docker", *arguments, cwd=ROOT, returncode=returncode, timeout=timeout).stdout


def in_image(
    version: str,
    project: Path,
    *arguments: str,
    returncode: int = 0,
    env: dict[str, str] | None = None,
    network: str | None = None,
) -> str:
    """`uv *arguments` in the project, inside its base image; what it printed."""
    command = uv_in_image(version, project, *arguments, env=env, network=network)
    result = run(*command, cwd=ROOT, returncode=returncode, timeout=IN_IMAGE_TIMEOUT)
    return result.stdout + result.stderr


def timed(label: str, started: float) -> None:
    print(f"\n[pythons] {label}: {time.monotonic() - started:.0f} s")


@dataclass(frozen=True)
class DatabaseServer:
    """The project's PostgreSQL image on a network of its own, reachable there as `db`."""

    network: str
    container: str

    def url(self, database: str, driver: str | None = None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres:{PASSWORD}@db:5432/{database}"


@pytest.fixture(scope="session")
def database_server() -> Iterator[DatabaseServer]:
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"Docker is not available:\n{result.stderr}"
    network = f"pythons-{uuid.uuid4().hex[:8]}"
    server = DatabaseServer(network, f"{network}-db")
    docker("network", "create", network)
    try:
        docker(
            *("run", "--detach", "--name", server.container, "--network", network),
            *("--network-alias", "db", "--env", f"POSTGRES_PASSWORD={PASSWORD}", POSTGRES_IMAGE),
        )
        # Over TCP, as compose.yaml's healthcheck: the init phase's server listens on the socket.
        probe = f"PGPASSWORD={PASSWORD} psql -h 127.0.0.1 -U postgres -Atqc 'select 1'"
        deadline = time.monotonic() + DEADLINE
        while docker("exec", server.container, "sh", "-c", probe, returncode=None).strip() != "1":
            assert time.monotonic() < deadline, docker("logs", server.container)
            time.sleep(0.5)
        yield server
    finally:
        docker("rm", "--force", "--volumes", server.container, returncode=None)
        docker("network", "rm", network, returncode=None)


@pytest.fixture(scope="session")
def synced(
    template_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], Path]:
    """The default project with this version and driver, its environment made inside its base
    image from its uv.lock (`uv sync --locked`); once per run."""
    projects: dict[tuple[str, str], Path] = {}

    def project(version: str, driver: str) -> Path:
        if (version, driver) not in projects:
            destination = tmp_path_factory.mktemp(f"py{version}-{driver}") / "project"
            render(template_source, destination, python_version=version, db_driver=driver)
            started = time.monotonic()
            in_image(version, destination, "sync", "--locked")
            timed(f"py{version}-{driver} uv sync --locked in its image", started)
            projects[version, driver] = destination
        return projects[version, driver]

    return project


@pytest.mark.parametrize("version", VERSIONS, ids=lambda version: f"py{version}")
def test_every_tool_follows_the_answer(template_source: Path, tmp_path: Path, version: str) -> None:
    """Beside tests/test_answers.py's requires-python, ruff target, build stage and CI."""
    project = render(template_source, tmp_path / "project", python_version=version)

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["tool"]["mypy"]["python_version"] == version
    stages = [line for line in (project / "Dockerfile").read_text().splitlines() if "FROM " in line]
    assert stages == [f"FROM python:{version}-slim AS build", f"FROM python:{version}-slim"]
    lock = tomllib.loads((project / "uv.lock").read_text())
    assert lock["requires-python"] == f">={version}"
    without_server = "no embedded server yet" in (project / "README.md").read_text()
    assert without_server == (version not in embedded_server_versions())


@pytest.mark.parametrize(("version", "driver"), by_version(IN_IMAGE))
def test_lint_format_and_types_are_clean_in_the_base_image(
    synced: Callable[[str, str], Path], version: str, driver: str
) -> None:
    project = synced(version, driver)
    started = time.monotonic()

    ran_on = in_image(
        version, project, "run", "--locked", "python", "-c", "import sys; print(sys.version)"
    )
    in_image(version, project, "run", "--locked", "ruff", "check", "--no-cache", ".")
    in_image(version, project, "run", "--locked", "ruff", "format", "--no-cache", "--check", ".")
    mypy_cache = {"MYPY_CACHE_DIR": f"/cache/mypy-py{version}-{driver}"}  # warm between runs
    typed = in_image(version, project, "run", "--locked", "mypy", "--strict", ".", env=mypy_cache)
    timed(f"py{version}-{driver} ruff, ruff format, mypy --strict in its image", started)

    assert ran_on.strip().startswith(f"{version}."), ran_on
    assert "Success: no issues found" in typed


@pytest.mark.parametrize(("version", "driver"), by_version(IN_IMAGE))
def test_the_generated_suite_passes_in_the_base_image(
    synced: Callable[[str, str], Path],
    database_server: DatabaseServer,
    version: str,
    driver: str,
) -> None:
    """With the embedded server; where the project has none (no wheel for that Python), the
    suite first refuses in two lines, saying what to set, then passes on TEST_DATABASE_URL."""
    project = synced(version, driver)
    pytest_command = ["run", "--locked", "pytest", "-q", "-p", "no:cacheprovider"]
    server: dict[str, str] = {}
    if version not in embedded_server_versions():
        refused = in_image(version, project, *pytest_command, returncode=3)
        assert f"No embedded PostgreSQL on Python {version}" in refused, refused
        assert "Set TEST_DATABASE_URL" in refused
        assert "Traceback" not in refused
        server = {"TEST_DATABASE_URL": database_server.url("postgres")}
    started = time.monotonic()

    output = in_image(
        version, project, *pytest_command, env=server, network=database_server.network
    )
    timed(f"py{version}-{driver} generated suite in its image", started)

    summary = SUITE_RESULT.search(output)
    assert summary, output
    assert int(summary.group(1)) >= 50
    assert "warning" not in output.lower()
    assert "skipped" not in output


def api_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError):
        return 0


@pytest.mark.parametrize(("version", "driver"), by_version(BUILT))
def test_the_image_builds_on_its_base_and_becomes_ready(
    template_source: Path,
    tmp_path: Path,
    database_server: DatabaseServer,
    version: str,
    driver: str,
) -> None:
    project = render(
        template_source, tmp_path / "project", python_version=version, db_driver=driver
    )
    image = f"orders-service:py{version}-{driver}"
    started = time.monotonic()
    docker("build", "--quiet", "--tag", image, str(project), timeout=IN_IMAGE_TIMEOUT)
    timed(f"py{version}-{driver} image built", started)
    database = f"orders_py{version.replace('.', '')}_{driver}"
    docker(
        "exec",
        database_server.container,
        "psql",
        "-U",
        "postgres",
        "-c",
        f"CREATE DATABASE {database}",
    )
    url = f"DATABASE_URL={database_server.url(database, driver)}"
    on_network = ["--network", database_server.network, "--env", url]
    docker("run", "--rm", *on_network, image, "alembic", "upgrade", "head")
    port = free_port()
    api = f"{database_server.network}-api-py{version}-{driver}"
    started = time.monotonic()
    docker(
        "run", "--detach", "--name", api, *on_network, "--publish", f"127.0.0.1:{port}:8000", image
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while api_status(port, "/health/ready") != 200:
            running = docker("inspect", "--format", "{{.State.Running}}", api).strip()
            assert running == "true", docker("logs", api)
            assert time.monotonic() < deadline, docker("logs", api)
            time.sleep(0.5)
        timed(f"py{version}-{driver} container ready", started)

        assert api_status(port, "/health/live") == 200
        version_inside = docker("exec", api, "python", "-c", "import sys; print(sys.version)")
        assert version_inside.startswith(f"{version}."), version_inside
    finally:
        docker("rm", "--force", api, returncode=None)


def test_a_project_that_answered_3_11_updates_to_this_release(
    tmp_path: Path, run_in_project: ProjectRunner
) -> None:
    """A project copied from the previous release with its default, 3.11, keeps that answer
    across the release that made 3.14 the default, and its suite passes."""
    repository = tmp_path / "template-repository"
    repository.mkdir()
    archive = tmp_path / "previous-release.tar"
    git(ROOT, "archive", "--output", str(archive), PREVIOUS_RELEASE, *TEMPLATE_FILES)
    run("tar", "-xf", archive, cwd=repository)
    git(repository, "init", "--quiet")
    commit_all(repository, "Release 0.2.0: Python 3.11 to 3.13, 3.11 the default")
    git(repository, "tag", "v1.0.0")
    git(repository, "rm", "--quiet", "-r", *TEMPLATE_FILES)
    copy_working_tree(repository)
    commit_all(repository, "Release 1.1.0: Python 3.11 to 3.15, 3.14 the default")
    git(repository, "tag", "v1.1.0")
    project = tmp_path / "project"
    copier.run_copy(
        str(repository),
        project,
        data={"project_name": "Orders Service"},
        defaults=True,
        vcs_ref="v1.0.0",
        unsafe=False,
        quiet=True,
    )
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["python_version"] == "3.11"
    git(project, "init", "--quiet")
    commit_all(project, "Copy async-pg-template v1.0.0")

    update(project)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (answers["_commit"], answers["python_version"]) == ("v1.1.0", "3.11")
    assert 'requires-python = ">=3.11"' in (project / "pyproject.toml").read_text()
    assert (project / "Dockerfile").read_text().startswith("FROM python:3.11-slim")
    assert leftovers(project) == []
    run(find_uv_bin(), "lock", "--locked", "--offline", "--python", sys.executable, cwd=project)
    adopt_optional_revisions(project, run_in_project)  # the manual step 0.3.0 documents
    output = run_in_project(project, "pytest", "-q")
    assert SUITE_RESULT.search(output), output
