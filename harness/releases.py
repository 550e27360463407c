"""Releases of the template as a team receives them: a template repository with tags, a project
copied from one tag and committed, `copier update` to a later one, and what an update left
unresolved."""

import re
from pathlib import Path

import copier

from harness.commands import run
from harness.edits import edit
from harness.render import copy_working_tree, render

CONFLICT_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.MULTILINE)


def git(repository: Path, *arguments: str) -> str:
    return run("git", *arguments, cwd=repository).stdout


def commit_all(repository: Path, message: str) -> None:
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--message", message)


def released_twice(
    repository: Path, change: dict[str, list[tuple[str, str]]], tag: str, message: str
) -> Path:
    """The template in a git repository as released twice: v1.0.0 is the working tree, `tag`
    applies `change` to it."""
    copy_working_tree(repository)
    git(repository, "init", "--quiet")
    commit_all(repository, "Release 1.0.0")
    git(repository, "tag", "v1.0.0")
    for relative, replacements in change.items():
        edit(repository / relative, replacements)
    commit_all(repository, message)
    git(repository, "tag", tag)
    return repository


def copy_release(repository: Path, destination: Path, tag: str, **answers: object) -> Path:
    """A team's project: copied from a release (by absolute path) and committed."""
    project = render(repository, destination, vcs_ref=tag, **answers)
    git(project, "init", "--quiet")
    commit_all(project, f"Copy async-pg-template {tag}")
    return project


def update(project: Path, **options: object) -> None:
    copier.run_update(project, defaults=True, overwrite=True, quiet=True, **options)


def leftovers(project: Path) -> list[str]:
    """Conflict markers and rejected hunks, wherever an update left them."""
    files = [path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts]
    return [str(path.relative_to(project)) for path in files if path.suffix == ".rej"] + [
        str(path.relative_to(project))
        for path in files
        if CONFLICT_MARKER.search(path.read_text(errors="ignore"))
    ]
