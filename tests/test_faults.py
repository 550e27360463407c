"""The fault harness (harness/faults.py) in CI: every scenario, both drivers, real uvicorn on a
real PostgreSQL. Each scenario states its own pass conditions; a failure lists what broke."""

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.faults import SCENARIOS, run_scenario, table
from harness.service import prepare


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


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_service_survives(
    scenario: str,
    driver: str,
    project_for: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
) -> None:
    result = run_scenario(scenario, driver, tmp_path, project_for(driver))

    assert result.passed, table([result])
