"""Every combination of the answers that change code renders a clean project whose own suite
passes on a real PostgreSQL."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Combination, combinations

COMBINATIONS = list(combinations())
each_combination = pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.id)
# Openers ("}}" also closes nested dicts); "${{" opens a GitHub Actions expression.
JINJA_LEFTOVER = re.compile(r"(?<!\$){{|{%|{#")
SUITE_RESULT = re.compile(r"^(\d+) passed in [\d.]+s", re.MULTILINE)

RenderedProject = Callable[[Combination], Path]
ProjectRunner = Callable[..., str]


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
