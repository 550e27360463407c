"""Revisions a team writes with Alembic's own commands stay clean: a merge of two branches
passes mypy --strict and the project's suite (its CI runs both right after the merge)."""

from collections.abc import Callable
from pathlib import Path

from harness.render import render


def test_a_merge_revision_is_type_clean_and_the_suite_passes(
    template_source: Path,
    tmp_path: Path,
    fresh_database: Callable[[], str],
    run_in_project: Callable[..., str],
) -> None:
    project = render(template_source, tmp_path / "project")
    env = {"DATABASE_URL": fresh_database()}
    # Two revisions on the same parent, as when two branches of a team each add one.
    run_in_project(project, "alembic", "revision", "-m", "add orders", **env)
    run_in_project(
        project, "alembic", "revision", "-m", "add tags", "--head", "0001", "--splice", **env
    )
    assert run_in_project(project, "alembic", "heads", **env).count("(head)") == 2

    run_in_project(project, "alembic", "merge", "heads", "-m", "merge", **env)

    [merge] = (project / "migrations" / "versions").glob("*_merge.py")
    assert "down_revision" in merge.read_text()
    run_in_project(project, "ruff", "check", "--no-cache", ".")
    run_in_project(project, "ruff", "format", "--no-cache", "--check", ".")
    assert run_in_project(project, "mypy", "--strict", ".").startswith("Success")
    run_in_project(project, "alembic", "upgrade", "head", **env)
    run_in_project(project, "pytest", "-q")
