"""The generated suite runs on the project's postgres_version where the embedded server ships
it, and says plainly, at the start of the session and in the README, when it cannot."""

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.render import render

# Added to the rendered project: the major of the server its fixtures connect to.
SERVER_VERSION_TEST = """\
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def test_server_major(fixture_engine: AsyncEngine) -> None:
    async with fixture_engine.connect() as connection:
        number = await connection.scalar(text("SHOW server_version_num"))
    assert int(number) // 10000 == int(os.environ["EXPECTED_MAJOR"])
"""


@pytest.mark.parametrize(
    ("chosen", "runs_on", "header"),
    [
        (16, 16, "PostgreSQL: embedded 16, the project's version"),
        (17, 18, "PostgreSQL: embedded 18, not the project's 17, which the embedded server"),
    ],
    ids=["16-shipped", "17-not-shipped"],
)
def test_the_suite_runs_on_the_chosen_major_or_says_which_it_runs_on(
    template_source: Path,
    tmp_path: Path,
    run_in_project: Callable[..., str],
    chosen: int,
    runs_on: int,
    header: str,
) -> None:
    project = render(template_source, tmp_path / "project", postgres_version=chosen)
    (project / "tests" / "test_server_major.py").write_text(SERVER_VERSION_TEST)

    output = run_in_project(
        project, "pytest", "tests/test_server_major.py", EXPECTED_MAJOR=str(runs_on)
    )

    assert header in output
    if runs_on != chosen:
        assert f"PostgreSQL {runs_on}, not {chosen}" in (project / "README.md").read_text()
