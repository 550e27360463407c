"""Generated suites on a server named by TEST_DATABASE_URL, here a throwaway cluster of the
system's PostgreSQL (Debian's `postgresql` package; .ci/run installs it), which has no pgvector."""

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.answers import DRIVERS
from harness.commands import run
from harness.render import render
from harness.service import free_port

SERVER_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def as_server_user(*command: str | Path) -> list[str]:
    """initdb and postgres refuse to run as root: use the package's `postgres` user then."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return prefix + [str(part) for part in command]


@pytest.fixture(scope="module")
def system_server() -> Iterator[str]:
    assert SERVER_BINARIES, "no PostgreSQL server binaries: apt-get install postgresql"
    bindir = Path(SERVER_BINARIES[-1])
    # Outside pytest's private temporary directory, which the server's user could not enter.
    data = Path(tempfile.mkdtemp(prefix="system-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    run(*as_server_user(bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust"), cwd=data)
    server_options = f"-h 127.0.0.1 -p {port} -k {data}"
    run(
        *as_server_user(
            bindir / "pg_ctl", "-D", data, "-w", "-l", data / "log", "-o", server_options, "start"
        ),
        cwd=data,
    )
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    run(*as_server_user(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"), cwd=data)
    shutil.rmtree(data)


def databases(server: str) -> set[str]:
    psql = Path(SERVER_BINARIES[-1]) / "psql"
    listed = run(psql, server, "-Atc", "SELECT datname FROM pg_database", cwd=Path.cwd())
    return set(listed.stdout.split())


@pytest.mark.parametrize("driver", DRIVERS)
def test_suite_passes_on_an_external_server_and_cleans_up(
    template_source: Path,
    tmp_path: Path,
    system_server: str,
    run_in_project: Callable[..., str],
    driver: str,
) -> None:
    project = render(template_source, tmp_path / "project", db_driver=driver)
    before = databases(system_server)

    output = run_in_project(
        project,
        "pytest",
        "-q",
        "-n",
        "2",
        TEST_DATABASE_URL=system_server,
        DATABASE_URL="postgresql://nobody:never-used@127.0.0.1:1/untouched",
    )

    assert " passed in " in output
    assert "failed" not in output
    assert databases(system_server) == before  # every database it made, it dropped


def test_pgvector_suite_stops_at_once_naming_the_missing_extension(
    template_source: Path,
    tmp_path: Path,
    system_server: str,
    run_in_project: Callable[..., str],
) -> None:
    project = render(template_source, tmp_path / "project", use_pgvector=True)

    output = run_in_project(
        project, "pytest", "-q", "-n", "2", returncode=3, TEST_DATABASE_URL=system_server
    )

    assert "TEST_DATABASE_URL lacks the extension(s) vector" in output
    assert "INTERNALERROR" not in output
    assert " passed" not in output
