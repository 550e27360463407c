"""The fault harness (harness/faults.py) in CI: every scenario, both drivers, real uvicorn on a
real PostgreSQL. Each scenario states its own pass conditions; a failure lists what broke."""

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.answers import DRIVERS
from harness.faults import SCENARIOS, run_scenario, table
from harness.service import Postgres, postmaster_pid, prepare, server_workdir, stat_fields

# Tests that load the machine to its limit run one after another on one xdist worker: the
# overload scenarios of both drivers, run at once on two workers, timed each other out.
pytestmark = pytest.mark.xdist_group("load")


@pytest.fixture(scope="session")
def project_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    projects: dict[str, tuple[Path, Path]] = {}

    def project(driver: str) -> tuple[Path, Path]:
        if driver not in projects:
            projects[driver] = prepare(
                tmp_path_factory.mktemp(f"faults-{driver}"), db_driver=driver
            )
        return projects[driver]

    return project


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_service_survives(
    scenario: str,
    driver: str,
    project_for: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
) -> None:
    result = run_scenario(scenario, driver, tmp_path, project_for(driver))

    assert result.passed, table([result])


def test_a_restarted_server_is_stopped_before_its_data_is_removed() -> None:
    with server_workdir("restarted-") as workdir:  # the server's own user writes here
        postgres = Postgres(workdir)
        postgres.stop()
        postgres.start()
        postmaster = postmaster_pid(postgres.server.pgdata)
        assert postmaster is not None

        postgres.close()

        assert not postgres.server.pgdata.exists()
        assert not running(postmaster)


def running(pid: int) -> bool:
    """Whether `pid` runs: a stopped child nobody has reaped yet (a zombie) does not."""
    try:
        return stat_fields(pid)[0] != "Z"
    except FileNotFoundError:
        return False
