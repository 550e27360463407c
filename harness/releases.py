"""Releases of the template as a team receives them: a template repository with tags, a project
copied from one tag and committed, `copier update` to a later one, and what an update left
unresolved."""

import re
from dataclasses import dataclass
from pathlib import Path

import copier
from packaging.version import Version

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


# A release on record: the commit that gave CHANGELOG.md its "## X.Y.Z — date" heading.
RELEASE_HEADING = re.compile(r"^## (\d+\.\d+\.\d+) — ", re.MULTILINE)
TEMPLATE_SIDE = re.compile(r"^<{7} .*?\n.*?^={7}\n(.*?)^>{7} .*?\n", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Release:
    version: str
    commit: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"


def releases_on_record(repository: Path) -> list[Release]:
    """The releases CHANGELOG.md names, oldest first, each at the commit that added its
    heading (the release procedure in docs/maintaining.md)."""
    versions = RELEASE_HEADING.findall((repository / "CHANGELOG.md").read_text())
    releases = []
    for version in versions:
        heading = f"## {version} — "
        log = git(
            repository, "log", "--reverse", "--format=%H", "-S", heading, "--", "CHANGELOG.md"
        )
        assert log, f"no commit adds {heading!r}: is this clone shallow? (git fetch --unshallow)"
        releases.append(Release(version, log.split()[0]))
    return sorted(releases, key=lambda release: Version(release.version))


def next_version(version: str) -> str:
    """The minor release after `version` (0.2.0 -> 0.3.0)."""
    major, minor, _ = Version(version).release
    return f"{major}.{minor + 1}.0"


def tag_releases(repository: Path) -> list[Release]:
    """Tag every release on record and, unless it is one, HEAD as the next release: what
    `copier update` and Renovate would see once the commit about to be released is tagged."""
    releases = releases_on_record(repository)
    head = git(repository, "rev-parse", "HEAD").strip()
    if releases[-1].commit != head:
        releases.append(Release(next_version(releases[-1].version), head))
    for release in releases:
        git(repository, "tag", "--annotate", release.tag, release.commit, "-m", release.tag)
    return releases


def take_template_side(path: Path) -> None:
    """Resolve every inline conflict of `path` with what the new release has there: the team
    then puts its own change back."""
    path.write_text(TEMPLATE_SIDE.sub(r"\1", path.read_text()))
