"""Every combination of the answers that change code renders a clean project whose own suite
passes on a real PostgreSQL."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.answers import Combination, choices, combinations, machine_python
from harness.commands import ProjectRunner, run
from harness.environments import available_python_versions, project_python
from harness.render import render

COMBINATIONS = list(combinations())
# The 16 combinations run on the machine's Python (harness.answers.BASE_ANSWERS); the default
# combination also on each other python_version this machine has an interpreter for (uv cannot
# download one here). Versions in their own base images: tests/test_pythons.py.
OTHER_PYTHONS = [version for version in available_python_versions() if version != machine_python()]
each_combination = pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.id)
# Openers ("}}" also closes nested dicts); "${{" opens a GitHub Actions expression.
JINJA_LEFTOVER = re.compile(r"(?<!\$){{|{%|{#")
SUITE_RESULT = re.compile(r"^(\d+) passed in [\d.]+s", re.MULTILINE)

RenderedProject = Callable[[Combination], Path]


def test_every_code_changing_answer_is_covered() -> None:
    assert len(COMBINATIONS) == 16
    assert len({combination.id for combination in COMBINATIONS}) == 16


@each_combination
def test_renders_without_leftover_jinja(
    combination: Combination, rendered: RenderedProject
) -> None:
    project = rendered(combination)

    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in sorted(project.rglob("*"))
        if path.is_file() and path.suffix != ".mako" and ".git" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if JINJA_LEFTOVER.search(line)
    ]
    assert leftovers == []
    assert not list(project.rglob("*.jinja"))


@each_combination
def test_is_lint_and_format_clean(
    combination: Combination, rendered: RenderedProject, run_in_project: ProjectRunner
) -> None:
    project = rendered(combination)

    run_in_project(project, "ruff", "check", "--no-cache", ".")
    run_in_project(project, "ruff", "format", "--no-cache", "--check", ".")


@each_combination
def test_is_type_clean_under_mypy_strict(
    combination: Combination, rendered: RenderedProject, run_in_project: ProjectRunner
) -> None:
    output = run_in_project(rendered(combination), "mypy", "--strict", ".")

    assert output.startswith("Success: no issues found")


@each_combination
def test_own_suite_passes_on_embedded_postgres(
    combination: Combination, rendered: RenderedProject, run_in_project: ProjectRunner
) -> None:
    output = run_in_project(rendered(combination), "pytest", "-q")

    summary = SUITE_RESULT.search(output)
    assert summary, output
    assert int(summary.group(1)) >= 50
    assert "warning" not in output.lower()
    assert "skipped" not in output


VARIANTS = [
    ("asyncpg", False, {"asyncpg"}, {"psycopg", "pgvector"}),
    ("asyncpg", True, {"asyncpg", "pgvector"}, {"psycopg"}),
    ("psycopg", False, {"psycopg"}, {"asyncpg", "pgvector"}),
    ("psycopg", True, {"psycopg", "pgvector"}, {"asyncpg"}),
]


@pytest.mark.parametrize(
    ("driver", "use_pgvector", "present", "absent"),
    VARIANTS,
    ids=[f"{driver}-{'pgvector' if vector else 'novector'}" for driver, vector, *_ in VARIANTS],
)
def test_each_variant_runs_with_only_what_its_pyproject_declares(
    template_source: Path,
    tmp_path: Path,
    driver: str,
    use_pgvector: bool,
    present: set[str],
    absent: set[str],
) -> None:
    """A dependency missing from one variant's pyproject.toml must fail that variant's tests: no
    other variant's packages may be installed beside it."""
    project = render(
        template_source, tmp_path / "project", db_driver=driver, use_pgvector=use_pgvector
    )
    found = run(
        project_python(project),
        "-c",
        "import importlib.util, sys; print(*filter(importlib.util.find_spec, sys.argv[1:]))",
        *sorted(present | absent),
        cwd=project,
    ).stdout.split()

    assert set(found) == present


@pytest.mark.parametrize("python_version", OTHER_PYTHONS)
def test_the_default_combination_is_clean_on_each_python_this_machine_has(
    template_source: Path, tmp_path: Path, run_in_project: ProjectRunner, python_version: str
) -> None:
    project = render(template_source, tmp_path / "project", python_version=python_version)

    run_in_project(project, "ruff", "check", "--no-cache", ".")
    run_in_project(project, "ruff", "format", "--no-cache", "--check", ".")
    assert run_in_project(project, "mypy", "--strict", ".").startswith("Success")
    output = run_in_project(project, "pytest", "-q")

    assert SUITE_RESULT.search(output), output
    assert "warning" not in output.lower()
    ran_on = run(project_python(project), "-c", "import sys; print(sys.version)", cwd=project)
    assert ran_on.stdout.startswith(f"{python_version}.")


@pytest.mark.parametrize("driver", choices("db_driver"))
def test_opentelemetry_projects_are_clean_and_their_suite_passes(
    template_source: Path, tmp_path: Path, run_in_project: ProjectRunner, driver: str
) -> None:
    """The combinations above answer opentelemetry false (its default); one per driver with it."""
    project = render(template_source, tmp_path / "project", db_driver=driver, opentelemetry=True)

    run_in_project(project, "ruff", "check", "--no-cache", ".")
    run_in_project(project, "ruff", "format", "--no-cache", "--check", ".")
    assert run_in_project(project, "mypy", "--strict", ".").startswith("Success")
    output = run_in_project(project, "pytest", "-q")

    summary = SUITE_RESULT.search(output)
    assert summary, output
    assert "test_telemetry.py" not in output  # its tests passed: -q names failures only
    assert "warning" not in output.lower()
    assert "skipped" not in output


@pytest.mark.parametrize("opentelemetry", [False, True], ids=["without", "with"])
def test_opentelemetry_dependencies_exist_only_when_asked_for(
    template_source: Path, tmp_path: Path, opentelemetry: bool
) -> None:
    project = render(template_source, tmp_path / "project", opentelemetry=opentelemetry)

    found = run(
        project_python(project),
        "-c",
        # FastAPI itself requires opentelemetry-api (spans that do nothing without an SDK).
        "import importlib.util; print(bool(importlib.util.find_spec('opentelemetry.sdk')))",
        cwd=project,
    ).stdout.strip()

    assert found == str(opentelemetry)
    assert ("opentelemetry" in (project / "pyproject.toml").read_text()) is opentelemetry
    assert (project / "app" / "telemetry.py").exists() is opentelemetry
