"""Every rendered project starts with a uv.lock that matches its pyproject.toml, so
`uv sync --locked` (the image, the generated CI) works from the first commit.

The locks live in locks/ (one per python_version x db_driver x use_pgvector) and are regenerated
by `python -m tools.lock`; these tests fail when template/pyproject.toml.jinja changed without it.
"""

import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from uv import find_uv_bin

from harness.answers import machine_python
from harness.commands import run
from harness.render import render
from tools.lock import LOCKED_ANSWERS, lock_name, locked_combinations

# A name other than the one the locks are made with: the name is templated, not fixed.
ANSWERS = {"project_name": "Zeta Lock Check"}


def lock_id(answers: dict[str, object]) -> str:
    return lock_name(**answers).removesuffix(".lock")


each_lock = pytest.mark.parametrize("answers", locked_combinations(), ids=lock_id)


@pytest.fixture(scope="module")
def render_locked(
    template_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[dict[str, object]], Path]:
    """Renders each combination once per module."""
    projects: dict[str, Path] = {}

    def project(answers: dict[str, object]) -> Path:
        key = lock_id(answers)
        if key not in projects:
            destination = tmp_path_factory.mktemp(key) / "project"
            projects[key] = render(template_source, destination, **ANSWERS, **answers)
        return projects[key]

    return project


def requirements(specs: list[str]) -> set[tuple[str, tuple[str, ...], str]]:
    parsed = (Requirement(spec) for spec in specs)
    return {(r.name, tuple(sorted(r.extras)), str(r.specifier)) for r in parsed}


def locked(entries: list[dict[str, object]]) -> set[tuple[str, tuple[str, ...], str]]:
    return {
        (str(e["name"]), tuple(sorted(e.get("extras", []))), str(e.get("specifier", "")))
        for e in entries
    }


@each_lock
def test_rendered_lock_records_what_pyproject_asks_for(
    answers: dict[str, object], render_locked: Callable[[dict[str, object]], Path]
) -> None:
    """What `uv lock --locked` compares first, checked for every Python version (uv itself
    needs an interpreter of the project's version, below)."""
    project = render_locked(answers)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    lock = tomllib.loads((project / "uv.lock").read_text())

    root = [package for package in lock["package"] if package["name"] == "zeta-lock-check"]
    assert len(root) == 1, "the lock names the project by its own slug"
    assert lock["requires-python"] == pyproject["project"]["requires-python"]
    metadata = root[0]["metadata"]
    assert locked(metadata["requires-dist"]) == requirements(pyproject["project"]["dependencies"])
    dev = pyproject["dependency-groups"]["dev"]
    assert locked(metadata["requires-dev"]["dev"]) == requirements(dev)


@pytest.mark.parametrize(
    "answers",
    [a for a in locked_combinations() if a["python_version"] == machine_python()],
    ids=lock_id,
)
def test_rendered_lock_passes_uv_lock_locked(
    answers: dict[str, object], render_locked: Callable[[dict[str, object]], Path]
) -> None:
    """uv's own verdict, offline: a lock that matches needs no index."""
    project = render_locked(answers)

    run(find_uv_bin(), "lock", "--locked", "--offline", "--python", sys.executable, cwd=project)


def test_locks_cover_exactly_the_answers_that_change_the_lock() -> None:
    expected = {lock_name(**answers) for answers in locked_combinations()}

    assert {path.name for path in (Path(__file__).parents[1] / "locks").glob("*.lock")} == expected
    assert LOCKED_ANSWERS == ["python_version", "db_driver", "use_pgvector", "opentelemetry"]
